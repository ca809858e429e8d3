/* Interrupts per CPU: hardirqs per IRQ line (count, handler time) and softirqs per vector (raises,
 * runs, run time, raise-to-run wait). One program for both keeps start-up to one compile.
 *
 * Raw tracepoints irq:irq_handler_entry(int irq, struct irqaction *action) and
 * irq:irq_handler_exit(int irq, struct irqaction *action, int ret), since Linux 2.6.35;
 * irq:softirq_raise / irq:softirq_entry / irq:softirq_exit(unsigned int vec_nr), since 2.6.37.
 * Raw tracepoints skip building the trace record, which matters on the interrupt path. A softirq
 * is raised and run on the same CPU, so per-CPU slots pair raise, entry and exit.
 */
#include "netscope.h"

BPF_PERCPU_HASH(hardirq_stats, u32, struct hardirq_stat, NS_MAX_IRQS);
BPF_PERCPU_ARRAY(hardirq_running, struct hardirq_start, 1);

NS_HOOK(irq_handler_entry)
{
    u32 irq = (u32)ctx->args[0];
    u32 zero = 0;
    struct hardirq_stat init = {};
    struct hardirq_stat *s = hardirq_stats.lookup_or_try_init(&irq, &init);
    if (s)
        s->count++;
    struct hardirq_start *run = hardirq_running.lookup(&zero);
    if (run) {
        run->irq = irq;
        run->ts = bpf_ktime_get_ns();
    }
    return 0;
}

NS_HOOK(irq_handler_exit)
{
    u32 irq = (u32)ctx->args[0];
    u32 zero = 0;
    struct hardirq_start *run = hardirq_running.lookup(&zero);
    if (!run || !run->ts || run->irq != irq)
        return 0;
    u64 delta = bpf_ktime_get_ns() - run->ts;
    run->ts = 0;
    struct hardirq_stat *s = hardirq_stats.lookup(&irq);
    if (s)
        s->time_ns += delta;
    return 0;
}

BPF_PERCPU_ARRAY(softirq_stats, struct softirq_stat, NS_NR_SOFTIRQS);
/* Longest raise-to-run wait since user space last read (and zeroed) it. */
BPF_PERCPU_ARRAY(softirq_wait_max, u64, NS_NR_SOFTIRQS);
/* Scratch: first raise not yet run, and the entry of the run in progress. */
BPF_PERCPU_ARRAY(softirq_raised_at, u64, NS_NR_SOFTIRQS);
BPF_PERCPU_ARRAY(softirq_entered_at, u64, NS_NR_SOFTIRQS);

NS_HOOK(softirq_raise)
{
    u32 vec = (u32)ctx->args[0];
    struct softirq_stat *s = softirq_stats.lookup(&vec);
    if (!s)
        return 0;
    s->raises++;
    u64 *raised = softirq_raised_at.lookup(&vec);
    if (raised && *raised == 0)
        *raised = bpf_ktime_get_ns();
    return 0;
}

NS_HOOK(softirq_entry)
{
    u32 vec = (u32)ctx->args[0];
    struct softirq_stat *s = softirq_stats.lookup(&vec);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    s->runs++;
    u64 *raised = softirq_raised_at.lookup(&vec);
    if (raised && *raised) {
        u64 wait = now - *raised;
        *raised = 0;
        s->wait_ns_sum += wait;
        s->wait_count++;
        u64 *max = softirq_wait_max.lookup(&vec);
        if (max && wait > *max)
            *max = wait;
    }
    u64 *entered = softirq_entered_at.lookup(&vec);
    if (entered)
        *entered = now;
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
    struct softirq_stat *s = softirq_stats.lookup(&vec);
    if (s)
        s->time_ns += delta;
    return 0;
}
