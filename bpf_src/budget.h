/* A budget of events per window of time, shared by every CPU (struct event_window, netscope.h):
 * the window's count resets when the window changes (racy between CPUs: at worst a few extra
 * events per window), then each event takes one. */
#ifndef NS_BUDGET_H
#define NS_BUDGET_H

#include "netscope.h"

static __always_inline int budget_take(struct event_window *w, u64 id, u64 limit)
{
    if (w->window != id) {
        w->window = id;
        w->used = 0;
    }
    /* A plain read first: once the window is spent, a storm costs no atomic (and no cache line
     * bouncing between CPUs) per event. */
    if (w->used >= limit)
        return 0;
    return __sync_fetch_and_add(&w->used, 1) < limit;
}

#endif
