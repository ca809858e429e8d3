/* The namespace of the device a packet is on, cached per CPU. C side only; one per probe. */
#ifndef NETSCOPE_DEV_CACHE_H
#define NETSCOPE_DEV_CACHE_H

#include "kernel_read.h"

/* The last device seen on this CPU and its namespace: a flood keeps hitting the same device, and
 * its namespace takes two dependent reads. Keyed by pointer and ifindex, so a device freed and
 * another allocated at the same address is not taken for it. Each probe declares its per-CPU
 * slot itself (BCC rewrites map calls in the main file only), under its own name:
 *     BPF_PERCPU_ARRAY(rings_last_dev, struct dev_seen, 1);
 * and passes rings_last_dev.lookup(&zero) in. */
struct dev_seen {
    u64 dev;
    u32 ifindex;
    u32 netns;
};

static __always_inline u32 dev_netns(struct dev_seen *seen, const void *dev, u32 ifindex)
{
    if (seen && seen->dev == (u64)dev && seen->ifindex == ifindex)
        return seen->netns;
    u32 netns = netns_of(dev, 0);
    if (seen) {
        seen->dev = (u64)dev;
        seen->ifindex = ifindex;
        seen->netns = netns;
    }
    return netns;
}

#endif /* NETSCOPE_DEV_CACHE_H */
