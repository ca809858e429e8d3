/* The namespace of the device a packet is on, cached per CPU. C side only; one per probe. */
#ifndef NETSCOPE_DEV_CACHE_H
#define NETSCOPE_DEV_CACHE_H

#include "kernel_read.h"

/* The last device seen on this CPU and its namespace: a flood keeps hitting the same device, and
 * its namespace's inode is a second dependent read. Keyed by the device's pointer, its ifindex
 * and its namespace's pointer: ifindexes are numbered per namespace, so a device freed and another
 * allocated at the same address in a new namespace often has the same ifindex (a veth's is 2),
 * and was taken for the old one, its packets counted in a namespace gone. Each probe declares
 * its per-CPU slot itself (BCC rewrites map calls in the main file only), under its own name:
 *     BPF_PERCPU_ARRAY(rings_last_dev, struct dev_seen, 1);
 * and passes rings_last_dev.lookup(&zero) in. */
struct dev_seen {
    u64 dev;
    u64 net;
    u32 ifindex;
    u32 netns;
};

static __always_inline u32 dev_netns(struct dev_seen *seen, const void *dev, u32 ifindex)
{
    u64 net = read_u64(dev, NS_OFF_DEV_ND_NET);
    if (seen && seen->dev == (u64)dev && seen->ifindex == ifindex && seen->net == net)
        return seen->netns;
    u32 netns = net ? read_u32((const void *)net, NS_OFF_NET_NS_INUM) : 0;
    if (seen) {
        seen->dev = (u64)dev;
        seen->net = net;
        seen->ifindex = ifindex;
        seen->netns = netns;
    }
    return netns;
}

#endif /* NETSCOPE_DEV_CACHE_H */
