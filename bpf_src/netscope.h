/* Structs shared by netscope's BPF programs and their Python decoders.
 *
 * The decoders (netscope/probes/<probe>.py) read map values through the ctypes types BCC builds
 * from these very definitions, by field name, so a layout lives in this one place.
 * Kernel struct offsets never come from headers: probes that need them get NS_OFF_* defines
 * computed from the running kernel's BTF.
 */
#ifndef NETSCOPE_H
#define NETSCOPE_H

/* A probe's hook on raw tracepoint `tp`, named <probe>__<tp> after NS_PROBE, which netscope defines
 * before each probe's source: probes compiled as one object (one compiler run) keep their hooks
 * apart (drops__kfree_skb, flows__kfree_skb). User space attaches each by name. */
#define NS_CAT_(a, b) a##__##b
#define NS_CAT(a, b) NS_CAT_(a, b)
#define NS_HOOK(tp) int NS_CAT(NS_PROBE, tp)(struct bpf_raw_tracepoint_args *ctx)

/* sampler.h: one per-packet hook's 1-in-N sampling on one CPU (a per-CPU array slot). */
struct ns_sampler {
    u64 fires;    /* every run of the hook: what the sampling rate adapts to */
    u64 sampled;  /* runs that did the whole work */
    u64 weights;  /* their weights, summed: the runs they stand for (calibrated to a kernel count) */
    u32 left;     /* runs to go until the next sample */
    u32 gap;      /* length of the gap under way: the weight of the sample that ends it */
};

/* sampler.h: a sampled probe's rate, set by user space: 1 run in `n` does the whole work, and the
 * hooks are attached for 1/`scale` of the interval (each weight counts `scale` times over); when
 * the window comes one interval in k only, k times as long, user space sets scale/k here. */
struct ns_rate {
    u32 n;
    u32 scale;
};

/* NR_SOFTIRQS in include/linux/interrupt.h (HI .. RCU), stable since 4.x. */
#define NS_NR_SOFTIRQS 10
/* Upper bound on distinct IRQ numbers tracked per CPU. */

/* hardirq.bpf.c: one handler of an IRQ line. A shared line runs every handler it has on every
 * interrupt, so its interrupts are its handlers' most-run count, not their sum (user space,
 * netscope/probes/hardirq.py). */
struct hardirq_key {
    u64 action;    /* the handler's struct irqaction */
    u32 irq;
    u32 pad;
};

/* hardirq.bpf.c: one handler of an IRQ line on one CPU, cumulative. */
struct hardirq_stat {
    u64 count;
    u64 time_ns;
};

/* hardirq.bpf.c: the handler running on this CPU (hardirqs do not nest on Linux). */
struct hardirq_start {
    u64 ts;
    u64 action;
    u32 irq;
    u32 pad;
};

/* softirq.bpf.c: one softirq vector on one CPU, cumulative. Raises and runs are exact; times are
 * sampled: time_ns is the sampled runs' durations each times its weight (an estimate of the total),
 * the waits are those of the sampled raises. */
struct softirq_stat {
    u64 raises;      /* irq:softirq_raise */
    u64 runs;        /* irq:softirq_entry: what /proc/softirqs counts */
    u64 time_ns;     /* entry -> exit, estimated from the sampled runs */
    u64 timed;       /* runs time_ns stands for: the sampled runs' weights */
    u64 wait_ns_sum; /* first raise -> entry, of the sampled raises */
    u64 wait_count;
};

/* napi.bpf.c: one NAPI instance (or a CPU's backlog: ifindex 0), counted per CPU. */
struct napi_key {
    u32 netns;
    u32 ifindex;
    u32 napi_id;
    u32 pad;
};

#define NS_NAPI_HIST 8   /* work per poll: 0, 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+ */
#define NS_STREAK_HIST 4 /* full-budget polls in a row: 1, 2-3, 4-7, 8+ */

/* napi.bpf.c: cumulative. Polls, packets, full-budget polls and the work histogram are estimates
 * from the sampled polls (each counted times its weight); the streaks are exact. */
