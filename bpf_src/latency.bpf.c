/* Copy latency: how long received data waited on its socket before the reader copied it out.
 *
 * Raw tracepoints sock:sk_data_ready(const struct sock *sk), since Linux 6.10: fired when data is
 * queued on a socket (once per UDP datagram); sock:sock_recv_length(struct sock *sk, int ret,
 * int flags), since 6.2: once per recvmsg with the bytes read (MSG_PEEK reads are ignored).
 * Arrivals and reads are matched in order per socket by sequence: for TCP tcp_sock rcv_nxt at
 * arrival and copied_seq after the read, for UDP counts of datagrams queued and read (one per read).
 * The oldest byte read arrived with the first arrival that ends after it.
 *
 * Stack time, device to socket: net:netif_receive_skb(struct sk_buff *skb) stamps each skb entering
 * the stack; at sk_data_ready the skb just queued is the tail of sk_receive_queue, whose stamp gives
 * the time it spent in the stack (for TCP, data coalesced into an earlier skb reads that skb's). A read whose arrival is unknown is counted as
 * unmatched and reports no latency. skb->tstamp is not used: only set while RX timestamping is on.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "flow_parse.h"

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define MSG_PEEK_ 2

BPF_TABLE("lru_hash", u64, struct lat_ring, lat_rings, NS_LAT_SOCKETS);
BPF_TABLE("lru_percpu_hash", u32, struct lat_proc, lat_by_proc, 4096);
BPF_PERCPU_HASH(lat_proc_max, u32, u64, 4096);
BPF_TABLE("lru_percpu_hash", struct lat_sock_key, struct lat_sock, lat_by_sock, NS_LAT_SOCKETS);
BPF_PERCPU_ARRAY(lat_stats, u64, NS_LAT_STATS);
BPF_ARRAY(lat_stamps, struct lat_stamp, NS_LAT_STAMPS);
/* Set by user space when the hooks resume after a pause: stamps older than this are stale. */
BPF_ARRAY(lat_since, u64, 1);
/* Device-to-socket time of every arrival, all sockets together. */
BPF_PERCPU_ARRAY(lat_stack, struct lat_hist, 1);
/* Zeroed templates for new entries: the structs are far larger than the 512-byte BPF stack. Only
 * their identity fields are ever written, so their counters stay zero. */
BPF_PERCPU_ARRAY(lat_new_ring, struct lat_ring, 1);
BPF_PERCPU_ARRAY(lat_new_proc, struct lat_proc, 1);
BPF_PERCPU_ARRAY(lat_new_sock, struct lat_sock, 1);

static __always_inline void lat_bump(u32 index)
{
    u64 *v = lat_stats.lookup(&index);
    if (v)
        (*v)++;
}

static __always_inline u32 msb64(u64 v)
{
    u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8) { v >>= 8; r += 8; }
    if (v >> 4) { v >>= 4; r += 4; }
    if (v >> 2) { v >>= 2; r += 2; }
    if (v >> 1) { r += 1; }
    return r;
}

static __always_inline u32 bucket(u64 v, u32 bits, u32 buckets)
{
    if (v < (1ULL << bits))
        return (u32)v;
    u32 m = msb64(v);
    u32 idx = ((m - bits + 1) << bits) + (u32)((v >> (m - bits)) & ((1U << bits) - 1));
    return idx < buckets ? idx : buckets - 1;
}

static __always_inline u16 protocol_of(const void *sk)
{
    return read_u16(sk, NS_OFF_SOCK_PROTOCOL);
}

/* TCP or UDP, and matching the user's filter (as data flowing from the peer to this socket). */
static __always_inline int watched(const void *sk, u16 proto)
{
    if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
        return 0;
#ifdef NS_FILTER
    struct flow_tuple ft = {};
    struct flow_tuple *t = &ft;
    sock_tuple(sk, (u8)proto, t);
    return NS_FILTER(t);
#else
    return 1;
#endif
}

static __always_inline u32 udp_queue_len(const void *sk)
{
    return read_u32(sk, NS_OFF_SOCK_RCVQ_LEN) + read_u32(sk, NS_OFF_UDP_READERQ_LEN);
}

static __always_inline u32 stamp_slot(u64 skb)
{
    return (u32)((skb >> 8) ^ (skb >> 22)) & (NS_LAT_STAMPS - 1);
}

