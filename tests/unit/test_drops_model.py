"""Drop reasons decoded from the kernel's own tables; the per-second drops view."""

from __future__ import annotations

from pathlib import Path

from netscope.model.drops import (
    DropTotals,
    build_drops_view,
    device_label,
    five_tuple,
    names_from_enums,
    parse_format_reasons,
    protocol_name,
)
from netscope.model.sample import DropBucket, DropEvent, DropReasonCount, DropsSample, HostInfo, Sample
from netscope.probes.kallsyms import Kallsyms
from tests.unit.samples import two_cpu_sample

FORMAT = (Path(__file__).parent.parent / "fixtures" / "kfree_skb.format").read_text()
INFO = HostInfo("box", "6.18", (0, 1), 0.0, netns=4026531840)


def test_reason_names_from_the_captured_format_file() -> None:
    names = parse_format_reasons(FORMAT)
    assert names[2] == "NOT_SPECIFIED"
    assert names[3] == "NO_SOCKET"
    assert names[6] == "SOCKET_RCVBUFF"
    assert names[12] == "NETFILTER_DROP"
    assert len(names) > 100
    assert parse_format_reasons('print fmt: "no symbolic here"') == {}


def test_subsystem_reasons_decode_both_parts() -> None:
    enums = {
        "skb_drop_reason": {"SKB_NOT_DROPPED_YET": 0, "SKB_DROP_REASON_NO_SOCKET": 3},
        "skb_drop_reason_subsys": {
            "SKB_DROP_REASON_SUBSYS_CORE": 0,
            "SKB_DROP_REASON_SUBSYS_OPENVSWITCH": 2,
            "SKB_DROP_REASON_SUBSYS_NUM": 3,
        },
        "ovs_drop_reason": {"OVS_DROP_LAST_ACTION": (2 << 16) | 0, "OVS_DROP_ACTION_ERROR": (2 << 16) | 1},
    }
    names = names_from_enums(enums)
    assert names.decode(3) == ("", "NO_SOCKET")
    assert names.decode((2 << 16) | 1) == ("OPENVSWITCH", "OVS_DROP_ACTION_ERROR")
    assert names.decode((2 << 16) | 9) == ("OPENVSWITCH", "reason 9")  # a code this kernel does not name
    assert names.decode((7 << 16) | 1) == ("subsystem 7", "reason 1")
    assert names.decode(999) == ("", "reason 999")


def test_format_and_btf_agree_on_this_kernel() -> None:
    from netscope.probes.btf import kernel_btf

    btf_names = names_from_enums(kernel_btf().enums_named("drop_reason"))
    for value, name in parse_format_reasons(FORMAT).items():
        if value in btf_names.core and name != "MAX":
            assert btf_names.core[value] == name


def test_kallsyms_symbolizes_to_function_plus_offset() -> None:
    syms = Kallsyms(
        "ffffffff81000000 T _stext\n"
        "ffffffff81001000 t udp_queue_rcv_one_skb\n"
        "ffffffff81002000 D some_data\n"
        "ffffffff81003000 T nft_do_chain\t[nf_tables]\n"
        "0000000000000000 T hidden\n".splitlines()
    )
    assert len(syms) == 3
    assert syms.symbolize(0xFFFFFFFF81001437) == "udp_queue_rcv_one_skb+0x437"
    assert syms.symbolize(0xFFFFFFFF81002010) == "udp_queue_rcv_one_skb+0x1010"  # data symbols skipped
    assert syms.symbolize(0xFFFFFFFF81003005) == "nft_do_chain [nf_tables]+0x5"
    assert syms.symbolize(0x1000) == "0x1000"


def test_protocols_devices_and_tuples() -> None:
    assert protocol_name(0x0800) == "IPv4"
    assert protocol_name(0x86DD) == "IPv6"
    assert protocol_name(0x1234) == "0x1234"
    assert device_label("eth0", 4026531840, 4026531840, {}) == "eth0"
    assert device_label("eth0", 4026532246, 4026531840, {4026532246: "pod-a"}) == "eth0@pod-a"
    assert device_label("eth0", 4026532247, 4026531840, {}) == "eth0@4026532247"
    assert device_label("", 0, 4026531840, {}) == "(no device)"
    e = DropEvent(0.0, 1, 3, "NO_SOCKET", "", "f+0x1", 0x0800, "v", 1, 17, "10.200.0.1", "10.200.0.2", 400, 9)
    assert five_tuple(e) == "udp 10.200.0.1:400 → 10.200.0.2:9"
    v6 = DropEvent(0.0, 1, 3, "NO_SOCKET", "", "f", 0x86DD, "v", 1, 6, "fd00::1", "fd00::2", 1, 2)
    assert five_tuple(v6) == "tcp [fd00::1]:1 → [fd00::2]:2"
    arp = DropEvent(0.0, 1, 3, "X", "", "f", 0x0806, "v", 1, 0, "", "", 0, 0)
    assert five_tuple(arp) == ""


def drops_sample() -> Sample:
    drops = DropsSample(
        reasons=(
            DropReasonCount(3, "NO_SOCKET", "", (0, 3000)),
            DropReasonCount(12, "NETFILTER_DROP", "", (100, 900)),
        ),
        buckets=(
            DropBucket(3, 1, "__udp4_lib_rcv+0x4bc", 0x0800, 2, "veth1", 4026532246, (0, 2000)),
            DropBucket(3, 1, "__udp4_lib_rcv+0x4bc", 0x0800, 3, "eth0", 4026531840, (0, 1000)),
            DropBucket(12, 2, "nft_do_chain+0x3e8", 0x0800, 2, "veth1", 4026532246, (100, 900)),
        ),
        events=(),
        logged=1000,
        suppressed=3000,
        lost=2,
        unbucketed=0,
        log_rate=1000,
    )
    base = two_cpu_sample(interval_s=2.0)
    return Sample(**{**base.__dict__, "drops": drops, "netns_names": ((4026532246, "nsB"),)})


def test_drops_view_rates_shares_and_breakdowns() -> None:
    view = build_drops_view(drops_sample(), INFO)
    assert view is not None
    assert view.total_per_s == 2000
    no_socket, netfilter = view.rows
    assert (no_socket.name, no_socket.per_s, no_socket.share_pct) == ("NO_SOCKET", 1500, 75.0)
    assert [(r.key, r.count) for r in no_socket.devices] == [("veth1@nsB", 2000), ("eth0", 1000)]
    assert [(r.key, r.count) for r in no_socket.locations] == [("__udp4_lib_rcv+0x4bc", 3000)]
    assert [(r.key, r.count) for r in netfilter.cpus] == [("CPU1", 900), ("CPU0", 100)]
    assert "netfilter" in netfilter.explanation
    assert build_drops_view(two_cpu_sample(), INFO) is None


def test_totals_accumulate() -> None:
    sample = drops_sample()
    assert sample.drops is not None
    totals = DropTotals().add(sample.drops).add(sample.drops)
    assert totals == DropTotals(drops=8000, suppressed=6000, lost=4)
