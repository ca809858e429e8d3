/* NAPI polls per NAPI instance and CPU: how many, packets drained, how often a poll used its whole
 * budget, how deep polls ran (histogram) and how long full-budget runs lasted.
 *
 * Raw tracepoint napi:napi_poll(struct napi_struct *napi, int work, int budget); `budget` exists
 * since Linux 4.9. The per-CPU backlog (veth without NAPI, loopback) polls through it too, with no
 * device: it is keyed with ifindex 0, and there it fires once per packet. So the counts are sampled
 * (sampler.h): a sampled poll adds its weight to the polls and to its work bucket. Runs of
 * full-budget polls are followed exactly, per CPU, at the cost of a compare per poll: a run is
 * written to its instance only when it ends. napi->dev and napi->napi_id are read at BTF offsets.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "sampler.h"

BPF_PERCPU_HASH(napi_stats, struct napi_key, struct napi_stat, NS_NAPI_MAX);
/* Polls the full instance table could not count (user space prunes the keys of devices gone). */
BPF_PERCPU_ARRAY(napi_full, u64, 1);
BPF_PERCPU_ARRAY(napi_streaks, struct napi_streak, 1);
BPF_PERCPU_ARRAY(napi_sampler, struct ns_sampler, 1);
BPF_ARRAY(napi_rate, struct ns_rate, 1);

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

static __always_inline void napi_key_of(const void *napi, struct napi_key *key)
{
    const void *dev = (const void *)read_u64(napi, NS_OFF_NAPI_DEV);
    if (dev) {
        key->ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
        key->netns = netns_of(dev, 0);
        key->napi_id = read_u32(napi, NS_OFF_NAPI_ID);
    }
}

/* The instance's counters, created on first use (with its device's name). */
static __always_inline struct napi_stat *napi_stat_of(const void *napi, struct napi_key *key)
{
    struct napi_stat *s = napi_stats.lookup(key);
    if (s)
        return s;
    struct napi_stat init = {};
    const void *dev = (const void *)read_u64(napi, NS_OFF_NAPI_DEV);
    if (dev)
        bpf_probe_read_kernel_str(init.ifname, sizeof(init.ifname), (const char *)dev + NS_OFF_DEV_NAME);
    napi_stats.update(key, &init);
    s = napi_stats.lookup(key);
    if (!s) {
        u32 zero = 0;
        u64 *full = napi_full.lookup(&zero);
        if (full)
            (*full)++;
    }
    return s;
}

/* A run of full-budget polls ended: counted once, on its instance. */
static __always_inline void end_streak(struct napi_streak *run)
{
    struct napi_stat *s = napi_stat_of((const void *)run->napi, &run->key);
    u32 b = streak_bucket(run->polls);
    if (s && b < NS_STREAK_HIST)
        s->streak_hist[b]++;
    run->napi = 0;
    run->polls = 0;
}

NS_HOOK(napi_poll)
{
    u64 napi = ctx->args[0];
    int work = (int)ctx->args[1];
    int budget = (int)ctx->args[2];
    u32 zero = 0;

    struct napi_streak *run = napi_streaks.lookup(&zero);
    if (run) {
        if (run->napi && (run->napi != napi || work < budget))
            end_streak(run);
        if (work >= budget) {
            if (!run->napi) {
                run->napi = napi;
                __builtin_memset(&run->key, 0, sizeof(run->key));
                napi_key_of((const void *)napi, &run->key);
            }
            run->polls++;
        }
    }

    u32 weight = ns_sample(napi_sampler.lookup(&zero), napi_rate.lookup(&zero));
    if (!weight)
        return 0;
    struct napi_key key = {};
    napi_key_of((const void *)napi, &key);
    struct napi_stat *s = napi_stat_of((const void *)napi, &key);
    if (!s)
        return 0;
    s->polls += weight;
    s->packets += (u64)work * weight;
    u32 b = work_bucket(work);
    if (b < NS_NAPI_HIST)
        s->work_hist[b] += weight;
    if (work >= budget)
        s->budget_exhausted += weight;
    return 0;
}
