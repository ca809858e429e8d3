"""A pcap-like filter: parse, evaluate on a 5-tuple, and compile to a C expression for the BPF side.

Grammar (a subset of pcap-filter):
    expr      := term (("or" | "||") term)*
    term      := factor (("and" | "&&") factor)*
    factor    := ("not" | "!") factor | "(" expr ")" | primitive
    primitive := [src|dst] host ADDR | [src|dst] net CIDR | [src|dst] port N | sport N | dport N
               | src ADDR | dst ADDR | tcp | udp | icmp | ip | ip6 | pid N | container NAME
Pure: the probes compile it into their programs, the model evaluates it on recorded flows.

`pid` and `container` select processes, not packets: they form the filter's scope (the views
narrowed to those processes, netscope/model/scope.py), one term or several joined by `or`, joined
to the flow terms by a top-level `and` (`(pid 42 or container web) and udp and port 53`: no `not`
over them, no `or` with a flow term).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from netscope.model.containers import Container

IPPROTO = {"tcp": 6, "udp": 17, "icmp": 1}
ICMPV6 = 58
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FilterError(ValueError):
    """A bad expression; `position` is the offset of the offending token in the text."""

    def __init__(self, message: str, text: str, position: int) -> None:
        super().__init__(message)
        self.text = text
        self.position = position

    def pointer(self) -> str:
        """The expression with a caret under the bad token."""
        return f"{self.text}\n{' ' * self.position}^ {self}"


@dataclass(frozen=True)
class Tuple5:
    family: int  # 4 or 6
    proto: int  # IPPROTO_*
    saddr: str
    sport: int
    daddr: str
    dport: int


@dataclass(frozen=True)
class Scope:
    """Processes by pid, and containers by id (or a prefix of it), pod uid (or a prefix) or
    `runtime:id` as a row names it: a process is in scope when any of them holds it."""

    pids: frozenset[int] = frozenset()
    containers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pids or self.containers)

    @property
    def text(self) -> str:
        terms = [f"pid {p}" for p in sorted(self.pids)] + [f"container {c}" for c in self.containers]
        return " or ".join(terms)

    def union(self, other: Scope) -> Scope:
        return Scope(self.pids | other.pids, tuple(dict.fromkeys(self.containers + other.containers)))

    def holds_container(self, container: Container | None, names: Mapping[str, str]) -> bool:
        """Whether one of its containers is `container` (`names`: the runtimes' names by id)."""
        return container is not None and any(container.called(want, names) for want in self.containers)


@dataclass(frozen=True)
class Token:
    text: str
    pos: int


_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||!|[^\s()!]+)")


