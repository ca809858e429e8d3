"""The pcap-like filter: parsing, errors pointing at the bad token, evaluation, C compilation."""

from __future__ import annotations

import re

import pytest

from netscope.model.filter import FilterError, Scope, Tuple5, parse_filter, with_scope

UDP = Tuple5(4, 17, "10.200.0.1", 40001, "10.200.0.2", 9)
TCP = Tuple5(4, 6, "10.200.0.2", 6101, "10.200.1.7", 51000)
ICMP6 = Tuple5(6, 58, "fd00::1", 0, "fd00::2", 0)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("udp", [True, False, False]),
        ("tcp or icmp", [False, True, True]),
        ("ip6", [False, False, True]),
        ("host 10.200.0.2", [True, True, False]),
        ("src host 10.200.0.1", [True, False, False]),
        ("dst 10.200.0.2", [True, False, False]),
        ("net 10.200.1.0/24", [False, True, False]),
        ("dst net 10.200.0.0/16 and not tcp", [True, False, False]),
        ("port 9", [True, False, False]),
        ("sport 40001 || dport 51000", [True, True, False]),
        ("not (udp and port 9)", [False, True, True]),
        ("host fd00::2", [False, False, True]),
        ("net fd00::/64 and icmp", [False, False, True]),
        ("udp && ! port 53", [True, False, False]),
    ],
)
def test_matches(expr: str, expected: list[bool]) -> None:
    f = parse_filter(expr)
    assert [f.matches(t) for t in (UDP, TCP, ICMP6)] == expected


@pytest.mark.parametrize(
    ("expr", "position", "message"),
    [
        ("", 0, "empty"),
        ("udp and", 7, "ends too early"),
        ("host 10.200.0.300", 5, "not an IP address"),
        ("port 70000", 5, "not a port"),
        ("net 10.0.0.0/33", 4, "not a network"),
        ("udp or frobnicate", 7, "unknown word 'frobnicate'"),
        ("(udp or tcp", 11, "missing ')'"),
        ("udp tcp", 4, "unexpected 'tcp'"),
        ("src", 3, "src of what"),
    ],
)
def test_errors_point_at_the_bad_token(expr: str, position: int, message: str) -> None:
    with pytest.raises(FilterError, match=re.escape(message)) as exc:
        parse_filter(expr)
    assert exc.value.position == position
    assert exc.value.pointer().splitlines()[1].index("^") == position


def test_compiles_to_c_over_the_flow_tuple() -> None:
    assert parse_filter("udp and dport 9").c_expression() == (
        "((t->proto == 17) && ((t->proto == 6 || t->proto == 17) && (t->dport == 9)))"
    )
    # 10.200.0.0/16: the first address word, masked, as the little-endian u32 BPF reads.
    assert parse_filter("src net 10.200.0.0/16").c_expression() == (
        "((t->family == 4 && (t->saddr[0] & 0xffffu) == 0xc80au))"
    )
    v6 = parse_filter("host fd00::2").c_expression("f")
    assert v6.count("f->saddr[") == 4 and v6.count("f->daddr[") == 4 and "f->family == 6" in v6


def test_pid_and_container_terms_are_the_filters_scope_its_flow_terms_the_rest() -> None:
    """`pid` and `container` select processes: one group of them joined by `or`, joined to the
    flow terms by a top-level `and`; the kernel is compiled with the flow terms alone."""
    flt = parse_filter("(pid 42 or container web) and udp and port 9")
    assert flt.scope == Scope(frozenset({42}), ("web",))
    assert flt.flows is not None and flt.flows.text == "udp and port 9" and not flt.flows.scope
    assert flt.matches(UDP) and not flt.matches(TCP)
    assert flt.c_expression() == parse_filter("udp and port 9").c_expression()
    alone = parse_filter("(pid 7 or pid 8)")
    assert alone.scope.pids == {7, 8} and alone.flows is None and alone.matches(TCP)
    assert alone.c_expression() == "1"
    plain = parse_filter("udp")
    assert plain.flows is plain and not plain.scope


@pytest.mark.parametrize(
    ("expr", "where"),
    [
        ("not pid 4", "not pid 4"),
        ("udp or pid 4", "udp or pid 4"),
        ("pid 1 and pid 2", "pid 2"),
        ("udp and (pid 3 or tcp)", "(pid 3"),
        ("pid x", "x"),
        ("pid 0", "0"),
        ("container", ""),
    ],
)
def test_scope_terms_misplaced_point_at_the_term(expr: str, where: str) -> None:
    with pytest.raises(FilterError) as e:
        parse_filter(expr)
    assert e.value.position == (expr.index(where) if where else len(expr)), e.value.pointer()


def test_pid_and_container_options_join_the_filters_scope() -> None:
    """--pid and --container beside --filter: one scope, one text."""
    both = with_scope(parse_filter("container web and udp"), Scope(frozenset({42}), ()))
    assert both is not None and both.scope == Scope(frozenset({42}), ("web",))
    assert both.text == "(pid 42 or container web) and udp" and both.flows == parse_filter("udp")
    alone = with_scope(None, Scope(frozenset({42}), ()))
    assert alone is not None and alone.text == "pid 42" and alone.flows is None
    assert with_scope(None, Scope()) is None