struct napi_stat {
    u64 polls;
    u64 packets;          /* sum of `work` */
    u64 budget_exhausted; /* polls with work >= budget: the ring held a budget or more */
    u64 work_hist[NS_NAPI_HIST];
    u64 streak_hist[NS_STREAK_HIST]; /* runs of full-budget polls, counted when they end */
    char ifname[16];
};

/* napi.bpf.c: per CPU, the NAPI instance whose run of full-budget polls is under way. */
struct napi_streak {
    u64 napi;             /* its struct napi_struct; 0: no run under way */
    u64 polls;            /* full-budget polls in a row so far */
    struct napi_key key;
};

/* rings.bpf.c: one queue of one device, one direction. */
struct queue_key {
    u32 netns;
    u32 ifindex;
    u16 queue;  /* RX: the recorded rx queue, NS_QUEUE_UNKNOWN when the driver records none */
    u8 tx;      /* 0 RX (net:netif_receive_skb), 1 TX (net:net_dev_start_xmit) */
    u8 pad;
};

#define NS_QUEUE_UNKNOWN 0xffff

/* rings.bpf.c: cumulative, estimated from the sampled packets (each counted times its weight). */
struct queue_stat {
    u64 packets;  /* segments: a GRO/GSO skb counts as the packets it carries */
    u64 bytes;    /* L2 bytes, as drivers count them */
    char ifname[16];
};


/* drops.bpf.c: one aggregation bucket of dropped skbs, counted per CPU. */
struct drop_key {
    u64 location;   /* kfree_skb's caller: where the kernel gave up on the packet */
    u32 reason;     /* enum skb_drop_reason, subsystem id in the high 16 bits */
    u32 ifindex;    /* skb->dev, 0 when the skb has no device */
    u32 netns;      /* inode of the device's (or socket's) network namespace */
    u16 protocol;   /* skb->protocol, host byte order */
    u16 pad;
    char ifname[16];
    u64 sk_ino;     /* inode of the socket it was dropped at (rx_sk, else skb->sk); 0: none */
    u64 sk_cgroup;  /* that socket's cgroup v2 id (kernel_read.h sock_cgroup_id); 0: unknown */
};

/* drops.bpf.c: counters of the drop log (per CPU array indexes). */
#define NS_DROP_STAT_LOGGED 0     /* events written to the ring buffer */
#define NS_DROP_STAT_SUPPRESSED 1 /* over the rate limit: counted, not logged */
#define NS_DROP_STAT_LOST 2       /* ring buffer full */
#define NS_DROP_STAT_DETAILS_FULL 3 /* the breakdown map was full: counted by reason only */
#define NS_DROP_STAT_REASONS_FULL 4 /* the reasons map was full: not counted at all */
#define NS_DROP_STATS 5

/* drops.bpf.c: one logged drop, through the ring buffer. */
#define NS_NO_QUEUE_BIT 63 /* flows.bpf.c: the bit of a flow's `queues` for a packet with no queue */
#define NS_DROP_EVENT_SIZE 88 /* sizeof(struct drop_event): the ring buffer's budget is sized by it */

struct drop_event {
    u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
    u64 location;
    u32 reason;
    u32 ifindex;
    u32 netns;
    u32 cpu;
    u16 protocol;   /* host byte order */
    u8 family;      /* 4, 6, or 0 when not IP */
    u8 l4proto;     /* IPPROTO_* */
    u16 sport;      /* host byte order; 0 when not TCP/UDP */
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
    char ifname[16];
};
_Static_assert(sizeof(struct drop_event) == NS_DROP_EVENT_SIZE, "NS_DROP_EVENT_SIZE");

/* budget.h: a budget of logged events, shared by all CPUs: so many per window of time (a token
 * bucket refilled at each window). drops.bpf.c: one for the whole drop log, one per reason;
 * flows.bpf.c: the watched flow's packets. */
struct event_window {
    u64 window;
    u64 used;
};

/* latency.bpf.c and stack.bpf.c: histograms of the wait between data reaching a socket and its copy
 * to user space, and of stack time. Bucket of a value v (ns): v itself below 2^B; else octave
 * m = floor(log2 v) and the top B bits after the leading one, index (m - B + 1) * 2^B + sub
 * (hist.h). netscope/model/latency.py mirrors this. */
