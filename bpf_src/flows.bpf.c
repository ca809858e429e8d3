/* Flows: received packets and drops per 5-tuple (and network namespace), parsed from the headers.
 *
 * Raw tracepoints net:netif_receive_skb(struct sk_buff *skb) (skb->data is at the network header
 * there: the link-layer header was pulled) and skb:kfree_skb(skb, location, reason[, rx_sk]) (the
 * drop's headers at skb->head + network_header). NS_FILTER(t), compiled from the user's filter by
 * netscope/model/filter.py, decides in the kernel which flows are counted at all.
 *
 * Received packets are sampled (sampler.h): parsing the headers and updating a flow's entry is the
 * dearest per-packet work netscope does, so only a sampled skb does it, adding its packets and bytes
 * times its weight; the device totals stay exact from the kernel's own counters. Drops are rare
 * next to packets and each one counts: every drop is counted.
 *
 * The tables hold one interval. Each is an inner map of a one-slot ARRAY_OF_MAPS (Linux 4.12) that
 * user space points at an empty spare at the end of an interval; it then reads and deletes the
 * interval's map whole, after the programs that had looked it up have finished. No count is lost
 * between the read and the clear, and user space reads only the flows of the interval, however
 * many the kernel has seen. The entries are shared by all CPUs (atomic adds, on sampled packets
 * only): a per-CPU table of 100k flows would take 100k x 56 bytes per CPU. A flow a full table
 * cannot take is still counted, in the UNHELD counters, so the flows plus those add up.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "flow_parse.h"
#include "dev_cache.h"
#include "sampler.h"
#include "tables.h"
#include "budget.h"

#ifdef NS_FILTER
#define FLOW_MATCH(t) NS_FILTER(t)
#else
#define FLOW_MATCH(t) 1
#endif

/* Two of each, swapped every interval; allocated as flows come (BPF_F_NO_PREALLOC), freed when read. */
BPF_F_TABLE("hash", struct flow_key, struct flow_stat, flow_stats_a, NS_FLOWS_MAX, BPF_F_NO_PREALLOC);
BPF_F_TABLE("hash", struct flow_key, struct flow_stat, flow_stats_b, NS_FLOWS_MAX, BPF_F_NO_PREALLOC);
BPF_ARRAY_OF_MAPS(flow_stats, "flow_stats_a", 1);
BPF_F_TABLE("hash", struct flow_drop_key, u64, flow_drops_a, NS_FLOWS_MAX, BPF_F_NO_PREALLOC);
BPF_F_TABLE("hash", struct flow_drop_key, u64, flow_drops_b, NS_FLOWS_MAX, BPF_F_NO_PREALLOC);
BPF_ARRAY_OF_MAPS(flow_drops, "flow_drops_a", 1);
BPF_PERCPU_ARRAY(flow_counters, u64, NS_FLOW_STATS);
BPF_ARRAY(flow_watch, struct flow_watch, 1);
/* The watched flow's events: at most NS_FLOW_EVENTS_PER_WINDOW a window of NS_FLOW_EVENTS_WINDOW_NS
 * (the flow screen lists the newest hundred): in a flood of that flow its sampled packets would
 * be tens of thousands a second for user space to decode; the rest are counted as skipped. */
BPF_ARRAY(flow_events_window, struct event_window, 1);
BPF_PERCPU_ARRAY(flows_last_dev, struct dev_seen, 1); /* dev_cache.h */
BPF_RINGBUF_OUTPUT(flow_events, 64);
BPF_PERCPU_ARRAY(flows_sampler, struct ns_sampler, 1);
BPF_ARRAY(flows_rate, struct ns_rate, 1);

static __always_inline void flow_add(u32 index, u64 n)
{
    u64 *v = flow_counters.lookup(&index);
    if (v)
        *v += n;
}

static __always_inline int same_tuple(const struct flow_tuple *a, const struct flow_tuple *b)
{
    return a->saddr[0] == b->saddr[0] && a->saddr[1] == b->saddr[1] && a->saddr[2] == b->saddr[2] &&
           a->saddr[3] == b->saddr[3] && a->daddr[0] == b->daddr[0] && a->daddr[1] == b->daddr[1] &&
           a->daddr[2] == b->daddr[2] && a->daddr[3] == b->daddr[3] && a->sport == b->sport &&
           a->dport == b->dport && a->proto == b->proto && a->family == b->family;
}

/* One event for a (sampled or dropped) packet of the watched flow; no wakeup: user space drains
 * each interval. */
