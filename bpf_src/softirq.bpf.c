/* Softirqs per vector and CPU: raises and runs (exact), run time and raise-to-run wait (sampled).
 * On veth or loopback a NET_RX softirq runs for every packet, so its timing hooks are per-packet
 * work: only a sampled run reads the clock (sampler.h). The kernel counts the runs itself
 * (/proc/softirqs) and all softirq time per CPU (/proc/stat); what only these hooks tell is the
 * time per vector and how long a raised softirq waited to run.
 *
 * Raw tracepoints irq:softirq_raise / irq:softirq_entry / irq:softirq_exit(unsigned int vec_nr),
 * since Linux 2.6.37. A softirq is raised and run on the same CPU, so per-CPU slots pair raise,
 * entry and exit.
 */
#include "netscope.h"
#include "sampler.h"

#define NS_SOFTIRQ_SAMPLER_RAISE 0
#define NS_SOFTIRQ_SAMPLER_ENTRY 1

BPF_PERCPU_ARRAY(softirq_stats, struct softirq_stat, NS_NR_SOFTIRQS);
/* Longest sampled raise-to-run wait since user space last read (and zeroed) it. */
BPF_PERCPU_ARRAY(softirq_wait_max, u64, NS_NR_SOFTIRQS);
/* Scratch: the sampled first raise not yet run, and the sampled run in progress (with its weight). */
BPF_PERCPU_ARRAY(softirq_raised_at, u64, NS_NR_SOFTIRQS);
BPF_PERCPU_ARRAY(softirq_entered_at, u64, NS_NR_SOFTIRQS);
BPF_PERCPU_ARRAY(softirq_entered_weight, u32, NS_NR_SOFTIRQS);
/* Set while a raise is pending (sampled or not), so only the first raise before a run is a candidate. */
BPF_PERCPU_ARRAY(softirq_pending, u32, NS_NR_SOFTIRQS);
BPF_PERCPU_ARRAY(softirq_sampler, struct ns_sampler, 2);
BPF_ARRAY(softirq_rate, struct ns_rate, 1);

NS_HOOK(softirq_raise)
{
    u32 vec = (u32)ctx->args[0];
    u32 zero = 0, which = NS_SOFTIRQ_SAMPLER_RAISE;
    struct softirq_stat *s = softirq_stats.lookup(&vec);
    u32 *pending = softirq_pending.lookup(&vec);
    struct ns_rate *rate = softirq_rate.lookup(&zero);
    if (!s || !pending)
        return 0;
    s->raises += ns_scale(rate); /* while attached for 1/scale of the time: an estimate */
    if (*pending)
        return 0;
    *pending = 1;
    if (!ns_sample(softirq_sampler.lookup(&which), rate))
        return 0;
    u64 *raised = softirq_raised_at.lookup(&vec);
    if (raised)
        *raised = bpf_ktime_get_ns();
    return 0;
}

NS_HOOK(softirq_entry)
{
    u32 vec = (u32)ctx->args[0];
    struct softirq_stat *s = softirq_stats.lookup(&vec);
    if (!s)
        return 0;
    s->runs++;
    u32 *pending = softirq_pending.lookup(&vec);
    if (pending)
        *pending = 0;
    u64 now = 0;
    u64 *raised = softirq_raised_at.lookup(&vec);
    if (raised && *raised) {
        now = bpf_ktime_get_ns();
        u64 wait = now - *raised;
        *raised = 0;
        s->wait_ns_sum += wait;
        s->wait_count++;
        u64 *max = softirq_wait_max.lookup(&vec);
        if (max && wait > *max)
            *max = wait;
    }
    u32 zero = 0, which = NS_SOFTIRQ_SAMPLER_ENTRY;
    u32 weight = ns_sample(softirq_sampler.lookup(&which), softirq_rate.lookup(&zero));
    if (!weight)
        return 0;
    u64 *entered = softirq_entered_at.lookup(&vec);
    u32 *w = softirq_entered_weight.lookup(&vec);
    if (entered && w) {
        *entered = now ? now : bpf_ktime_get_ns();
        *w = weight;
    }
    return 0;
}

NS_HOOK(softirq_exit)
{
    u32 vec = (u32)ctx->args[0];
    u64 *entered = softirq_entered_at.lookup(&vec);
    if (!entered || *entered == 0)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *entered;
    *entered = 0;
    u32 *w = softirq_entered_weight.lookup(&vec);
    struct softirq_stat *s = softirq_stats.lookup(&vec);
    if (s && w) {
        s->time_ns += delta * *w;
        s->timed += *w;
    }
    return 0;
}
