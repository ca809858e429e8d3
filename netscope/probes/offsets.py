"""Struct member offsets the BPF programs read at, from the running kernel's BTF, as -D defines.

One table shared by every probe that reads kernel structs (bpf_src/kernel_read.h names them)."""

from __future__ import annotations

from functools import cache

from netscope.probes.btf import BTF, BTFError

# define -> (struct, member)
FIELDS: dict[str, tuple[str, str]] = {
    "NS_OFF_SKB_DEV": ("sk_buff", "dev"),
    "NS_OFF_SKB_SK": ("sk_buff", "sk"),
    "NS_OFF_SKB_LEN": ("sk_buff", "len"),
    "NS_OFF_SKB_QUEUE_MAPPING": ("sk_buff", "queue_mapping"),
    "NS_OFF_SKB_PROTOCOL": ("sk_buff", "protocol"),
    "NS_OFF_SKB_HEAD": ("sk_buff", "head"),
    "NS_OFF_SKB_DATA": ("sk_buff", "data"),
    "NS_OFF_SKB_END": ("sk_buff", "end"),
    "NS_OFF_SKB_MAC_HEADER": ("sk_buff", "mac_header"),
    "NS_OFF_SKB_NETWORK_HEADER": ("sk_buff", "network_header"),
    "NS_OFF_SKB_TRANSPORT_HEADER": ("sk_buff", "transport_header"),
    "NS_OFF_SHINFO_GSO_SEGS": ("skb_shared_info", "gso_segs"),
    "NS_OFF_DEV_IFINDEX": ("net_device", "ifindex"),
    "NS_OFF_DEV_NAME": ("net_device", "name"),
    "NS_OFF_DEV_ND_NET": ("net_device", "nd_net"),
    "NS_OFF_SOCK_NET": ("sock", "__sk_common.skc_net"),
    "NS_OFF_NET_NS_INUM": ("net", "ns.inum"),
    "NS_OFF_SOCK_PROTOCOL": ("sock", "sk_protocol"),
    "NS_OFF_SOCK_FAMILY": ("sock", "__sk_common.skc_family"),
    "NS_OFF_SOCK_NUM": ("sock", "__sk_common.skc_num"),
    "NS_OFF_SOCK_DPORT": ("sock", "__sk_common.skc_dport"),
    "NS_OFF_SOCK_RCV_SADDR": ("sock", "__sk_common.skc_rcv_saddr"),
    "NS_OFF_SOCK_DADDR": ("sock", "__sk_common.skc_daddr"),
    "NS_OFF_SOCK_V6_RCV_SADDR": ("sock", "__sk_common.skc_v6_rcv_saddr"),
    "NS_OFF_SOCK_V6_DADDR": ("sock", "__sk_common.skc_v6_daddr"),
    "NS_OFF_SOCK_RCVQ_LEN": ("sock", "sk_receive_queue.qlen"),
    "NS_OFF_SOCK_RCVBUF": ("sock", "sk_rcvbuf"),
    "NS_OFF_SOCK_RCVQ_TAIL": ("sock", "sk_receive_queue.prev"),
    "NS_OFF_UDP_READERQ_LEN": ("udp_sock", "reader_queue.qlen"),
    "NS_OFF_TCP_RCV_NXT": ("tcp_sock", "rcv_nxt"),
    "NS_OFF_TCP_COPIED_SEQ": ("tcp_sock", "copied_seq"),
    "NS_OFF_TCP_SRTT_US": ("tcp_sock", "srtt_us"),
    "NS_OFF_TCP_SND_CWND": ("tcp_sock", "snd_cwnd"),
    "NS_OFF_TCP_SND_SSTHRESH": ("tcp_sock", "snd_ssthresh"),
    "NS_OFF_TCP_RCV_WND": ("tcp_sock", "rcv_wnd"),
    "NS_OFF_TCP_SND_WND": ("tcp_sock", "snd_wnd"),
    "NS_OFF_TCP_WINDOW_CLAMP": ("tcp_sock", "window_clamp"),
    "NS_OFF_SKB_CB": ("sk_buff", "cb"),
    "NS_OFF_INET_SPORT": ("inet_sock", "inet_sport"),
    "NS_OFF_TXQ_DEV": ("netdev_queue", "dev"),
    "NS_OFF_TCP_SKB_CB_GSO_SEGS": ("tcp_skb_cb", "tcp_gso_segs"),
    "NS_OFF_NAPI_DEV": ("napi_struct", "dev"),
    "NS_OFF_NAPI_ID": ("napi_struct", "napi_id"),
}


