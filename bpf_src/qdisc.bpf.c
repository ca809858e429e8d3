/* Qdisc wait: how long sampled packets waited in their device's qdisc, from qdisc:qdisc_enqueue to
 * qdisc:qdisc_dequeue, per device, as a log-linear histogram built in the kernel.
 *
 * Raw tracepoints qdisc:qdisc_enqueue(struct Qdisc *, const struct netdev_queue *txq, struct
 * sk_buff *skb), Linux 5.19, and qdisc:qdisc_dequeue(struct Qdisc *, const struct netdev_queue
 * *txq, int packets, struct sk_buff *skb), 4.19: each once per packet through a qdisc that queues
 * (a noqueue device, as a veth by default, runs neither). A sampled skb (sampler.h) is stamped in a
 * table by its address, with its device; the dequeue that hands it to the driver ends its wait.
 * Only the first skb of a bulk dequeue is looked up (the next ones chain from it): the stamps of
 * the others, and of skbs the qdisc dropped, are left, and user space removes those older than a
 * second (netscope/probes/qdisc.py). An unsampled enqueue costs a decrement; a dequeue, one lookup.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "sampler.h"
#include "hist.h"

BPF_F_TABLE("hash", u64, struct qdisc_stamp, qdisc_stamps, NS_QDISC_STAMPS, BPF_F_NO_PREALLOC);
BPF_HASH(qdisc_hist, struct qdisc_hist_key, u64, NS_QDISC_HIST_KEYS);
/* Sampled skbs the full stamp table could not take (the probe's not_counted). */
BPF_PERCPU_ARRAY(qdisc_full, u64, 1);
BPF_PERCPU_ARRAY(qdisc_sampler, struct ns_sampler, 1);
BPF_ARRAY(qdisc_rate, struct ns_rate, 1);

NS_HOOK(qdisc_enqueue)
{
    u32 zero = 0;
    u32 weight = ns_sample(qdisc_sampler.lookup(&zero), qdisc_rate.lookup(&zero));
    if (!weight)
        return 0;
    const void *txq = (const void *)ctx->args[1];
    const void *dev = txq ? (const void *)read_u64(txq, NS_OFF_TXQ_DEV) : 0;
    if (!dev)
        return 0;
    u64 skb = ctx->args[2];
    struct qdisc_stamp stamp = {
        .ts = bpf_ktime_get_ns(),
        .ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX),
        .netns = netns_of(dev, 0),
        .weight = weight,
    };
    if (qdisc_stamps.update(&skb, &stamp)) {
        u64 *full = qdisc_full.lookup(&zero);
        if (full)
            *full += 1;
    }
    return 0;
}

NS_HOOK(qdisc_dequeue)
{
    u64 skb = ctx->args[3];
    if (!skb)
        return 0; /* nothing dequeued */
    struct qdisc_stamp *stamp = qdisc_stamps.lookup(&skb);
    if (!stamp)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct qdisc_hist_key key = {.netns = stamp->netns, .ifindex = stamp->ifindex};
    key.bucket = bucket(now > stamp->ts ? now - stamp->ts : 0, NS_LAT_PROC_BITS, NS_LAT_PROC_BUCKETS);
    u64 weight = stamp->weight, none = 0;
    qdisc_stamps.delete(&skb);
    u64 *n = qdisc_hist.lookup_or_try_init(&key, &none);
    if (n)
        __sync_fetch_and_add(n, weight);
    return 0;
}
