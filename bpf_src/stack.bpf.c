/* Stack time: how long a received packet took from entering the stack to being queued on its socket,
 * for a sample of packets.
 *
 * Raw tracepoints net:netif_receive_skb(struct sk_buff *skb), once per skb entering the stack, and
 * sock:sk_data_ready(const struct sock *sk), since Linux 6.10, once the data is queued. A sampled
 * skb (sampler.h) is stamped in a per-CPU slot: the protocol handlers queue it on its socket in the
 * same softirq, on the same CPU, before the next skb enters, so at sk_data_ready the skb just queued
 * (the tail of sk_receive_queue) is compared with the slot. A sampled skb that reached no socket's
 * queue before the next one entered (dropped, forwarded, a pure ACK, data coalesced into an earlier
 * skb, a socket owned by its reader) is counted as not followed. skb->tstamp is not used: it is only
 * set while RX timestamping is on. An unsampled packet costs a decrement at entry and a per-CPU
 * load at sk_data_ready.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "sampler.h"
#include "hist.h"

BPF_PERCPU_ARRAY(stack_pending, struct stack_stamp, 1);
BPF_PERCPU_ARRAY(stack_hist, struct lat_hist, 1);
BPF_PERCPU_ARRAY(stack_stats, u64, NS_STACK_STATS);
BPF_PERCPU_ARRAY(stack_sampler, struct ns_sampler, 1);
BPF_ARRAY(stack_rate, struct ns_rate, 1);

static __always_inline void stack_bump(u32 index)
{
    u64 *v = stack_stats.lookup(&index);
    if (v)
        (*v)++;
}

NS_HOOK(netif_receive_skb)
{
    u32 zero = 0;
    struct stack_stamp *p = stack_pending.lookup(&zero);
    if (!p)
        return 0;
    if (p->skb) {
        p->skb = 0;
        stack_bump(NS_STACK_STAT_UNFOLLOWED);
    }
    if (!ns_sample(stack_sampler.lookup(&zero), stack_rate.lookup(&zero)))
        return 0;
    p->skb = ctx->args[0];
    p->ts = bpf_ktime_get_ns();
    return 0;
}

NS_HOOK(sk_data_ready)
{
    u32 zero = 0;
    struct stack_stamp *p = stack_pending.lookup(&zero);
    if (!p)
        return 0;
    u64 skb = p->skb;
    if (!skb)
        return 0;
    const void *sk = (const void *)ctx->args[0];
    if (read_u64(sk, NS_OFF_SOCK_RCVQ_TAIL) != skb)
        return 0; /* a wakeup for other data (a socket's backlog, a timer) */
    u16 proto = read_u16(sk, NS_OFF_SOCK_PROTOCOL);
    if (proto != 6 && proto != 17)
        return 0; /* the sampled skb was freed, and its memory reused for a local message */
    u64 ts = p->ts;
    /* Taken only if no skb was stamped meanwhile: a wakeup in process context (a TCP socket's
     * backlog at release_sock) can be interrupted by the softirq stamping the next skb between the
     * reads of skb and ts, which are two stores. */
    if (__sync_val_compare_and_swap(&p->skb, skb, 0) != skb)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct lat_hist *h = stack_hist.lookup(&zero);
    u32 b = bucket(now - ts, NS_LAT_PROC_BITS, NS_LAT_PROC_BUCKETS);
    if (h && b < NS_LAT_PROC_BUCKETS)
        h->buckets[b]++;
    stack_bump(NS_STACK_STAT_FOLLOWED);
    return 0;
}