static __always_inline void watch_event(const struct flow_key *key, const void *skb, u32 reason, u64 location)
{
    u32 zero = 0;
    struct flow_watch *w = flow_watch.lookup(&zero);
    if (!w || !w->active || !same_tuple(&w->flow.t, &key->t) ||
        (w->flow.netns && key->netns && w->flow.netns != key->netns))
        return;
    u64 now = bpf_ktime_get_ns();
    struct event_window *budget = flow_events_window.lookup(&zero);
    if (!budget || !budget_take(budget, now / NS_FLOW_EVENTS_WINDOW_NS, NS_FLOW_EVENTS_PER_WINDOW)) {
        flow_add(NS_FLOW_STAT_EVENTS_SKIPPED, 1);
        return;
    }
    struct flow_event *e = flow_events.ringbuf_reserve(sizeof(struct flow_event));
    if (!e) {
        flow_add(NS_FLOW_STAT_EVENTS_LOST, 1);
        return;
    }
    e->ts_ns = now;
    e->len = read_u32(skb, NS_OFF_SKB_LEN);
    e->reason = reason;
    e->queue = read_u16(skb, NS_OFF_SKB_QUEUE_MAPPING);
    e->dropped = reason != 0;
    e->cpu = (u8)bpf_get_smp_processor_id();
    e->pad = 0;
    e->location = location;
    flow_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

NS_HOOK(netif_receive_skb)
{
    u32 zero = 0;
    u32 weight = ns_sample(flows_sampler.lookup(&zero), flows_rate.lookup(&zero));
    if (!weight)
        return 0;
    const void *skb = (const void *)ctx->args[0];
    struct flow_key key = {};
    struct skb_win w;
    skb_win_read(&w, skb);
    u16 protocol = bpf_ntohs(SKB_WIN(&w, u16, NS_OFF_SKB_PROTOCOL));
    const u8 *data = (const u8 *)SKB_WIN(&w, u64, NS_OFF_SKB_DATA);
    if (!parse_ip(data, protocol, &key.t))
        return 0;
    struct flow_tuple *t = &key.t;
    if (!(FLOW_MATCH(t))) {
        flow_add(NS_FLOW_STAT_FILTERED, weight);
        return 0;
    }
    const void *dev = (const void *)read_u64(skb, NS_OFF_SKB_DEV);
    if (dev) {
        u32 last_dev_slot = 0;
        key.ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
        key.netns = dev_netns(flows_last_dev.lookup(&last_dev_slot), dev, key.ifindex);
    }
    u64 now = bpf_ktime_get_ns();
    u64 packets = (u64)segments(&w) * weight, nbytes = (u64)SKB_WIN(&w, u32, NS_OFF_SKB_LEN) * weight;
    void *table = flow_stats.lookup(&zero);
    struct flow_stat fresh = {.first_ns = now};
    struct flow_stat *s = table ? table_entry(table, &key, &fresh) : 0;
    if (!s) {
        flow_add(NS_FLOW_STAT_UNHELD_PACKETS, packets);
        flow_add(NS_FLOW_STAT_UNHELD_BYTES, nbytes);
    } else {
        u16 mapping = SKB_WIN(&w, u16, NS_OFF_SKB_QUEUE_MAPPING);
        u32 cpu = bpf_get_smp_processor_id();
        cpu = cpu < 127 ? cpu : 127;
        __sync_fetch_and_add(&s->rx_packets, packets);
        __sync_fetch_and_add(&s->rx_bytes, nbytes);
        __sync_fetch_and_or(&s->queues, mapping && mapping <= NS_NO_QUEUE_BIT ? 1ULL << (mapping - 1)
                                                                             : 1ULL << NS_NO_QUEUE_BIT);
        __sync_fetch_and_or(&s->cpus[cpu >> 6 & 1], 1ULL << (cpu & 63));
        s->last_ns = now;
    }
    watch_event(&key, skb, 0, 0);
    return 0;
}

NS_HOOK(kfree_skb)
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
    if (!parse_ip(head + nh, protocol, &key.flow.t))
        return 0;
    struct flow_tuple *t = &key.flow.t;
    if (!(FLOW_MATCH(t)))
        return 0;
    const void *dev = (const void *)read_u64(skb, NS_OFF_SKB_DEV);
    key.flow.netns = netns_of(dev, (const void *)read_u64(skb, NS_OFF_SKB_SK));
    if (dev)
        key.flow.ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
    key.reason = reason;
    u32 zero = 0;
    u64 none = 0;
    void *table = flow_drops.lookup(&zero);
    u64 *n = table ? table_entry(table, &key, &none) : 0;
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        flow_add(NS_FLOW_STAT_UNHELD_DROPS, 1);
    watch_event(&key.flow, skb, reason, ctx->args[1]);
    return 0;
}