#define NS_LAT_PROC_BITS 4   /* 16 sub-buckets an octave: percentiles within ~3% */
#define NS_LAT_SOCK_BITS 3   /* 8 sub-buckets an octave for per-socket histograms */
#define NS_LAT_OCTAVES 36    /* up to 2^36 ns, about 69 s */
#define NS_LAT_PROC_BUCKETS ((NS_LAT_OCTAVES - NS_LAT_PROC_BITS + 1) << NS_LAT_PROC_BITS)
#define NS_LAT_SOCK_BUCKETS ((NS_LAT_OCTAVES - NS_LAT_SOCK_BITS + 1) << NS_LAT_SOCK_BITS)
/* The user's process scope (--pid, --container; `pid N` and `container ID` in a filter), pushed
 * into the hooks that run in a process's own context (the sender's sendmsg, the reader's recvmsg):
 * a probe that keeps to it has `<probe>_scope_on` (1: a scope is in force) and `<probe>_scope`, the
 * processes (NS_SCOPE_TGID | tgid) and the cgroup v2 ids of the scope's containers' directories
 * (bpf_get_current_cgroup_id, Linux 4.18) in it. Maps user space writes: a change of scope
 * recompiles nothing. */
#define NS_SCOPE_MAX 4096
#define NS_SCOPE_TGID (1ULL << 63)
#define NS_LAT_RING 32       /* sampled arrivals remembered per socket, oldest first */

/* latency.bpf.c: one socket followed, in a two-way set-associative table indexed by a hash of its
 * address (no hash map update per packet). Every read watched updates it (all of them, unless its
 * hook is duty-cycled: then user space scales what the watches counted);
 * a sampled arrival adds its weight to `arrivals` (an estimate). User space reads these slots. A slot
 * given to another socket gets a new `gen`, and the socket it followed is handed to user space with
 * its last counts (lat_retired). A freed socket's address is given to new sockets: `ino` tells them
 * apart. Three cache lines: what both sides only read, what the sampled arrivals write (on the CPU
 * that queues the data), what the reads write (on the reader's CPU), so the two CPUs do not pass a
 * line back and forth per packet. 192 bytes: slots start on a cache line. */
struct lat_slot {
    /* written when the slot is given to a socket */
    u64 sk;        /* the socket; 0: free; NS_LAT_CLAIMING: being given to one */
    u32 gen;       /* bumped each time the slot follows another socket */
    u16 protocol;  /* IPPROTO_TCP / IPPROTO_UDP; 0: a socket netscope does not follow */
    u16 family;
    u16 sport;     /* local port, host order */
    u16 dport;     /* remote port, host order */
    u32 pad0;
    u8 saddr[16];  /* local */
    u8 daddr[16];  /* remote */
    u64 ino;       /* the socket's inode number; 0 until known (a TCP child before accept()) */
    /* written by the sampled arrivals */
    u64 arrivals;  /* the sampled arrivals' weights: data-ready wakeups, estimated */
    u32 last_target; /* TCP: the sequence the last sampled arrival ended at */
    u32 pad1;
    u64 cgroup;    /* the socket's own cgroup v2 id (sk_cgrp_data), written when the slot is given */
    u8 pad2[40];
    /* written by the reads */
    u64 reads;     /* recvmsg calls that returned data (MSG_PEEK ignored) */
    u64 bytes;     /* bytes they returned */
    u64 udp_read;  /* UDP: datagrams read while watched (64 bits: the BPF target has a
                    * fetch-and-add that returns the count in 64 bits only) */
    u32 tgid;      /* the process that read last */
    u8 pad3[36];
};

#define NS_LAT_CLAIMING 1 /* lat_slot.sk while one CPU gives the slot to a socket: no socket's address */

/* latency.bpf.c: a socket the table stopped following (closed, or its slot given to another), with
 * its counts at that moment, through a ring buffer: user space adds what it had not read yet. */
struct lat_retired {
    u32 index;     /* its slot */
    u32 pad;
    struct lat_slot slot;
};

/* latency.bpf.c: a slot's sampled arrivals not yet read, oldest first: when each arrived and the
 * sequence its data ends at: for UDP the read that will copy the datagram (reads so far plus the
 * datagrams queued), for TCP rcv_nxt. Arrivals (on the CPU that queues the data) and reads (on the
 * reader's) move it on different CPUs at once: a hook moves it only while it holds `busy`, taken
 * with an atomic compare-and-swap and never waited for (the kernel allows no bpf_spin_lock in
 * tracing programs): a hook that finds it taken leaves this arrival untimed, or this read's pairing
 * to the next read. C side only. */
