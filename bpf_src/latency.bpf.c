/* Copy latency: how long received data waited on its socket before the reader copied it out.
 *
 * Raw tracepoints sock:sk_data_ready(const struct sock *sk), since Linux 6.10: fired when data is
 * queued on a socket (once per UDP datagram); sock:sock_recv_length(struct sock *sk, int ret,
 * int flags), since 6.2: once per recvmsg with the bytes read (MSG_PEEK reads are ignored).
 *
 * An arrival is sampled (sampler.h) before anything else: an unsampled one costs the hook a per-CPU
 * decrement. A sampled one goes on its socket's ring with its time and the sequence its data ends
 * at, which the kernel's own counts give: for TCP tcp_sock rcv_nxt; for UDP the read that will copy
 * the datagram, the reads so far plus the datagrams queued (a socket's queue is read in order). Every
 * read counts in the socket's slot (reads, bytes, UDP datagrams read: exact), found with one lookup
 * in a table indexed by a hash of the socket's address and told from a later socket at that address
 * by its inode number; a read that copies the end of the oldest sampled arrival waiting (TCP
 * copied_seq, UDP the read count) reads the clock, and that arrival's wait goes into the
 * histograms: the wait of a read is that of the oldest sampled data it copied.
 *
 * On a busy box both hooks are attached for part of each interval only (a watch, netscope/sources/
 * live.py): the arrivals for 1/scale of it, the reads from the same moment until the arrivals sampled
 * then have been read. A UDP target is relative (the reads counted so far plus the datagrams queued):
 * every read after a sampled arrival is watched, so the read count reaches it at the read that copies
 * it, whatever reads went uncounted before. Sampled arrivals still waiting when the reads' hook went
 * off would meet a count that missed reads: user space bumps lat_epoch before the hook is on again, and
 * a ring of an earlier epoch is stale (its arrivals untimed).
 *
 * Arrivals and reads of one socket run on different CPUs at once: counters move with atomic adds,
 * a slot changes hands by compare-and-swap, and a socket's ring of sampled arrivals is moved by one
 * hook at a time (struct lat_arrivals), so an arrival is never paired with a read that did not copy
 * it.
 *
 * skb->tstamp is not used: it is only set while RX timestamping is on.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "flow_parse.h"
#include "sampler.h"
#include "hist.h"

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define MSG_PEEK_ 2

/* Memory-mapped by user space, which reads the used slots in place (BPF_F_MMAPABLE, Linux 5.5). */
BPF_F_TABLE("array", u32, struct lat_slot, lat_slots, NS_LAT_SOCKETS, BPF_F_MMAPABLE);
BPF_ARRAY(lat_rings, struct lat_arrivals, NS_LAT_SOCKETS);
BPF_RINGBUF_OUTPUT(lat_retired, NS_LAT_RETIRED_PAGES);
/* Per process and per socket: plain hashes (an LRU would evict silently), whose entries user space
 * deletes once their process is gone or their socket no longer followed; a sampled read finding no
 * room is counted (NS_LAT_STAT_FULL). */
BPF_PERCPU_HASH(lat_by_proc, u32, struct lat_proc, NS_LAT_PROCS);
BPF_PERCPU_HASH(lat_proc_max, u32, u64, NS_LAT_PROCS);
BPF_PERCPU_HASH(lat_by_sock, struct lat_sock_key, struct lat_sock, NS_LAT_SOCK_HISTS);
BPF_PERCPU_ARRAY(lat_stats, u64, NS_LAT_STATS);
BPF_PERCPU_ARRAY(latency_sampler, struct ns_sampler, 1);
BPF_ARRAY(latency_rate, struct ns_rate, 1);
BPF_ARRAY(latency_scope_on, u32, 1); /* the user's process scope (netscope.h NS_SCOPE_MAX) */
BPF_HASH(latency_scope, u64, u8, NS_SCOPE_MAX);
BPF_ARRAY(lat_epoch, u32, 1); /* the watch: bumped by user space before the reads' hook is on again */
/* Zeroed templates for new entries: the structs are far larger than the 512-byte BPF stack. Only
 * their identity fields (comm, cgroup) are ever written, so their counters stay zero. */
BPF_PERCPU_ARRAY(lat_new_proc, struct lat_proc, 1);
BPF_PERCPU_ARRAY(lat_new_sock, struct lat_sock, 1);

static __always_inline void lat_bump(u32 index)
{
    u64 *v = lat_stats.lookup(&index);
    if (v)
        (*v)++;
}

/* The first of the socket's two slots (its set). */
static __always_inline u32 lat_set(u64 sk)
{
    return (u32)((sk * 0x9E3779B97F4A7C15ULL) >> 40) & (NS_LAT_SOCKETS - 2);
}