def tokenize(text: str) -> list[Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or not m.group(1):
            break
        tokens.append(Token(m.group(1), m.start(1)))
        pos = m.end()
    return tokens


# AST: plain tuples keep it small and hashable.
Node = tuple[object, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.spans: dict[int, tuple[int, int]] = {}  # id(factor node) -> its text's start and end

    def error(self, message: str, token: Token | None = None) -> FilterError:
        pos = (
            token.pos if token else (self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text))
        )
        return FilterError(message, self.text, pos)

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("the expression ends too early")
        self.i += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("empty filter")
        node = self.expr()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def expr(self) -> Node:
        node = self.term()
        while (t := self.peek()) is not None and t.text in ("or", "||"):
            self.i += 1
            node = ("or", node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while (t := self.peek()) is not None and t.text in ("and", "&&"):
            self.i += 1
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Node:
        token = self.take()
        if token.text in ("not", "!"):
            node: Node = ("not", self.factor())
        elif token.text == "(":
            node = self.expr()
            close = self.peek()
            if close is None or close.text != ")":
                raise self.error("missing ')'", close)
            self.i += 1
        else:
            node = self.primitive(token)
        last = self.tokens[self.i - 1]
        self.spans[id(node)] = (token.pos, last.pos + len(last.text))
        return node

    def primitive(self, token: Token) -> Node:
        word = token.text.lower()
        if word in IPPROTO or word in ("ip", "ip6"):
            return ("proto", word)
        if word in ("sport", "dport"):
            return ("port", "src" if word == "sport" else "dst", self.port())
        direction = "any"
        if word in ("src", "dst"):
            direction = word
            nxt = self.peek()
            if nxt is None:
                raise self.error(f"{word} of what? (host, net, port or an address)")
            if nxt.text.lower() not in ("host", "net", "port"):
                return ("host", direction, self.address(self.take()))
            token = self.take()
            word = token.text.lower()
        if word == "host":
            return ("host", direction, self.address(self.take()))
        if word == "net":
            return ("net", direction, self.network(self.take()))
        if word == "port":
            return ("port", direction, self.port())
        if word == "pid" and direction == "any":
            pid = self.take()
            if not pid.text.isdigit() or int(pid.text) <= 0:
                raise self.error(f"not a process id: {pid.text!r}", pid)
            return ("pid", int(pid.text))
        if word == "container" and direction == "any":
            name = self.take()
            if name.text in ("(", ")", "!", "&&", "||"):
                raise self.error("container of what? (a name or an id)", name)
            return ("container", name.text)
        raise self.error(
            f"unknown word {token.text!r} "
            "(expected host, net, port, src, dst, tcp, udp, icmp, ip, ip6, pid, container, not, '(')",
            token,
        )

    def address(self, token: Token) -> Address:
        try:
            return ipaddress.ip_address(token.text)
        except ValueError:
            raise self.error(f"not an IP address: {token.text!r}", token) from None

    def network(self, token: Token) -> Network:
        try:
            return ipaddress.ip_network(token.text, strict=False)
        except ValueError:
            raise self.error(f"not a network (CIDR): {token.text!r}", token) from None

    def port(self) -> int:
        token = self.take()
        if not token.text.isdigit() or not 0 <= int(token.text) <= 65535:
            raise self.error(f"not a port number: {token.text!r}", token)
        return int(token.text)


@dataclass(frozen=True)
class Filter:
    """The whole expression (`text`): its flow terms (`ast`, None when it has none) and the
    processes it narrows the views to (`scope`)."""

    text: str
    ast: Node | None
    scope: Scope = field(default_factory=Scope)
    flow_text: str = ""  # the flow terms' part of the text ("" when none)

    @property
    def flows(self) -> Filter | None:
        """The flow terms alone (what the kernel's flows program is compiled with), or None."""
        if self.ast is None:
            return None
        return self if not self.scope else Filter(self.flow_text, self.ast, Scope(), self.flow_text)

    def matches(self, t: Tuple5) -> bool:
        return self.ast is None or _eval(self.ast, t)

    def c_expression(self, var: str = "t") -> str:
        """A C expression over `struct flow_tuple *var` (bpf_src/netscope.h): family, proto,
        sport, dport (host order), saddr/daddr as four u32 words (IPv4 in the first)."""
        return "1" if self.ast is None else _c(self.ast, var)


def parse_filter(text: str) -> Filter:
    """Raises FilterError pointing at the bad token."""
    parser = _Parser(text)
    node = parser.parse()
    conjuncts = _conjuncts(node)
    scoped = [c for c in conjuncts if _scope_only(c)]
    rest = [c for c in conjuncts if not _scope_only(c)]

    def at(c: Node) -> int:
        return parser.spans.get(id(c), (0, 0))[0]

    for c in rest:
        if _mentions_scope(c):
            raise FilterError(
                "pid and container select processes: join them to the flow terms with `and`, "
                "and to each other with `or` (no `not`)",
                text,
                at(c),
            )
    if len(scoped) > 1:
        raise FilterError("join pid and container terms with `or`", text, at(scoped[1]))
    if not scoped:
        return Filter(text.strip(), node, Scope(), text.strip())
    scope = _scope(scoped[0])
    if not rest:
        return Filter(text.strip(), None, scope)
    flow_ast = rest[0]
    for c in rest[1:]:
        flow_ast = ("and", flow_ast, c)
    flow_text = " and ".join(text[slice(*parser.spans[id(c)])] for c in rest)
    return Filter(text.strip(), flow_ast, scope, flow_text)


def with_scope(flt: Filter | None, scope: Scope) -> Filter | None:
    """`flt` narrowed to `scope` too (--pid and --container beside --filter)."""
    if not scope:
        return flt
    if flt is None:
        return Filter(scope.text, None, scope)
    joined = flt.scope.union(scope)
    terms = f"({joined.text})" if len(joined.pids) + len(joined.containers) > 1 else joined.text
    text = f"{terms} and {flt.flow_text}" if flt.ast is not None else joined.text
    return Filter(text, flt.ast, joined, flt.flow_text)


def _conjuncts(node: Node) -> list[Node]:
    if node[0] == "and":
        return _conjuncts(node[1]) + _conjuncts(node[2])  # type: ignore[arg-type]
    return [node]


def _scope_only(node: Node) -> bool:
    if node[0] == "or":
        return _scope_only(node[1]) and _scope_only(node[2])  # type: ignore[arg-type]
    return node[0] in ("pid", "container")


def _mentions_scope(node: Node) -> bool:
    if node[0] in ("and", "or", "not"):
        return any(_mentions_scope(n) for n in node[1:])  # type: ignore[arg-type]
    return node[0] in ("pid", "container")


def _scope(node: Node) -> Scope:
    if node[0] == "or":
        return _scope(node[1]).union(_scope(node[2]))  # type: ignore[arg-type]
    if node[0] == "pid":
        return Scope(pids=frozenset({int(node[1])}))  # type: ignore[call-overload]
    return Scope(containers=(str(node[1]),))


def _sides(direction: object) -> tuple[str, ...]:
    return {"src": ("s",), "dst": ("d",), "any": ("s", "d")}[str(direction)]


def _eval(node: Node, t: Tuple5) -> bool:
    kind = node[0]
    if kind == "and":
        return _eval(node[1], t) and _eval(node[2], t)  # type: ignore[arg-type]
    if kind == "or":
        return _eval(node[1], t) or _eval(node[2], t)  # type: ignore[arg-type]
    if kind == "not":
        return not _eval(node[1], t)  # type: ignore[arg-type]
    if kind == "proto":
        name = node[1]
        if name == "ip":
            return t.family == 4
        if name == "ip6":
            return t.family == 6
        if name == "icmp":
            return t.proto in (1, ICMPV6)
        return t.proto == IPPROTO[str(name)]
    addrs = {"s": t.saddr, "d": t.daddr}
    if kind == "host":
        return any(_same(addrs[side], node[2]) for side in _sides(node[1]))  # type: ignore[arg-type]
    if kind == "net":
        return any(_in(addrs[side], node[2]) for side in _sides(node[1]))  # type: ignore[arg-type]
    if kind == "port":
        ports = {"s": t.sport, "d": t.dport}
        return t.proto in (6, 17) and any(ports[side] == node[2] for side in _sides(node[1]))
    raise AssertionError(kind)


def _same(addr: str, want: Address) -> bool:
    try:
        return ipaddress.ip_address(addr) == want
    except ValueError:
        return False


def _in(addr: str, net: Network) -> bool:
    try:
        return ipaddress.ip_address(addr) in net
    except ValueError:
        return False


def address_words(packed: bytes) -> list[int]:
    """Address bytes as the four u32 words of struct flow_tuple as BPF reads them (IPv4 in the first;
    little-endian hosts)."""
    packed = packed.ljust(16, b"\0")
    return [int.from_bytes(packed[i : i + 4], "little") for i in range(0, 16, 4)]


def _c_addr(var: str, side: str, net: Network) -> str:
    family = 4 if net.version == 4 else 6
    words, masks = address_words(net.network_address.packed), address_words(net.netmask.packed)
    count = 1 if family == 4 else 4
    parts = [f"{var}->family == {family}"]
    for i in range(count):
        if masks[i]:
            parts.append(f"({var}->{side}addr[{i}] & {masks[i]:#x}u) == {words[i] & masks[i]:#x}u")
    return "(" + " && ".join(parts) + ")"


def _c(node: Node, var: str) -> str:
    kind = node[0]
    if kind in ("and", "or"):
        op = "&&" if kind == "and" else "||"
        return f"({_c(node[1], var)} {op} {_c(node[2], var)})"  # type: ignore[arg-type]
    if kind == "not":
        return f"(!{_c(node[1], var)})"  # type: ignore[arg-type]
    if kind == "proto":
        name = str(node[1])
        if name in ("ip", "ip6"):
            return f"({var}->family == {4 if name == 'ip' else 6})"
        if name == "icmp":
            return f"({var}->proto == 1 || {var}->proto == {ICMPV6})"
        return f"({var}->proto == {IPPROTO[name]})"
    sides = _sides(node[1])
    if kind in ("host", "net"):
        value = node[2]
        net: Network = (
            ipaddress.ip_network(value)
            if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address)
            else value  # type: ignore[assignment]
        )
        return "(" + " || ".join(_c_addr(var, side, net) for side in sides) + ")"
    if kind == "port":
        ports = " || ".join(f"{var}->{side}port == {node[2]}" for side in sides)
        return f"(({var}->proto == 6 || {var}->proto == 17) && ({ports}))"
    raise AssertionError(kind)
