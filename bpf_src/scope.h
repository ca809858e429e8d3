/* The user's process scope (--pid, --container; `pid N` and `container ID` in a filter), pushed
 * into the hooks that run in a process's own context (the sender's sendmsg, the reader's recvmsg),
 * which skip what processes out of it do. It lives in maps user space writes, so a change of scope
 * recompiles nothing: the processes by tgid, and the containers by the cgroup v2 ids of their
 * directories (bpf_get_current_cgroup_id, Linux 4.18). Off (scope_on 0): every process. Shared by
 * the probes compiled together (one set of maps per BPF object). */
#ifndef NS_SCOPE_H
#define NS_SCOPE_H

#include "netscope.h"

BPF_ARRAY(scope_on, u32, 1);
BPF_HASH(scope_tgids, u32, u8, NS_SCOPE_MAX);
BPF_HASH(scope_cgroups, u64, u8, NS_SCOPE_MAX);

/* Whether the current task (of process `tgid`) is in the scope. */
static __always_inline int in_scope(u32 tgid)
{
    u32 zero = 0;
    u32 *on = scope_on.lookup(&zero);
    if (!on || !*on)
        return 1;
    if (scope_tgids.lookup(&tgid))
        return 1;
    u64 cgroup = bpf_get_current_cgroup_id();
    return scope_cgroups.lookup(&cgroup) != 0;
}

#endif /* NS_SCOPE_H */
