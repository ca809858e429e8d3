/* Log-linear histogram buckets, the layout netscope/model/latency.py mirrors. C side only.
 * Bucket of a value v (ns): v itself below 2^B; else octave m = floor(log2 v) and the top B bits
 * after the leading one, index (m - B + 1) * 2^B + sub. */
#ifndef NETSCOPE_HIST_H
#define NETSCOPE_HIST_H

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

#endif /* NETSCOPE_HIST_H */