static __always_inline u32 udp_queue_len(const void *sk)
{
    return read_u32(sk, NS_OFF_SOCK_RCVQ_LEN) + read_u32(sk, NS_OFF_UDP_READERQ_LEN);
}

/* Give slot `s` to socket `sk`: taken from whatever it followed with a compare-and-swap (two CPUs
 * may meet a new socket at once: the loser does without, counted), the socket it followed handed to
 * user space with its counts, then counted from zero under a new gen and published. A socket
 * netscope does not follow (not TCP or UDP, or left out by the filter) gets a slot too, with
 * protocol 0, so it is told apart with one lookup next time. 0 when the slot could not be taken. */
static __always_inline struct lat_slot *lat_claim(struct lat_slot *s, u32 index, const void *sk, u64 ino)
{
    u64 old = s->sk;
    if (old == NS_LAT_CLAIMING || __sync_val_compare_and_swap(&s->sk, old, NS_LAT_CLAIMING) != old) {
        lat_bump(NS_LAT_STAT_UNCOUNTED);
        return 0;
    }
    if (old) {
        /* A slot still held by a live socket (its inode unchanged) is an eviction. */
        if (s->ino && sock_ino((const void *)old) == s->ino)
            lat_bump(NS_LAT_STAT_EVICTED);
        if (s->protocol) {
            struct lat_retired *e = lat_retired.ringbuf_reserve(sizeof(struct lat_retired));
            if (e) {
                e->index = index;
                e->pad = 0;
                __builtin_memcpy(&e->slot, s, sizeof(e->slot));
                e->slot.sk = old;
                lat_retired.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
            } else {
                lat_bump(NS_LAT_STAT_UNCOUNTED);
            }
        }
    }
    s->gen++;
    s->ino = ino;
    s->arrivals = s->reads = s->bytes = 0;
    s->udp_read = s->tgid = s->last_target = 0;
    s->cgroup = 0;
    s->protocol = 0;
    /* TCP or UDP, and matching the user's filter (as data flowing from the peer to this socket). */
    u16 proto = read_u16(sk, NS_OFF_SOCK_PROTOCOL);
    if (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) {
        struct flow_tuple ft = {};
        struct flow_tuple *t = &ft;
        sock_tuple(sk, proto, t);
#ifdef NS_FILTER
        if (NS_FILTER(t))
#endif
        {
            s->family = t->family == 6 ? 10 : 2;
            s->sport = t->dport; /* the socket's own end is the destination of the data it receives */
            s->dport = t->sport;
            __builtin_memcpy(s->saddr, t->daddr, 16);
            __builtin_memcpy(s->daddr, t->saddr, 16);
            s->protocol = proto;
            s->cgroup = sock_cgroup_id(sk); /* its container where no process is found holding it */
        }
    }
    __sync_lock_test_and_set(&s->sk, (u64)sk); /* published: the writes above are seen first */
    return s;
}

/* The slot following `sk`, found or given to it: its own, a free way of its set, else the way
 * given out longest ago by generation. A slot at the socket's address that followed an earlier
 * socket there (another inode) is given to it afresh. Its index in *index; 0 when there is none. */
static __always_inline struct lat_slot *lat_slot_of(const void *sk, u32 *index)
{
    u64 key = (u64)sk;
    u32 i = lat_set(key), j = i + 1;
    struct lat_slot *a = lat_slots.lookup(&i);
    if (!a)
        return 0;
    struct lat_slot *s = 0, *b = 0;
    if (a->sk == key) {
        s = a;
        *index = i;
    } else {
        b = lat_slots.lookup(&j);
        if (!b)
            return 0;
        if (b->sk == key) {
            s = b;
            *index = j;
        }
    }
    u64 ino = sock_ino(sk);
    if (s) {
        if (s->ino == ino)
            return s;
        if (!s->ino) {
            s->ino = ino; /* a TCP child met before accept(), accepted since: the same socket */
            return s;
        }
        return lat_claim(s, *index, sk, ino);
    }
    if (!b)
        return 0;
    s = a;
    *index = i;
    if (a->sk && (!b->sk || b->gen < a->gen)) {
        s = b;
        *index = j;
    }
    return lat_claim(s, *index, sk, ino);
}

/* The slot's ring of sampled arrivals, taken for this hook (see struct lat_arrivals), emptied if it
 * held another socket's or an earlier watch's; 0 when another CPU has it. Given back with
 * ring_give. */
