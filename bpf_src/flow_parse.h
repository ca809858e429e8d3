/* 5-tuples for flows and for the user's filter (NS_FILTER(t), compiled by netscope/model/filter.py
 * over struct flow_tuple). C side only; needs kernel_read.h. */
#ifndef NETSCOPE_FLOW_PARSE_H
#define NETSCOPE_FLOW_PARSE_H

/* The 5-tuple of the IP packet at `ip` (protocol: skb->protocol, host order); 0 if not IP. */
static __always_inline int parse_ip(const u8 *ip, u16 protocol, struct flow_tuple *t)
{
    u8 h[40] = {};
    u32 l4 = 0;
    if (protocol == 0x0800) {
        if (bpf_probe_read_kernel(h, 20, ip) || (h[0] >> 4) != 4)
            return 0;
        t->family = 4;
        t->proto = h[9];
        __builtin_memcpy(&t->saddr[0], &h[12], 4);
        __builtin_memcpy(&t->daddr[0], &h[16], 4);
        if (((h[6] & 0x1f) | h[7]) != 0)
            return 1; /* a later fragment: no ports */
        l4 = (h[0] & 0x0f) * 4;
    } else if (protocol == 0x86dd) {
        if (bpf_probe_read_kernel(h, 40, ip))
            return 0;
        t->family = 6;
        t->proto = h[6];
        __builtin_memcpy(t->saddr, &h[8], 16);
        __builtin_memcpy(t->daddr, &h[24], 16);
        l4 = 40;
    } else {
        return 0;
    }
    if (t->proto == 6 || t->proto == 17) {
        u16 ports[2] = {};
        if (bpf_probe_read_kernel(ports, sizeof(ports), ip + l4) == 0) {
            t->sport = bpf_ntohs(ports[0]);
            t->dport = bpf_ntohs(ports[1]);
        }
    }
    return 1;
}

/* The 5-tuple of data arriving on a socket: from its peer (source) to its local end (destination). */
static __always_inline void sock_tuple(const void *sk, u16 proto, struct flow_tuple *t)
{
    t->proto = proto;
    t->family = read_u16(sk, NS_OFF_SOCK_FAMILY) == 10 ? 6 : 4;
    t->dport = read_u16(sk, NS_OFF_SOCK_NUM);
    t->sport = bpf_ntohs(read_u16(sk, NS_OFF_SOCK_DPORT));
    if (t->family == 6) {
        bpf_probe_read_kernel(t->daddr, 16, (const char *)sk + NS_OFF_SOCK_V6_RCV_SADDR);
        bpf_probe_read_kernel(t->saddr, 16, (const char *)sk + NS_OFF_SOCK_V6_DADDR);
    } else {
        t->daddr[0] = read_u32(sk, NS_OFF_SOCK_RCV_SADDR);
        t->saddr[0] = read_u32(sk, NS_OFF_SOCK_DADDR);
    }
}

#endif /* NETSCOPE_FLOW_PARSE_H */
