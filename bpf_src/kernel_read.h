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

/* A socket's inode number (socket:[N] in /proc/PID/fd): never reused while the machine runs, where
 * a freed socket's address is. 0 while the socket has no struct socket (a TCP child before
 * accept()). Read from sock.sk_ino where the kernel keeps it, else from the socket's inode. */
static __always_inline u64 sock_ino(const void *sk)
{
#ifdef NS_OFF_SOCK_INO
    return read_u64(sk, NS_OFF_SOCK_INO);
#else
    const void *sock = (const void *)read_u64(sk, NS_OFF_SOCK_SOCKET);
    return sock ? read_u64(sock, NS_OFF_SOCKET_INO) : 0;
#endif
}

/* The cgroup v2 id of the socket's owner (its directory's inode, as bpf_get_current_cgroup_id()
 * gives in process context): sk->sk_cgrp_data.cgroup->kn->id, set when the socket was made
 * (struct sock_cgroup_data holds a struct cgroup pointer since Linux 5.15). For softirq context,
 * where the current task is unrelated. 0 where unknown, or on a kernel without that layout. */
static __always_inline u64 sock_cgroup_id(const void *sk)
{
#ifdef NS_OFF_SOCK_CGROUP
    const void *cgrp = (const void *)read_u64(sk, NS_OFF_SOCK_CGROUP);
    const void *kn = cgrp ? (const void *)read_u64(cgrp, NS_OFF_CGROUP_KN) : 0;
    return kn ? read_u64(kn, NS_OFF_KERNFS_NODE_ID) : 0;
#else
    return 0;
#endif
}

/* The sk_buff fields from len to data lie within NS_SKB_WIN_LEN bytes from NS_SKB_WIN_START
 * (netscope/probes/offsets.py checks): one bpf_probe_read_kernel fetches them all, where reading
 * field by field cost a helper call each, six per packet. */
struct skb_win {
    u8 b[NS_SKB_WIN_LEN];
} __attribute__((aligned(8)));

static __always_inline void skb_win_read(struct skb_win *w, const void *skb)
{
    bpf_probe_read_kernel(w, sizeof(*w), (const char *)skb + NS_SKB_WIN_START);
}

/* A field of the window, by its NS_OFF_SKB_* offset. */
#define SKB_WIN(w, type, off) (*(const type *)((w)->b + ((off) - NS_SKB_WIN_START)))

/* Packets an skb stands for: a GRO- or GSO-built skb counts as its gso_segs. */
static __always_inline u32 segments(const struct skb_win *w)
{
#if NS_SKB_END_IS_OFFSET
    const u8 *shinfo = (const u8 *)SKB_WIN(w, u64, NS_OFF_SKB_HEAD) + SKB_WIN(w, u32, NS_OFF_SKB_END);
#else
    const u8 *shinfo = (const u8 *)SKB_WIN(w, u64, NS_OFF_SKB_END);
#endif
    u16 segs = read_u16(shinfo, NS_OFF_SHINFO_GSO_SEGS);
    return segs ? segs : 1;
}

#endif /* NETSCOPE_KERNEL_READ_H */