static __always_inline struct lat_arrivals *ring_take(u32 index, u32 gen, u32 epoch)
{
    struct lat_arrivals *r = lat_rings.lookup(&index);
    if (!r)
        return 0;
    if (__sync_val_compare_and_swap(&r->busy, 0, 1) != 0)
        return 0;
    if (r->gen != gen || r->epoch != epoch) {
        if (r->gen == gen && r->tail != r->head) {
            /* Sampled in an earlier watch whose reads went unwatched: never timed. */
            u32 n = NS_LAT_STAT_UNTIMED;
            u64 *v = lat_stats.lookup(&n);
            if (v)
                *v += r->tail - r->head;
        }
        r->gen = gen;
        r->epoch = epoch;
        r->head = r->tail = r->thin = r->offered = 0;
    }
    return r;
}

/* The watch now (lat_epoch). */
static __always_inline u32 lat_epoch_now(void)
{
    u32 zero = 0;
    u32 *e = lat_epoch.lookup(&zero);
    return e ? *e : 0;
}

static __always_inline void ring_give(struct lat_arrivals *r)
{
    __sync_lock_test_and_set(&r->busy, 0); /* the ring's writes are seen before it is free */
}

/* A sampled arrival onto its socket's ring (held), stamped now. */
static __always_inline void ring_push(struct lat_arrivals *r, u32 target)
{
    if (r->offered++ & ((1U << (r->thin & 31)) - 1))
        return; /* thinned: the ring keeps 1 in 2^thin, evenly over the backlog */
    if (r->tail - r->head >= NS_LAT_RING) {
        /* Full (a slow reader): keep every other arrival, and from now on every other one offered,
         * so what is kept stays spread evenly over the data waiting. A coarser sample, never a
         * wrong time. */
        for (u32 i = 0; i < NS_LAT_RING / 2; i++) {
            u32 from = (r->head + 2 * i) & (NS_LAT_RING - 1);
            u32 to = (r->head + i) & (NS_LAT_RING - 1);
            r->ts[to] = r->ts[from];
            r->target[to] = r->target[from];
        }
        r->tail = r->head + NS_LAT_RING / 2;
        r->thin++;
        lat_bump(NS_LAT_STAT_THINNED);
        if ((r->offered - 1) & ((1U << (r->thin & 31)) - 1))
            return; /* this one falls between the ones kept at the new spacing */
    }
    u32 slot = r->tail & (NS_LAT_RING - 1);
    r->ts[slot] = bpf_ktime_get_ns();
    r->target[slot] = target;
    r->tail++;
}

NS_HOOK(sk_data_ready)
{
    u32 zero = 0;
    u32 weight = ns_sample(latency_sampler.lookup(&zero), latency_rate.lookup(&zero));
    if (!weight)
        return 0;
    const void *sk = (const void *)ctx->args[0];
    u32 index = 0;
    struct lat_slot *s = lat_slot_of(sk, &index);
    if (!s || !s->protocol)
        return 0;
    u32 epoch = lat_epoch_now();
    u32 target;
    if (s->protocol == IPPROTO_UDP_) {
        target = (u32)s->udp_read + udp_queue_len(sk); /* the queue holds this datagram already */
    } else {
        target = read_u32(sk, NS_OFF_TCP_RCV_NXT);
        if (target == s->last_target)
            return 0; /* woken without new data */
        s->last_target = target;
    }
    __sync_fetch_and_add(&s->arrivals, weight);
    struct lat_arrivals *r = ring_take(index, s->gen, epoch);
    if (!r) {
        lat_bump(NS_LAT_STAT_UNTIMED);
        return 0;
    }
    ring_push(r, target);
    ring_give(r);
    return 0;
}

/* A sampled read by the current task: its wait into the process's and the socket's histograms. */
static __always_inline void record(const void *sk, u64 ino, u32 tgid, u64 wait)
{
    u32 zero32 = 0;
    struct lat_proc *p = lat_by_proc.lookup(&tgid);
    if (!p) {
        struct lat_proc *fresh = lat_new_proc.lookup(&zero32);
        if (fresh) {
            bpf_get_current_comm(fresh->comm, sizeof(fresh->comm));
            fresh->cgroup_id = bpf_get_current_cgroup_id(); /* its container, once it is gone */
            lat_by_proc.update(&tgid, fresh);
            p = lat_by_proc.lookup(&tgid);
        }
    }
    if (p) {
        p->count++;
        u32 b = bucket(wait, NS_LAT_PROC_BITS, NS_LAT_PROC_BUCKETS);
        if (b < NS_LAT_PROC_BUCKETS)
            p->buckets[b]++;
    } else {
        lat_bump(NS_LAT_STAT_FULL);
    }
    u64 zero = 0;
    u64 *max = lat_proc_max.lookup_or_try_init(&tgid, &zero);
    if (max && wait > *max)
        *max = wait;
    struct lat_sock_key key = {.sk = (u64)sk, .ino = ino, .tgid = tgid};
    struct lat_sock *s = lat_by_sock.lookup(&key);
    if (!s) {
        struct lat_sock *fresh = lat_new_sock.lookup(&zero32);
        if (fresh) {
            lat_by_sock.update(&key, fresh);
            s = lat_by_sock.lookup(&key);
        }
    }
    if (s) {
        s->count++;
        s->rcvbuf = read_u32(sk, NS_OFF_SOCK_RCVBUF);
        u32 b = bucket(wait, NS_LAT_SOCK_BITS, NS_LAT_SOCK_BUCKETS);
        if (b < NS_LAT_SOCK_BUCKETS)
            s->buckets[b]++;
    } else {
        lat_bump(NS_LAT_STAT_FULL);
    }
    lat_bump(NS_LAT_STAT_SAMPLED);
}

