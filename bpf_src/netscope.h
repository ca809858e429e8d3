/* Structs shared by netscope's BPF programs and their Python decoders.
 *
 * The decoders (netscope/probes/<probe>.py) read map values through the ctypes types BCC builds
 * from these very definitions, by field name, so a layout lives in this one place.
 * Kernel struct offsets never come from headers: probes that need them get NS_OFF_* defines
 * computed from the running kernel's BTF.
 */
#ifndef NETSCOPE_H
#define NETSCOPE_H

/* NR_SOFTIRQS in include/linux/interrupt.h (HI .. RCU), stable since 4.x. */
#define NS_NR_SOFTIRQS 10
/* Upper bound on distinct IRQ numbers tracked per CPU. */
#define NS_MAX_IRQS 1024

/* hardirq.bpf.c: one IRQ line on one CPU, cumulative. */
struct hardirq_stat {
    u64 count;
    u64 time_ns;
};

/* hardirq.bpf.c: the handler running on this CPU (hardirqs do not nest on Linux). */
struct hardirq_start {
    u64 ts;
    u32 irq;
    u32 pad;
};

/* softirq.bpf.c: one softirq vector on one CPU, cumulative. */
struct softirq_stat {
    u64 raises;      /* irq:softirq_raise */
    u64 runs;        /* irq:softirq_entry: what /proc/softirqs counts */
    u64 time_ns;     /* entry -> exit */
    u64 wait_ns_sum; /* first raise -> entry */
    u64 wait_count;
};

/* napi.bpf.c: NAPI polls on one CPU, cumulative. */
struct napi_stat {
    u64 polls;
    u64 packets;          /* sum of `work` */
    u64 budget_exhausted; /* polls with work >= budget: the ring held a budget or more */
};

#endif /* NETSCOPE_H */
