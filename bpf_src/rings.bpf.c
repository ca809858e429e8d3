/* Packets and bytes per device queue, received and sent, in every network namespace.
 *
 * Raw tracepoints net:netif_receive_skb(struct sk_buff *skb), which fires once per skb entering
 * the stack whatever path it took (NAPI+GRO, the netif_rx backlog), and
 * net:net_dev_start_xmit(struct sk_buff *skb, struct net_device *dev), once per skb handed to a
 * driver; both since Linux 3.x. A GRO- or GSO-built skb counts as its gso_segs packets.
 *
 * The devices count their own packets (stats64, and per queue the netdev family's qstats where the
 * driver keeps them): these hooks only split a device's traffic by queue where nothing else does,
 * so they are sampled (sampler.h): a sampled skb adds its packets and bytes times its weight.
 */
#include "netscope.h"
#include "kernel_read.h"
#include "flow_parse.h"
#include "dev_cache.h"
#include "sampler.h"

#define NS_RINGS_SAMPLER_RX 0
#define NS_RINGS_SAMPLER_TX 1

BPF_PERCPU_HASH(queue_stats, struct queue_key, struct queue_stat, NS_QUEUES_MAX);
/* Packets the full queue table could not count (user space prunes the keys of devices gone). */
BPF_PERCPU_ARRAY(rings_full, u64, 1);
BPF_PERCPU_ARRAY(rings_last_dev, struct dev_seen, 1); /* dev_cache.h */
BPF_PERCPU_ARRAY(rings_sampler, struct ns_sampler, 2);
BPF_ARRAY(rings_rate, struct ns_rate, 1);

/* One skb through a queue of `dev` (on receive: 0, read from the skb once it is sampled). */
static __always_inline void count(const void *skb, const void *dev, u8 tx)
{
    u32 zero = 0, which = tx ? NS_RINGS_SAMPLER_TX : NS_RINGS_SAMPLER_RX;
    u32 weight = ns_sample(rings_sampler.lookup(&which), rings_rate.lookup(&zero));
    if (!weight)
        return;
    if (!tx)
        dev = (const void *)read_u64(skb, NS_OFF_SKB_DEV);
    if (!dev)
        return;
    struct skb_win w;
    skb_win_read(&w, skb);
    const u8 *head = (const u8 *)SKB_WIN(&w, u64, NS_OFF_SKB_HEAD);
    const u8 *data = (const u8 *)SKB_WIN(&w, u64, NS_OFF_SKB_DATA);
#ifdef NS_FILTER
    {
        /* The user's filter: only matching packets count. On receive skb->data is at the network
         * header; on transmit the network header is at head + network_header. */
        struct flow_tuple ft = {};
        struct flow_tuple *t = &ft;
        u16 proto = bpf_ntohs(SKB_WIN(&w, u16, NS_OFF_SKB_PROTOCOL));
        const u8 *ip = tx ? head + SKB_WIN(&w, u16, NS_OFF_SKB_NETWORK_HEADER) : data;
        if (!parse_ip(ip, proto, t) || !(NS_FILTER(t)))
            return;
    }
#endif
    struct queue_key key = {};
    u32 last_dev_slot = 0;
    key.ifindex = read_u32(dev, NS_OFF_DEV_IFINDEX);
    key.netns = dev_netns(rings_last_dev.lookup(&last_dev_slot), dev, key.ifindex);
    key.tx = tx;
    u16 mapping = SKB_WIN(&w, u16, NS_OFF_SKB_QUEUE_MAPPING);
    /* On receive, drivers record queue + 1 (skb_record_rx_queue); 0 means none was recorded. */
    key.queue = tx ? mapping : (mapping ? mapping - 1 : NS_QUEUE_UNKNOWN);

    u64 bytes = SKB_WIN(&w, u32, NS_OFF_SKB_LEN);
    if (!tx) {
        /* The link-layer header was pulled before the stack saw the skb: count it back. */
        u16 mac = SKB_WIN(&w, u16, NS_OFF_SKB_MAC_HEADER);
        if (mac != 0xffff && data >= head + mac)
            bytes += data - (head + mac);
    }
    struct queue_stat *s = queue_stats.lookup(&key);
    if (!s) {
        struct queue_stat init = {};
        bpf_probe_read_kernel_str(init.ifname, sizeof(init.ifname), (const char *)dev + NS_OFF_DEV_NAME);
        queue_stats.update(&key, &init);
        s = queue_stats.lookup(&key);
        if (!s) {
            u32 zero = 0;
            u64 *full = rings_full.lookup(&zero);
            if (full)
                *full += (u64)segments(&w) * weight;
            return;
        }
    }
    s->packets += (u64)segments(&w) * weight;
    s->bytes += bytes * weight;
}

NS_HOOK(netif_receive_skb)
{
    count((const void *)ctx->args[0], 0, 0);
    return 0;
}

NS_HOOK(net_dev_start_xmit)
{
    count((const void *)ctx->args[0], (const void *)ctx->args[1], 1);
    return 0;
}