struct lat_arrivals {
    u64 ts[NS_LAT_RING];
    u32 target[NS_LAT_RING];
    u32 head;   /* next to read */
    u32 tail;   /* next to write */
    u32 thin;   /* a full ring kept every other arrival this many times: 1 in 2^thin is kept */
    u32 offered; /* sampled arrivals offered since the ring was last empty */
    u32 gen;    /* the slot's gen it holds arrivals of: another's are stale */
    u32 epoch;  /* the watch (lat_epoch) they arrived in: an earlier watch's are stale */
    u64 busy;   /* 1 while a hook moves the ring (64 bits: the target's compare-and-swap) */
};
/* latency.bpf.c: the sampled reads of one process, cumulative. */
struct lat_proc {
    u64 count;    /* reads with a latency: the histogram's total */
    u64 buckets[NS_LAT_PROC_BUCKETS];
    char comm[16];
    u64 cgroup_id; /* the cgroup v2 id it read from (bpf_get_current_cgroup_id), at its first */
};

struct lat_sock_key {
    u64 sk;
    u64 ino;       /* with sk: one socket, not a later one at its address */
    u32 tgid;
    u32 pad;
};

/* latency.bpf.c: the sampled reads of one socket by one process, cumulative. */
struct lat_sock {
    u64 count;
    u64 buckets[NS_LAT_SOCK_BUCKETS];
    u32 rcvbuf;    /* sk_rcvbuf at its last sampled read on this CPU: SO_RCVBUF as the kernel keeps it */
    u32 pad;
};

/* stack.bpf.c and latency.bpf.c: a histogram on its own. */
struct lat_hist {
    u64 buckets[NS_LAT_PROC_BUCKETS];
};

#define NS_LAT_STAT_SAMPLED 0   /* reads given a latency */
#define NS_LAT_STAT_THINNED 1   /* a socket's ring of sampled arrivals filled: every other one went */
#define NS_LAT_STAT_EVICTED 2   /* slots taken from a live socket to follow another */
#define NS_LAT_STAT_UNTIMED 3   /* sampled arrivals left untimed: read before they were stamped, or
                                 * their ring was busy on another CPU */
#define NS_LAT_STAT_UNCOUNTED 4 /* reads not counted: their slot was being given to a socket on
                                 * another CPU, or a closed socket's last counts found the ring
                                 * buffer full */
#define NS_LAT_STAT_FULL 5      /* sampled reads whose process or socket histogram had no room */
#define NS_LAT_STATS 6

/* stack.bpf.c: the sampled skb on this CPU, stamped when it entered the stack. */
struct stack_stamp {
    u64 skb;
    u64 ts;
};

#define NS_STACK_STAT_FOLLOWED 0    /* sampled skbs seen queued on their socket */
#define NS_STACK_STAT_UNFOLLOWED 1  /* sampled skbs that reached no socket's queue first */
#define NS_STACK_STATS 2

/* flows.bpf.c: a 5-tuple as parsed from packet headers. Addresses are four u32 words as in memory
 * (IPv4 in the first); ports in host order. netscope/model/filter.py compiles filters over it. */
struct flow_tuple {
    u32 saddr[4];
    u32 daddr[4];
    u16 sport;
    u16 dport;
    u8 family; /* 4 or 6 */
    u8 proto;  /* IPPROTO_* */
    u16 pad;
};

struct flow_key {
    struct flow_tuple t;
    u32 netns;
    u32 ifindex; /* the device it came in on (0 when unknown) */
};

/* flows.bpf.c: one flow over one interval (the table is swapped every interval), updated with
 * atomics by whichever CPU samples one of its packets. */
struct flow_stat {
    u64 rx_packets;
    u64 rx_bytes;
    u64 queues;   /* bit q: seen on RX queue q (q < NS_NO_QUEUE_BIT); that bit: no queue recorded */
    u64 cpus[2];  /* bit c of the 128: received on CPU c (c < 127); bit 127: on a CPU >= 127 */
    u64 first_ns;
    u64 last_ns;
};

