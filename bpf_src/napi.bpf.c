/* NAPI polls per CPU: how many, packets drained, and how often a poll used its whole budget.
 *
 * Raw tracepoint napi:napi_poll(struct napi_struct *napi, int work, int budget); the `budget`
 * argument exists since Linux 4.9. The per-CPU backlog (veth, loopback) polls through it too.
 */
#include "netscope.h"

BPF_PERCPU_ARRAY(napi_stats, struct napi_stat, 1);

RAW_TRACEPOINT_PROBE(napi_poll)
{
    u32 zero = 0;
    int work = (int)ctx->args[1];
    int budget = (int)ctx->args[2];
    struct napi_stat *s = napi_stats.lookup(&zero);
    if (!s)
        return 0;
    s->polls++;
    s->packets += work;
    if (work >= budget)
        s->budget_exhausted++;
    return 0;
}