NS_HOOK(netif_receive_skb)
{
    u64 skb = ctx->args[0];
    u32 slot = stamp_slot(skb);
    struct lat_stamp *st = lat_stamps.lookup(&slot);
    if (st) {
        st->skb = skb;
        st->ts = bpf_ktime_get_ns();
    }
    return 0;
}

static __always_inline void stack_time(const void *sk, u64 now)
{
    u64 skb = read_u64(sk, NS_OFF_SOCK_RCVQ_TAIL);
    u32 slot = stamp_slot(skb);
    struct lat_stamp *st = lat_stamps.lookup(&slot);
    u32 zero = 0;
    u64 *since = lat_since.lookup(&zero);
    if (!skb || !st || !since || st->skb != skb || st->ts > now || st->ts < *since) {
        lat_bump(NS_LAT_STAT_STACK_UNKNOWN);
        return;
    }
    struct lat_hist *h = lat_stack.lookup(&zero);
    u32 b = bucket(now - st->ts, NS_LAT_PROC_BITS, NS_LAT_PROC_BUCKETS);
    if (h && b < NS_LAT_PROC_BUCKETS)
        h->buckets[b]++;
}

NS_HOOK(sk_data_ready)
{
    const void *sk = (const void *)ctx->args[0];
    u16 proto = protocol_of(sk);
    if (!watched(sk, proto))
        return 0;
    u64 key = (u64)sk;
    u64 now = bpf_ktime_get_ns();
    stack_time(sk, now);
    struct lat_ring *r = lat_rings.lookup(&key);
    if (!r) {
        u32 zero = 0;
        struct lat_ring *fresh = lat_new_ring.lookup(&zero);
        if (!fresh)
            return 0;
        if (proto == IPPROTO_TCP_) {
            /* Where this arrival began is unknown: everything up to here reads as unmatched. */
            fresh->start = read_u32(sk, NS_OFF_TCP_RCV_NXT);
            fresh->udp_queued = 0;
        } else {
            /* The datagrams already queued (this one included) arrived unseen, but this one. */
            fresh->udp_queued = udp_queue_len(sk);
            fresh->start = fresh->udp_queued ? fresh->udp_queued - 1 : 0;
        }
        fresh->udp_read = 0;
        fresh->head = fresh->tail = 0;
        lat_rings.update(&key, fresh);
        if (proto == IPPROTO_TCP_)
            return 0;
        r = lat_rings.lookup(&key);
        if (!r)
            return 0;
    } else if (proto == IPPROTO_UDP_) {
        r->udp_queued++;
    }
    u32 seq = proto == IPPROTO_TCP_ ? read_u32(sk, NS_OFF_TCP_RCV_NXT) : r->udp_queued;
    if (r->tail != r->head && r->seq[(r->tail - 1) & (NS_LAT_RING - 1)] == seq)
        return 0; /* woken without new data */
    if (r->tail - r->head >= NS_LAT_RING) {
        /* Full: merge neighbours pairwise; a merged arrival keeps the later end and the mean time. */
        for (u32 i = 0; i < NS_LAT_RING / 2; i++) {
            u32 a = (r->head + 2 * i) & (NS_LAT_RING - 1);
            u32 b = (r->head + 2 * i + 1) & (NS_LAT_RING - 1);
            u32 to = (r->head + i) & (NS_LAT_RING - 1);
            u64 ts = r->ts[a] / 2 + r->ts[b] / 2;
            r->seq[to] = r->seq[b];
            r->ts[to] = ts;
        }
        r->tail = r->head + NS_LAT_RING / 2;
        lat_bump(NS_LAT_STAT_COARSENED);
    }
    u32 slot = r->tail & (NS_LAT_RING - 1);
    r->ts[slot] = now;
    r->seq[slot] = seq;
    r->tail++;
    return 0;
}

