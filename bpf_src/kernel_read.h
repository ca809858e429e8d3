/* Reading kernel structs at offsets taken from the running kernel's BTF (NS_OFF_* defines set by
 * netscope/probes/offsets.py), never from the compile-time headers' layouts. C side only. */
#ifndef NETSCOPE_KERNEL_READ_H
#define NETSCOPE_KERNEL_READ_H

static __always_inline u64 read_u64(const void *base, u32 off)
{
    u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), (const char *)base + off);
    return v;
}

static __always_inline u32 read_u32(const void *base, u32 off)
{
    u32 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), (const char *)base + off);
    return v;
}

static __always_inline u16 read_u16(const void *base, u32 off)
{
    u16 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), (const char *)base + off);
    return v;
}

/* Inode of the network namespace of a device, else of a socket; 0 when neither is known. */
static __always_inline u32 netns_of(const void *dev, const void *sk)
{
    const void *net = 0;
    if (dev)
        net = (const void *)read_u64(dev, NS_OFF_DEV_ND_NET);
    else if (sk)
        net = (const void *)read_u64(sk, NS_OFF_SOCK_NET);
    if (!net)
        return 0;
    return read_u32(net, NS_OFF_NET_NS_INUM);
}

#endif /* NETSCOPE_KERNEL_READ_H */
