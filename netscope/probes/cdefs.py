"""The constants of bpf_src/netscope.h (`#define NS_NAME <integer expression>`), read from the header
the programs are compiled with: the decoders' sizes, bucket counts and stats orders cannot drift
from the C side. (The pure model keeps its own copy of the latency bucket bits; a unit test holds
them to the header.)"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from functools import cache
from importlib import resources

DEFINE = re.compile(r"^#define\s+(NS_[A-Z0-9_]+)\s+(.+?)\s*(?:/\*.*)?$")
SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")  # 1ULL -> 1
_OPS: dict[type[ast.AST], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}


@cache
def defines() -> dict[str, int]:
    """Every integer `#define NS_*` of netscope.h, its expression evaluated (integers, earlier
    names, + - * << >>, parentheses); other macros are left out."""
    text = (resources.files("netscope.bpf_src") / "netscope.h").read_text()
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = DEFINE.match(line)
        if m:
            value = _evaluate(m.group(2), found)
            if value is not None:
                found[m.group(1)] = value
    return found


def _evaluate(expression: str, known: dict[str, int]) -> int | None:
    try:
        tree = ast.parse(SUFFIX.sub(r"\1", expression), mode="eval")
    except SyntaxError:
        return None

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in known:
            return known[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(expression)

    try:
        return value(tree)
    except ValueError:
        return None


def define(name: str) -> int:
    """One constant, by its name without the NS_ prefix."""
    return defines()[f"NS_{name}"]


def stats(prefix: str) -> tuple[str, ...]:
    """The names of a per-CPU stats array's slots, in index order: NS_<prefix>_STAT_<NAME> lowered,
    checked to fill 0 .. NS_<prefix>_STATS - 1."""
    head = f"NS_{prefix}_STAT_"
    slots = {value: name[len(head) :].lower() for name, value in defines().items() if name.startswith(head)}
    count = defines()[f"NS_{prefix}_STATS"]
    if sorted(slots) != list(range(count)):
        raise ValueError(f"netscope.h: {head}* do not number 0..{count - 1}: {slots}")
    return tuple(slots[i] for i in range(count))