def _sock_ino(btf: BTF) -> dict[str, int | str]:
    """Where a socket's inode number is: in struct sock itself where the kernel keeps a copy
    (sk_ino), else in the inode allocated with its struct socket (socket_alloc), through sk_socket."""
    try:
        return {"NS_OFF_SOCK_INO": btf.member_offset("sock", "sk_ino")}
    except BTFError:
        inode = btf.member_offset("socket_alloc", "vfs_inode") - btf.member_offset("socket_alloc", "socket")
        return {
            "NS_OFF_SOCK_SOCKET": btf.member_offset("sock", "sk_socket"),
            "NS_OFF_SOCKET_INO": inode + btf.member_offset("inode", "i_ino"),
        }


def _sock_cgroup(btf: BTF) -> dict[str, int | str]:
    """Where a socket's cgroup id is (kernel_read.h sock_cgroup_id): sk_cgrp_data.cgroup, a
    struct cgroup pointer since Linux 5.15 (a tagged union before, not read: nothing defined)."""
    try:
        return {
            "NS_OFF_SOCK_CGROUP": btf.member_offset("sock", "sk_cgrp_data")
            + btf.member_offset("sock_cgroup_data", "cgroup"),
            "NS_OFF_CGROUP_KN": btf.member_offset("cgroup", "kn"),
            "NS_OFF_KERNFS_NODE_ID": btf.member_offset("kernfs_node", "id"),
        }
    except BTFError:
        return {}


# The sk_buff members read per packet, fetched in one read (kernel_read.h, struct skb_win).
SKB_WINDOW: tuple[str, ...] = ("len", "queue_mapping", "protocol", "transport_header", "network_header")
SKB_WINDOW += ("mac_header", "end", "head", "data")
SKB_WINDOW_MAX = 256  # bytes on the BPF stack


def kernel_offsets(btf: BTF) -> dict[str, int | str]:
    """Every NS_OFF_* define, plus NS_SKB_END_IS_OFFSET: skb->end is an offset from head on 64-bit
    kernels (NET_SKBUFF_DATA_USES_OFFSET), a pointer elsewhere; and the skb window's bounds.
    Looked up once per BTF (0.13 s of lookups here), then copied to each probe."""
    return dict(_kernel_offsets(btf))


@cache
def _kernel_offsets(btf: BTF) -> dict[str, int | str]:
    defines: dict[str, int | str] = {
        name: btf.member_offset(struct, member) for name, (struct, member) in FIELDS.items()
    }
    defines["NS_SKB_END_IS_OFFSET"] = int(btf.member_size("sk_buff", "end") == 4)
    defines.update(_sock_ino(btf))
    defines.update(_sock_cgroup(btf))
    start = min(btf.member_offset("sk_buff", m) for m in SKB_WINDOW) & ~7
    end = max(btf.member_offset("sk_buff", m) + btf.member_size("sk_buff", m) for m in SKB_WINDOW)
    length = (end - start + 7) & ~7
    if length > SKB_WINDOW_MAX:
        raise BTFError(f"sk_buff on this kernel spreads {', '.join(SKB_WINDOW)} over {length} bytes")
    defines["NS_SKB_WIN_START"] = start
    defines["NS_SKB_WIN_LEN"] = length
    return defines
