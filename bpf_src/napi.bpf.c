/* NAPI polls per NAPI instance and CPU: how many, packets drained, how often a poll used its whole
 * budget, how deep polls ran (histogram) and how long full-budget runs lasted.
 *
 * Raw tracepoint napi:napi_poll(struct napi_struct *napi, int work, int budget); `budget` exists
 * since Linux 4.9. The per-CPU backlog (veth without NAPI, loopback) polls through it too, with no
 * device: it is keyed with ifindex 0. napi->dev and napi->napi_id are read at BTF offsets.
 */
#include "netscope.h"
#include "kernel_read.h"

BPF_PERCPU_HASH(napi_stats, struct napi_key, struct napi_stat, 4096);
/* Full-budget polls in a row, per NAPI instance (one instance polls on one CPU at a time). */
BPF_HASH(napi_streak, u64, u64, 4096);

static __always_inline u32 work_bucket(int work)
{
    if (work <= 0) return 0;
    if (work < 2) return 1;
    if (work < 4) return 2;
    if (work < 8) return 3;
    if (work < 16) return 4;
    if (work < 32) return 5;
    if (work < 64) return 6;
    return 7;
}

static __always_inline u32 streak_bucket(u64 n)
{
    if (n < 2) return 0;
    if (n < 4) return 1;
    if (n < 8) return 2;
    return 3;
}

NS_HOOK(napi_poll)
{
    const void *napi = (const void *)ctx->args[0];
    int work = (int)ctx->args[1];
    int budget = (int)ctx->args[2];
    const void *dev = (const void *)read_u64(napi, NS_OFF_NAPI_DEV);

    struct napi_key key = {};
    if (dev) {
        key.ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
        key.netns = netns_of(dev, 0);
        key.napi_id = read_u32(napi, NS_OFF_NAPI_ID);
    }
    struct napi_stat *s = napi_stats.lookup(&key);
    if (!s) {
        struct napi_stat init = {};
        if (dev)
            bpf_probe_read_kernel_str(init.ifname, sizeof(init.ifname), (const char *)dev + NS_OFF_DEV_NAME);
        napi_stats.update(&key, &init);
        s = napi_stats.lookup(&key);
        if (!s)
            return 0;
    }
    s->polls++;
    s->packets += work;
    u32 b = work_bucket(work);
    if (b < NS_NAPI_HIST)
        s->work_hist[b]++;

    u64 id = (u64)napi;
    u64 zero = 0;
    u64 *streak = napi_streak.lookup_or_try_init(&id, &zero);
    if (work >= budget) {
        s->budget_exhausted++;
        if (streak)
            (*streak)++;
    } else if (streak && *streak) {
        u32 sb = streak_bucket(*streak);
        if (sb < NS_STREAK_HIST)
            s->streak_hist[sb]++;
        *streak = 0;
    }
    return 0;
}