NS_HOOK(sock_recv_length)
{
    const void *sk = (const void *)ctx->args[0];
    int ret = (int)ctx->args[1];
    int flags = (int)ctx->args[2];
    if (!sk || ret <= 0 || (flags & MSG_PEEK_))
        return 0;
    u32 index = 0;
    struct lat_slot *s = lat_slot_of(sk, &index);
    if (!s || !s->protocol)
        return 0;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __sync_fetch_and_add(&s->reads, 1);
    __sync_fetch_and_add(&s->bytes, (u64)ret);
    s->tgid = tgid;
    /* This read copied the data after `first` up to `copied`: UDP one datagram, by read count;
     * TCP bytes, by sequence. */
    u32 epoch = lat_epoch_now();
    u32 copied = 0;
    if (s->protocol == IPPROTO_UDP_)
        copied = (u32)__sync_fetch_and_add(&s->udp_read, 1) + 1;
    struct lat_arrivals *r = lat_rings.lookup(&index);
    if (!r || r->gen != s->gen || r->epoch != epoch || (r->head == r->tail && !r->thin))
        return 0; /* no sampled arrival waiting (a glance; the ring is checked again once held) */
    if (s->protocol == IPPROTO_TCP_)
        copied = read_u32(sk, NS_OFF_TCP_COPIED_SEQ);
    u32 first = s->protocol == IPPROTO_TCP_ ? copied - (u32)ret : copied - 1;
    r = ring_take(index, s->gen, epoch);
    if (!r)
        return 0; /* an arrival holds it: the next read pairs what this one copied */
    /* The sampled arrivals whose data is copied, oldest first. Those copied by earlier reads that
     * missed them (stamped after that read, or it found the ring busy) go untimed; the oldest this
     * read copied times it (its wait is the read's); the rest it copied go with it. */
    u32 start = r->head;
    for (int i = 0; i < NS_LAT_RING; i++) {
        if (r->head == r->tail || (s32)(r->target[r->head & (NS_LAT_RING - 1)] - first) > 0)
            break;
        r->head++;
    }
    u32 untimed = r->head - start;
    u64 arrived = 0;
    if (r->head != r->tail && (s32)(r->target[r->head & (NS_LAT_RING - 1)] - copied) <= 0) {
        arrived = r->ts[r->head & (NS_LAT_RING - 1)];
        r->head++;
        for (int i = 0; i < NS_LAT_RING; i++) {
            if (r->head == r->tail || (s32)(r->target[r->head & (NS_LAT_RING - 1)] - copied) > 0)
                break;
            r->head++;
        }
    }
    /* The reader caught up with the data (the socket's queue is empty, not only the ring): every
     * sampled arrival is kept again. Not sooner: the arrivals while a backlog drains would be kept
     * denser than the backlog's, and their short waits weigh too much. */
    if (r->head == r->tail && r->thin) {
        u32 waiting = s->protocol == IPPROTO_UDP_ ? udp_queue_len(sk)
                                                  : read_u32(sk, NS_OFF_TCP_RCV_NXT) - copied;
        if (!waiting)
            r->thin = r->offered = 0;
    }
    ring_give(r);
    if (untimed) {
        u32 n = NS_LAT_STAT_UNTIMED;
        u64 *v = lat_stats.lookup(&n);
        if (v)
            *v += untimed;
    }
    if (!arrived)
        return 0;
    /* The pairing above moves on for every reader; a wait goes into the histograms only for
     * readers in the user's process scope: the tables hold theirs. */
    u32 zero = 0;
    u32 *scope_on = latency_scope_on.lookup(&zero);
    if (scope_on && *scope_on) {
        u64 me = NS_SCOPE_TGID | tgid, cgroup = bpf_get_current_cgroup_id();
        if (!latency_scope.lookup(&me) && !latency_scope.lookup(&cgroup))
            return 0;
    }
    u64 now = bpf_ktime_get_ns();
    if (arrived <= now)
        record(sk, s->ino, tgid, now - arrived);
    return 0;
}
