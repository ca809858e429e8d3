/* Dropped skbs: exact counts per reason, a breakdown by location, device, protocol and CPU, and a
 * rate-limited log of individual drops.
 *
 * Raw tracepoint skb:kfree_skb(struct sk_buff *skb, void *location, enum skb_drop_reason reason,
 * struct sock *rx_sk): `reason` since Linux 5.17, `rx_sk` since 6.12 (older kernels pass garbage
 * in args[3], so it is only read when NS_HAVE_RX_SK is set). A raw tracepoint needs no
 * <linux/skbuff.h>: struct fields are read at offsets from the running kernel's BTF (NS_OFF_*).
 */
#include "netscope.h"
#include "kernel_read.h"
#include "flow_parse.h"
#include "tables.h"
#include "budget.h"

BPF_PERCPU_HASH(drop_reasons, u32, u64, 4096);
/* The breakdown holds one interval: two tables, swapped every read (tables.h). */
BPF_PERCPU_HASH(drop_details_a, struct drop_key, u64, NS_DROP_DETAILS_MAX);
BPF_PERCPU_HASH(drop_details_b, struct drop_key, u64, NS_DROP_DETAILS_MAX);
BPF_ARRAY_OF_MAPS(drop_details, "drop_details_a", 1);
BPF_PERCPU_ARRAY(drop_stats, u64, NS_DROP_STATS);
BPF_ARRAY(drop_log_window, struct event_window, 1);
BPF_HASH(drop_log_reason_window, u32, struct event_window, 4096);
BPF_RINGBUF_OUTPUT(drop_events, NS_DROP_RINGBUF_PAGES);

static __always_inline void drop_bump(u32 index)
{
    u64 *v = drop_stats.lookup(&index);
    if (v)
        (*v)++;
}

/* The log's rate limit, shared by every CPU so a storm on one CPU still logs at the full rate.
 * No single reason may take more than NS_DROP_LOG_PER_REASON of a window, so the rare reasons
 * still reach the log during another reason's storm. */
static __always_inline int may_log(u32 reason, u64 now)
{
    u32 zero = 0;
    u64 id = now / NS_DROP_LOG_WINDOW_NS;
    struct event_window fresh = {};
    struct event_window *per_reason = drop_log_reason_window.lookup_or_try_init(&reason, &fresh);
    if (!per_reason || !budget_take(per_reason, id, NS_DROP_LOG_PER_REASON))
        return 0;
    struct event_window *all = drop_log_window.lookup(&zero);
    return all && budget_take(all, id, NS_DROP_LOG_PER_WINDOW);
}

/* The logged drop's 5-tuple, when the packet is IP (flow_parse.h). */
static __always_inline void event_tuple(const void *skb, struct drop_event *e)
{
    u16 nh = read_u16(skb, NS_OFF_SKB_NETWORK_HEADER);
    const u8 *head = (const u8 *)read_u64(skb, NS_OFF_SKB_HEAD);
    struct flow_tuple t = {};
    if (!head || nh == 0xffff || !parse_ip(head + nh, e->protocol, &t))
        return;
    e->family = t.family;
    e->l4proto = t.proto;
    e->sport = t.sport;
    e->dport = t.dport;
    __builtin_memcpy(e->saddr, t.saddr, 16);
    __builtin_memcpy(e->daddr, t.daddr, 16);
}

NS_HOOK(kfree_skb)
{
    const void *skb = (const void *)ctx->args[0];
    u32 reason = (u32)ctx->args[2];
    if (reason == NS_SKB_NOT_DROPPED_YET || reason == NS_SKB_CONSUMED)
        return 0;
#ifdef NS_FILTER
    {
        /* The user's filter: only drops of matching packets count (non-IP ones never match). */
        struct flow_tuple ft = {};
        struct flow_tuple *t = &ft;
        u16 nh = read_u16(skb, NS_OFF_SKB_NETWORK_HEADER);
        const u8 *head = (const u8 *)read_u64(skb, NS_OFF_SKB_HEAD);
        u16 proto = bpf_ntohs(read_u16(skb, NS_OFF_SKB_PROTOCOL));
        if (!head || nh == 0xffff || !parse_ip(head + nh, proto, t) || !(NS_FILTER(t)))
            return 0;
    }
#endif

    u64 init = 0;
    u64 *count = drop_reasons.lookup_or_try_init(&reason, &init);
    if (count)
        (*count)++;
    else
        drop_bump(NS_DROP_STAT_REASONS_FULL);

    struct drop_key key = {};
    key.location = ctx->args[1];
    key.reason = reason;
    key.protocol = bpf_ntohs(read_u16(skb, NS_OFF_SKB_PROTOCOL));
    const void *dev = (const void *)read_u64(skb, NS_OFF_SKB_DEV);
    const void *sk = 0;
#ifdef NS_HAVE_RX_SK
    sk = (const void *)ctx->args[3];
#endif
    if (!sk)
        sk = (const void *)read_u64(skb, NS_OFF_SKB_SK);
    if (dev) {
        bpf_probe_read_kernel(&key.ifindex, sizeof(key.ifindex), (const char *)dev + NS_OFF_DEV_IFINDEX);
        bpf_probe_read_kernel_str(key.ifname, sizeof(key.ifname), (const char *)dev + NS_OFF_DEV_NAME);
    }
    key.netns = netns_of(dev, sk);
    if (sk) {
        key.sk_ino = sock_ino(sk); /* user space finds its process (/proc/PID/fd) */
        key.sk_cgroup = sock_cgroup_id(sk); /* and its container, even with no process found */
    }
    u32 zero = 0;
    void *details = drop_details.lookup(&zero);
    u64 *detail = details ? table_entry(details, &key, &init) : 0;
    if (detail)
        (*detail)++;
    else
        drop_bump(NS_DROP_STAT_DETAILS_FULL);

#if NS_DROP_LOG
    u64 now = bpf_ktime_get_ns();
    if (!may_log(reason, now)) {
        drop_bump(NS_DROP_STAT_SUPPRESSED);
        return 0;
    }
    struct drop_event *e = drop_events.ringbuf_reserve(sizeof(struct drop_event));
    if (!e) {
        drop_bump(NS_DROP_STAT_LOST);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = now;
    e->location = key.location;
    e->reason = reason;
    e->ifindex = key.ifindex;
    e->netns = key.netns;
    e->cpu = bpf_get_smp_processor_id();
    e->protocol = key.protocol;
    __builtin_memcpy(e->ifname, key.ifname, sizeof(e->ifname));
    event_tuple(skb, e);
    /* No wakeup per event: user space drains the ring buffer on its own schedule. */
    drop_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    drop_bump(NS_DROP_STAT_LOGGED);
#endif /* NS_DROP_LOG: 0 when no one reads the log (snapshot without the drop-log section) */
    return 0;
}