/* A read of `bytes` by the current task; `matched` says whether `wait` is known. */
static __always_inline void record(const void *sk, u64 wait, int matched, u32 bytes, u16 proto)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    u32 zero32 = 0;
    struct lat_proc *p = lat_by_proc.lookup(&tgid);
    if (!p) {
        struct lat_proc *fresh = lat_new_proc.lookup(&zero32);
        if (fresh) {
            bpf_get_current_comm(fresh->comm, sizeof(fresh->comm));
            lat_by_proc.update(&tgid, fresh);
            p = lat_by_proc.lookup(&tgid);
        }
    }
    if (p) {
        p->reads++;
        p->bytes += bytes;
        if (matched) {
            p->count++;
            u32 b = bucket(wait, NS_LAT_PROC_BITS, NS_LAT_PROC_BUCKETS);
            if (b < NS_LAT_PROC_BUCKETS)
                p->buckets[b]++;
        }
    }
    if (matched) {
        u64 zero = 0;
        u64 *max = lat_proc_max.lookup_or_try_init(&tgid, &zero);
        if (max && wait > *max)
            *max = wait;
    }

    struct lat_sock_key key = {.sk = (u64)sk, .tgid = tgid};
    struct lat_sock *s = lat_by_sock.lookup(&key);
    if (!s) {
        struct lat_sock *fresh = lat_new_sock.lookup(&zero32);
        if (fresh) {
            fresh->family = read_u16(sk, NS_OFF_SOCK_FAMILY);
            fresh->protocol = proto;
            fresh->sport = read_u16(sk, NS_OFF_SOCK_NUM);
            fresh->dport = bpf_ntohs(read_u16(sk, NS_OFF_SOCK_DPORT));
            if (fresh->family == 10) {
                bpf_probe_read_kernel(fresh->saddr, 16, (const char *)sk + NS_OFF_SOCK_V6_RCV_SADDR);
                bpf_probe_read_kernel(fresh->daddr, 16, (const char *)sk + NS_OFF_SOCK_V6_DADDR);
            } else {
                bpf_probe_read_kernel(fresh->saddr, 4, (const char *)sk + NS_OFF_SOCK_RCV_SADDR);
                bpf_probe_read_kernel(fresh->daddr, 4, (const char *)sk + NS_OFF_SOCK_DADDR);
                __builtin_memset(fresh->saddr + 4, 0, 12);
                __builtin_memset(fresh->daddr + 4, 0, 12);
            }
            lat_by_sock.update(&key, fresh);
            s = lat_by_sock.lookup(&key);
        }
    }
    if (s) {
        s->reads++;
        s->bytes += bytes;
        s->rcvbuf = read_u32(sk, NS_OFF_SOCK_RCVBUF);
        if (matched) {
            s->count++;
            u32 b = bucket(wait, NS_LAT_SOCK_BITS, NS_LAT_SOCK_BUCKETS);
            if (b < NS_LAT_SOCK_BUCKETS)
                s->buckets[b]++;
        }
    }
    lat_bump(matched ? NS_LAT_STAT_MATCHED : NS_LAT_STAT_UNMATCHED);
}

NS_HOOK(sock_recv_length)
{
    const void *sk = (const void *)ctx->args[0];
    int ret = (int)ctx->args[1];
    int flags = (int)ctx->args[2];
    if (!sk || ret <= 0 || (flags & MSG_PEEK_))
        return 0;
    u16 proto = protocol_of(sk);
    if (!watched(sk, proto))
        return 0;
    u64 key = (u64)sk;
    struct lat_ring *r = lat_rings.lookup(&key);
    if (!r) {
        record(sk, 0, 0, (u32)ret, proto); /* queued before netscope watched, or ring evicted */
        return 0;
    }
    u64 now = bpf_ktime_get_ns();
    u64 arrived = 0;
    u32 copied, first;
    if (proto == IPPROTO_UDP_) {
        copied = ++r->udp_read; /* one datagram per read */
        first = copied - 1;
    } else {
        copied = read_u32(sk, NS_OFF_TCP_COPIED_SEQ);
        first = copied - (u32)ret;
    }
    /* Drop arrivals wholly before the data read; the next one brought its oldest byte. */
    for (int i = 0; i < NS_LAT_RING; i++) {
        if (r->head == r->tail || (s32)(r->seq[r->head & (NS_LAT_RING - 1)] - first) > 0)
            break;
        r->head++;
    }
    if (r->head != r->tail && (s32)(first - r->start) >= 0)
        arrived = r->ts[r->head & (NS_LAT_RING - 1)];
    /* Forget arrivals the read consumed entirely. */
    for (int i = 0; i < NS_LAT_RING; i++) {
        if (r->head == r->tail || (s32)(r->seq[r->head & (NS_LAT_RING - 1)] - copied) > 0)
            break;
        r->head++;
    }
    int matched = arrived && arrived <= now;
    record(sk, matched ? now - arrived : 0, matched, (u32)ret, proto);
    return 0;
}