struct flow_drop_key {
    struct flow_key flow;
    u32 reason;
    u32 pad;
};

/* flows.bpf.c: the one flow whose packets are sent to user space one by one (the flow screen). */
struct flow_watch {
    struct flow_key flow;
    u32 active;
    u32 pad;
};

/* flows.bpf.c: one packet of the watched flow, through the ring buffer. */
struct flow_event {
    u64 ts_ns;    /* bpf_ktime_get_ns() */
    u32 len;
    u32 reason;   /* drop reason; 0 for a received packet */
    u16 queue;    /* skb->queue_mapping as recorded (RX: queue + 1; 0 none) */
    u8 dropped;
    u8 cpu;
    u32 pad;
    u64 location; /* where it was dropped */
};

#define NS_FLOW_STAT_FILTERED 0  /* packets the filter left out */
#define NS_FLOW_STAT_EVENTS_LOST 1 /* watched-flow events the ring buffer could not take */
#define NS_FLOW_STAT_UNHELD_PACKETS 2 /* packets (weighted) of flows a full table could not hold */
#define NS_FLOW_STAT_UNHELD_BYTES 3
#define NS_FLOW_STAT_UNHELD_DROPS 4   /* drops a full table could not hold */
#define NS_FLOW_STAT_EVENTS_SKIPPED 5 /* watched-flow packets past the events' budget, not sent */
#define NS_FLOW_STATS 6

/* send.bpf.c: what one process sent through its sockets, cumulative, and the cgroup it sent
 * from (the last send's). */
struct send_proc {
    u64 sends;      /* sendmsg calls that sent something (weighted: sampler.h) */
    u64 bytes;      /* the bytes they sent (weighted) */
    u64 cgroup_id;  /* bpf_get_current_cgroup_id(): the cgroup v2 directory's inode */
    char comm[16];
};

/* qdisc.bpf.c: a sampled skb's entry into a qdisc, by the skb's address. */
struct qdisc_stamp {
    u64 ts;
    u32 ifindex;
    u32 netns;
    u32 weight;   /* the packets it stands for (sampler.h) */
    u32 pad;
};

/* qdisc.bpf.c: one bucket of one device's qdisc-wait histogram (LAT_PROC_BITS buckets, ns). */
struct qdisc_hist_key {
    u32 netns;
    u32 ifindex;
    u32 bucket;
    u32 pad;
};

/* tcp.bpf.c: one TCP connection as its socket on this box sees it (local and remote end, the
 * socket's namespace). IPv4 addresses fill the first 4 bytes. */
struct tcp_conn_key {
    u8 laddr[16];
    u8 raddr[16];
    u16 lport;
    u16 rport;
    u16 family;   /* AF_INET, AF_INET6 */
    u16 pad;
    u32 netns;
    u32 pad2;
};

/* tcp.bpf.c: one connection over one interval (the table is swapped every interval): events
 * counted one by one, and the state its last sampled segment (tcp:tcp_probe) saw. */
struct tcp_conn_stat {
    u64 retransmits;    /* tcp:tcp_retransmit_skb */
    u64 resets_sent;    /* tcp:tcp_send_reset */
    u64 resets_received;
    u64 exceed_buf;     /* sock:sock_exceed_buf_limit */
    u64 rcv_space_adjust;
    u64 rcvbuf_grow;
    u64 probes;         /* segments received, from the sample (weighted: sampler.h) */
    u64 zero_rcv_wnd;   /* ...of which this socket's receive window was 0 (weighted) */
    u64 zero_snd_wnd;   /* ...of which the peer's window was 0 (weighted) */
    u64 last_ns;        /* bpf_ktime_get_ns() of the last sampled segment (0: none sampled) */
    u32 srtt_us;        /* tp->srtt_us >> 3 */
    u32 snd_cwnd;
    u32 snd_ssthresh;
    u32 rcv_wnd;        /* the window this socket advertises, bytes */
    u32 snd_wnd;        /* the window the peer advertised, bytes */
    u32 rcvbuf;         /* sk_rcvbuf */
    u32 window_clamp;
    u32 pad;
};

#endif /* NETSCOPE_H */
