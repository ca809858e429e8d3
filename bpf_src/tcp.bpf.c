/* TCP per connection: retransmits, resets sent and received, receive-buffer events, and the state
 * (srtt, cwnd, both windows, the receive buffer) a sample of its received segments saw.
 *
 * Raw tracepoints, each of them but tcp_probe once per event, so every one counts:
 *   tcp:tcp_retransmit_skb(sk, skb[, err])   Linux 4.16: an skb sent again, counted as the segments
 *                                            it holds (tcp_skb_pcount: TCP_SKB_CB's tcp_gso_segs),
 *                                            as Tcp RetransSegs counts them; since Linux 6.12 it
 *                                            fires on failures too (err): those are not counted;
 *   tcp:tcp_send_reset(sk, skb[, reason])    4.16: a RST sent (sk NULL: for no socket, not counted);
 *   tcp:tcp_receive_reset(sk)                4.16: a RST received;
 *   tcp:tcp_rcv_space_adjust(sk)             5.6: receive-buffer autotuning, once per RTT of a reader;
 *   tcp:tcp_rcvbuf_grow(sk, time)            6.17: autotuning grew sk_rcvbuf (optional: older
 *                                            kernels lack it, the rest runs);
 *   sock:sock_exceed_buf_limit(sk, prot, allocated, kind)   4.x: TCP's memory over a limit.
 * Not sock:sock_rcvqueue_full: only __sock_queue_rcv_skb calls it (raw, ICMP, L2TP sockets), never
 * TCP (its advertised window keeps its queue in bounds: a reader too slow shows as a zero window,
 * counted below) nor UDP (whose full buffer is the SOCKET_RCVBUFF drop reason).
 * tcp:tcp_probe(sk, skb) (4.16) runs for every segment an established connection receives
 * (tcp_rcv_established): sampled (sampler.h); a sampled one adds its weight to the segments and,
 * where a window was 0, to those, and keeps the connection's state from the tcp_sock (BTF offsets).
 *
 * The table holds one interval (tables.h, as flows.bpf.c's): a connection without events in an
 * interval takes no entry, and none outlives its interval. Entries are shared by all CPUs (atomic
 * adds); an event of a connection the full table cannot take is counted in tcp_full.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "sampler.h"
#include "tables.h"

#define NS_AF_INET 2
#define NS_AF_INET6 10
#define NS_IPPROTO_TCP 6

BPF_F_TABLE("hash", struct tcp_conn_key, struct tcp_conn_stat, tcp_conns_a, NS_TCP_CONNS, BPF_F_NO_PREALLOC);
BPF_F_TABLE("hash", struct tcp_conn_key, struct tcp_conn_stat, tcp_conns_b, NS_TCP_CONNS, BPF_F_NO_PREALLOC);
BPF_ARRAY_OF_MAPS(tcp_conns, "tcp_conns_a", 1);
/* Events of connections the full table could not take (the probe's not_counted). */
BPF_PERCPU_ARRAY(tcp_full, u64, 1);
BPF_PERCPU_ARRAY(tcp_sampler, struct ns_sampler, 1);
BPF_ARRAY(tcp_rate, struct ns_rate, 1);

/* The interval's entry of the connection `sk` belongs to; NULL when it is not a TCP socket of
 * IPv4 or IPv6, or the table is full (then counted unheld). */
static __always_inline struct tcp_conn_stat *conn_of(const void *sk, int tcp_only)
{
    if (!sk)
        return 0;
    if (tcp_only && read_u16(sk, NS_OFF_SOCK_PROTOCOL) != NS_IPPROTO_TCP)
        return 0;
    struct tcp_conn_key key = {};
    key.family = read_u16(sk, NS_OFF_SOCK_FAMILY);
    if (key.family == NS_AF_INET) {
        bpf_probe_read_kernel(key.laddr, 4, (const char *)sk + NS_OFF_SOCK_RCV_SADDR);
        bpf_probe_read_kernel(key.raddr, 4, (const char *)sk + NS_OFF_SOCK_DADDR);
    } else if (key.family == NS_AF_INET6) {
        bpf_probe_read_kernel(key.laddr, 16, (const char *)sk + NS_OFF_SOCK_V6_RCV_SADDR);
        bpf_probe_read_kernel(key.raddr, 16, (const char *)sk + NS_OFF_SOCK_V6_DADDR);
    } else {
        return 0;
    }
    key.lport = read_u16(sk, NS_OFF_SOCK_NUM);
    if (!key.lport) /* unhashed: a socket closing (a RST on close) put its port back already */
        key.lport = bpf_ntohs(read_u16(sk, NS_OFF_INET_SPORT));
    key.rport = bpf_ntohs(read_u16(sk, NS_OFF_SOCK_DPORT));
    key.netns = netns_of(0, sk);
    u32 zero = 0;
    void *table = tcp_conns.lookup(&zero);
    struct tcp_conn_stat fresh = {};
    struct tcp_conn_stat *s = table ? table_entry(table, &key, &fresh) : 0;
    if (!s) {
        u64 *full = tcp_full.lookup(&zero);
        if (full)
            *full += 1;
    }
    return s;
}

