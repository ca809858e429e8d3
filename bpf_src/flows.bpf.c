/* Flows: received packets and drops per 5-tuple (and network namespace), parsed from the headers.
 *
 * Raw tracepoints net:netif_receive_skb(struct sk_buff *skb) (skb->data is at the network header
 * there: the link-layer header was pulled) and skb:kfree_skb(skb, location, reason[, rx_sk]) (the
 * drop's headers at skb->head + network_header). NS_FILTER(t), compiled from the user's filter by
 * netscope/model/filter.py, decides in the kernel which flows are counted at all.
 */
#include "netscope.h"
#include "kernel_read.h"

#ifndef NS_FILTER
#define NS_FILTER(t) 1
#endif

BPF_TABLE("lru_percpu_hash", struct flow_key, struct flow_stat, flow_stats, NS_FLOWS_MAX);
BPF_TABLE("lru_hash", struct flow_drop_key, u64, flow_drops, NS_FLOWS_MAX);
BPF_PERCPU_ARRAY(flow_counters, u64, NS_FLOW_STATS);

static __always_inline void bump(u32 index)
{
    u64 *v = flow_counters.lookup(&index);
    if (v)
        (*v)++;
}

/* The 5-tuple of the IP packet at `ip` (protocol: skb->protocol, host order); 0 if not IP. */
static __always_inline int parse(const u8 *ip, u16 protocol, struct flow_tuple *t)
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

RAW_TRACEPOINT_PROBE(netif_receive_skb)
{
    const void *skb = (const void *)ctx->args[0];
    struct flow_key key = {};
    u16 protocol = bpf_ntohs(read_u16(skb, NS_OFF_SKB_PROTOCOL));
    const u8 *data = (const u8 *)read_u64(skb, NS_OFF_SKB_DATA);
    if (!parse(data, protocol, &key.t))
        return 0;
    struct flow_tuple *t = &key.t;
    if (!(NS_FILTER(t))) {
        bump(NS_FLOW_STAT_FILTERED);
        return 0;
    }
    const void *dev = (const void *)read_u64(skb, NS_OFF_SKB_DEV);
    key.netns = netns_of(dev, 0);
    if (dev)
        key.ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
    u64 now = bpf_ktime_get_ns();
    struct flow_stat *s = flow_stats.lookup(&key);
    if (!s) {
        struct flow_stat fresh = {.first_ns = now};
        flow_stats.update(&key, &fresh);
        bump(NS_FLOW_STAT_CREATED);
        s = flow_stats.lookup(&key);
        if (!s)
            return 0;
    }
    u16 mapping = read_u16(skb, NS_OFF_SKB_QUEUE_MAPPING);
    u16 segs = 1;
#if NS_SKB_END_IS_OFFSET
    const u8 *shinfo = (const u8 *)read_u64(skb, NS_OFF_SKB_HEAD) + read_u32(skb, NS_OFF_SKB_END);
#else
    const u8 *shinfo = (const u8 *)read_u64(skb, NS_OFF_SKB_END);
#endif
    segs = read_u16(shinfo, NS_OFF_SHINFO_GSO_SEGS);
    s->rx_packets += segs ? segs : 1;
    s->rx_bytes += read_u32(skb, NS_OFF_SKB_LEN);
    s->queues |= mapping && mapping <= 63 ? 1ULL << (mapping - 1) : 1ULL << 63;
    if (!s->first_ns)
        s->first_ns = now;
    s->last_ns = now;
    return 0;
}

RAW_TRACEPOINT_PROBE(kfree_skb)
{
    const void *skb = (const void *)ctx->args[0];
    u32 reason = (u32)ctx->args[2];
    if (reason == NS_SKB_NOT_DROPPED_YET || reason == NS_SKB_CONSUMED)
        return 0;
    u16 nh = read_u16(skb, NS_OFF_SKB_NETWORK_HEADER);
    const u8 *head = (const u8 *)read_u64(skb, NS_OFF_SKB_HEAD);
    if (!head || nh == 0xffff)
        return 0;
    struct flow_drop_key key = {};
    u16 protocol = bpf_ntohs(read_u16(skb, NS_OFF_SKB_PROTOCOL));
    if (!parse(head + nh, protocol, &key.flow.t))
        return 0;
    struct flow_tuple *t = &key.flow.t;
    if (!(NS_FILTER(t)))
        return 0;
    const void *dev = (const void *)read_u64(skb, NS_OFF_SKB_DEV);
    key.flow.netns = netns_of(dev, (const void *)read_u64(skb, NS_OFF_SKB_SK));
    if (dev)
        key.flow.ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
    key.reason = reason;
    u64 zero = 0;
    u64 *n = flow_drops.lookup_or_try_init(&key, &zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}
