/* 1-in-N sampling of a per-packet hook, decided in the kernel. C side only; needs netscope.h.
 *
 * Each CPU counts down a gap drawn at random between 1 and 2N-1 runs (N on average); the run that
 * ends a gap is sampled and stands for the whole gap: its weight. The weights of all samples add up
 * to the runs counted, and a flow's (or a queue's) weighted count is unbiased whatever order the
 * flows arrive in, which a fixed 1-in-N would not be (traffic that cycles through N ports would put
 * every sample on one). Only a sampled run pays for more than a per-CPU decrement: the clock read,
 * the header parse, the hash update. N = 1 samples every run with weight 1: exact counts.
 *
 * When even the hooks' runs cost too much (a veth flood runs each of them for every packet), user
 * space attaches them for only 1/scale of each interval; every weight then counts `scale` times, so
 * the figures stay estimates of the whole interval. The weights are summed (`weights`): where the
 * kernel counts the hook's runs itself (softnet's processed, for net:netif_receive_skb), user space
 * calibrates the window's estimates to that count.
 *
 * A probe declares its slots and its rate (set by user space, netscope/probes/base.py) itself,
 * under its own names, since BCC rewrites map calls in the main file only:
 *     BPF_PERCPU_ARRAY(napi_sampler, struct ns_sampler, 1);
 *     BPF_ARRAY(napi_rate, struct ns_rate, 1);
 * and a hook asks:
 *     u32 weight = ns_sample(napi_sampler.lookup(&zero), napi_rate.lookup(&zero));
 *     if (!weight) return 0;
 */
#ifndef NETSCOPE_SAMPLER_H
#define NETSCOPE_SAMPLER_H

/* This run's weight when it is sampled, 0 when it is not. */
static __always_inline u32 ns_scale(const struct ns_rate *rate)
{
    return rate && rate->scale ? rate->scale : 1;
}

static __always_inline u32 ns_sample(struct ns_sampler *s, const struct ns_rate *rate)
{
    if (!s)
        return 0;
    s->fires++;
    if (s->left > 1) {
        s->left--;
        return 0;
    }
    u32 weight = (s->gap ? s->gap : 1) * ns_scale(rate);
    u32 n = rate && rate->n ? rate->n : 1;
    u32 gap = n > 1 ? 1 + bpf_get_prandom_u32() % (2 * n - 1) : 1;
    s->left = gap;
    s->gap = gap;
    s->sampled++;
    s->weights += weight;
    return weight;
}

#endif /* NETSCOPE_SAMPLER_H */