NS_HOOK(tcp_retransmit_skb)
{
#ifdef NS_TCP_RETRANSMIT_ERR
    if ((int)ctx->args[2]) /* not sent again: not in RetransSegs either */
        return 0;
#endif
    const void *skb = (const void *)ctx->args[1];
    u16 segs = read_u16(skb, NS_OFF_SKB_CB + NS_OFF_TCP_SKB_CB_GSO_SEGS);
    struct tcp_conn_stat *s = conn_of((const void *)ctx->args[0], 0);
    if (s)
        __sync_fetch_and_add(&s->retransmits, segs ? segs : 1);
    return 0;
}

/* A hook that counts an event of the connection of the socket in its first argument in `field`
 * (`tcp_only`: the socket may be of another protocol). */
#define NS_COUNTING_HOOK(tp, field, tcp_only)                                   \
    NS_HOOK(tp)                                                                 \
    {                                                                           \
        struct tcp_conn_stat *s = conn_of((const void *)ctx->args[0], tcp_only); \
        if (s)                                                                  \
            __sync_fetch_and_add(&s->field, 1);                                 \
        return 0;                                                               \
    }

NS_COUNTING_HOOK(tcp_send_reset, resets_sent, 0)
NS_COUNTING_HOOK(tcp_receive_reset, resets_received, 0)
NS_COUNTING_HOOK(tcp_rcv_space_adjust, rcv_space_adjust, 0)
NS_COUNTING_HOOK(sock_exceed_buf_limit, exceed_buf, 1)

NS_HOOK(tcp_rcvbuf_grow)
{
    const void *sk = (const void *)ctx->args[0];
    struct tcp_conn_stat *s = conn_of(sk, 0);
    if (s) {
        __sync_fetch_and_add(&s->rcvbuf_grow, 1);
        s->rcvbuf = read_u32(sk, NS_OFF_SOCK_RCVBUF);
    }
    return 0;
}

NS_HOOK(tcp_probe)
{
    u32 zero = 0;
    u32 weight = ns_sample(tcp_sampler.lookup(&zero), tcp_rate.lookup(&zero));
    if (!weight)
        return 0;
    const void *sk = (const void *)ctx->args[0];
    struct tcp_conn_stat *s = conn_of(sk, 0);
    if (!s)
        return 0;
    u32 rcv_wnd = read_u32(sk, NS_OFF_TCP_RCV_WND), snd_wnd = read_u32(sk, NS_OFF_TCP_SND_WND);
    __sync_fetch_and_add(&s->probes, weight);
    if (!rcv_wnd)
        __sync_fetch_and_add(&s->zero_rcv_wnd, weight);
    if (!snd_wnd)
        __sync_fetch_and_add(&s->zero_snd_wnd, weight);
    s->srtt_us = read_u32(sk, NS_OFF_TCP_SRTT_US) >> 3;
    s->snd_cwnd = read_u32(sk, NS_OFF_TCP_SND_CWND);
    s->snd_ssthresh = read_u32(sk, NS_OFF_TCP_SND_SSTHRESH);
    s->rcv_wnd = rcv_wnd;
    s->snd_wnd = snd_wnd;
    s->rcvbuf = read_u32(sk, NS_OFF_SOCK_RCVBUF);
    s->window_clamp = read_u32(sk, NS_OFF_TCP_WINDOW_CLAMP);
    s->last_ns = bpf_ktime_get_ns();
    return 0;
}
