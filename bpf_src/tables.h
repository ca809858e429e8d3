/* Tables that hold one interval (netscope/probes/base.py IntervalTables): two of each kind behind a
 * one-slot array of maps, which user space points at the spare one every interval before reading
 * and emptying the other, so nothing counted between its read and its emptying is lost. A program
 * looks the current table up once per run. C side only. */
#ifndef NETSCOPE_TABLES_H
#define NETSCOPE_TABLES_H

/* The entry of `key` in the interval's table `map`, inserted as `fresh` when new; NULL when the
 * table is full. The insert fails when another CPU inserted the key first (its entry is found
 * then) or when the table is full (none is). */
static __always_inline void *table_entry(void *map, void *key, void *fresh)
{
    void *v = bpf_map_lookup_elem(map, key);
    if (v)
        return v;
    bpf_map_update_elem(map, key, fresh, BPF_NOEXIST);
    return bpf_map_lookup_elem(map, key);
}

#endif /* NETSCOPE_TABLES_H */
