/* Hardirqs per IRQ line and CPU: how many, and how long their handlers ran. Exact: a hardirq is not
 * per packet (NAPI masks the interrupt while it polls), and this kernel does not account IRQ time in
 * /proc/stat, so the handlers' time has no counter to come from.
 *
 * Raw tracepoints irq:irq_handler_entry(int irq, struct irqaction *action) and
 * irq:irq_handler_exit(int irq, struct irqaction *action, int ret), since Linux 2.6.35. Raw
 * tracepoints skip building the trace record, which matters on the interrupt path. Counted per
 * handler (irqaction): a line shared by several devices runs each of them on every interrupt, and
 * /proc/interrupts counts the interrupt once.
 */
#include "netscope.h"

BPF_PERCPU_HASH(hardirq_stats, struct hardirq_key, struct hardirq_stat, NS_MAX_IRQS);
/* Interrupts the full handler table could not count (user space prunes lines gone). */
BPF_PERCPU_ARRAY(hardirq_full, u64, 1);
BPF_PERCPU_ARRAY(hardirq_running, struct hardirq_start, 1);

NS_HOOK(irq_handler_entry)
{
    struct hardirq_key key = {.action = ctx->args[1], .irq = (u32)ctx->args[0]};
    u32 zero = 0;
    struct hardirq_stat init = {};
    struct hardirq_stat *s = hardirq_stats.lookup_or_try_init(&key, &init);
    if (s) {
        s->count++;
    } else {
        u64 *full = hardirq_full.lookup(&zero);
        if (full)
            (*full)++;
    }
    struct hardirq_start *run = hardirq_running.lookup(&zero);
    if (run) {
        run->irq = key.irq;
        run->action = key.action;
        run->ts = bpf_ktime_get_ns();
    }
    return 0;
}

NS_HOOK(irq_handler_exit)
{
    struct hardirq_key key = {.action = ctx->args[1], .irq = (u32)ctx->args[0]};
    u32 zero = 0;
    struct hardirq_start *run = hardirq_running.lookup(&zero);
    if (!run || !run->ts || run->irq != key.irq || run->action != key.action)
        return 0;
    u64 delta = bpf_ktime_get_ns() - run->ts;
    run->ts = 0;
    struct hardirq_stat *s = hardirq_stats.lookup(&key);
    if (s)
        s->time_ns += delta;
    return 0;
}
