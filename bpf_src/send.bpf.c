/* What each process sends through its sockets: sends and bytes per process (tgid), and the cgroup
 * it sends from, for the Processes pane's TX.
 *
 * Raw tracepoint sock:sock_send_length(struct sock *sk, int ret, int flags), since Linux 6.2:
 * once per sendmsg in sock_sendmsg_nosec, in the sender's process context, with the bytes sent
 * (ret > 0) or the error. Per packet for datagrams (sendmmsg sends each one), so it is sampled
 * (sampler.h): a sampled send adds its weight to the sends and weight * ret to the bytes. The
 * current task is the sender here, so bpf_get_current_cgroup_id() (Linux 4.18) is its cgroup v2
 * directory's inode, which user space maps to a path and a container. A sampled send of a process
 * out of the user's scope (netscope.h NS_SCOPE_MAX) is left out.
 */
#include "netscope.h"
#include "sampler.h"

BPF_PERCPU_HASH(send_by_proc, u32, struct send_proc, NS_SEND_PROCS);
/* Sends the full process table could not count (user space prunes processes gone). */
BPF_PERCPU_ARRAY(send_full, u64, 1);
BPF_PERCPU_ARRAY(send_sampler, struct ns_sampler, 1);
BPF_ARRAY(send_rate, struct ns_rate, 1);
BPF_ARRAY(send_scope_on, u32, 1); /* the user's process scope (netscope.h NS_SCOPE_MAX) */
BPF_HASH(send_scope, u64, u8, NS_SCOPE_MAX);

NS_HOOK(sock_send_length)
{
    int ret = (int)ctx->args[1];
    if (ret <= 0)
        return 0;
    u32 zero = 0;
    u32 weight = ns_sample(send_sampler.lookup(&zero), send_rate.lookup(&zero));
    if (!weight)
        return 0;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    u32 *scope_on = send_scope_on.lookup(&zero);
    if (scope_on && *scope_on) {
        u64 me = NS_SCOPE_TGID | tgid, cgroup = bpf_get_current_cgroup_id();
        if (!send_scope.lookup(&me) && !send_scope.lookup(&cgroup))
            return 0; /* a process out of the user's scope */
    }
    struct send_proc *p = send_by_proc.lookup(&tgid);
    if (!p) {
        struct send_proc init = {};
        bpf_get_current_comm(init.comm, sizeof(init.comm));
        p = send_by_proc.lookup_or_try_init(&tgid, &init);
        if (!p) {
            u64 *full = send_full.lookup(&zero);
            if (full)
                *full += weight;
            return 0;
        }
    }
    p->sends += weight;
    p->bytes += (u64)ret * weight;
    p->cgroup_id = bpf_get_current_cgroup_id();
    return 0;
}
