"""How much of the per-packet work netscope samples: the rate of each sampled probe (1 run in N does
the whole work, bpf_src/sampler.h), chosen every interval so that netscope's BPF stays within its
budget. Pure: the live source feeds it the hooks' own run counts and netscope's measured cost.

The signal is each sampled hook's run count over the last interval (exact, counted in the kernel at
every run, so it is there every interval), priced with a cost per run: what an unsampled run costs
(the decrement and whatever the probe must do at every run, its companion hooks' share included:
the latency probe's reads go with its arrivals) and what a sampled one costs. The prices start from
figures measured on a 2-CPU VM and are corrected by the measurements of bpf_stats (one interval in
ten), probe by probe. The hooks that count every run (drops, hardirqs) are a fixed
cost: what bpf_stats last measured of them comes off the budget first, leaving the sampled hooks
at least a third of it.

What no rate lowers is that a hook runs at all: on a veth flood every packet runs the softirq, NAPI
and queue hooks, and the kernel's dispatch to a program costs about DISPATCH_NS a run beyond the
program (which bpf_stats does not see). A probe whose hooks' dispatch alone would pass its share of
HOOK_BUDGET_PCT of a CPU (shared evenly by the probes attached; what one does not need goes to the
others) has them attached for 1/scale of each interval instead, from a random moment of it (its
weights count `scale` times; copy latency's reads stay on until the arrivals sampled then were
read, and what they counted is scaled by the time they were on).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

BUDGET_PCT = 3.0  # of one CPU: netscope's BPF, all programs together
AIM = 0.5  # of the budget: rates are chosen for this much, so a busier next interval still fits
MAX_RATE = 1 << 16
CORRECTION_BOUNDS = (0.25, 8.0)  # a measured price stays within these factors of the default
MIN_SHARE = 1 / 3  # of the budget, the sampled hooks' however dear the exact ones are
MIN_SAMPLED_SHARE = 0.1  # of that, the samples' however dear the unsampled runs are
SAMPLED_WEIGHS_MOST = 8  # at this rate or lower, a measurement prices the sampled run
# Measured here: a program that does nothing, on a tracepoint every packet passes, slowed the veth
# flood by about this much per run (against the flood alone the reads' tracepoint cost 3% and the
# arrivals' 2%). A window's estimates stay true at the scale this sets because the flows' are
# calibrated to softnet's count of the interval (netscope/sources/probe_set.py): priced so with
# the window's own weights, the flows estimate read 2-7% off at 1/4 of the interval and more.
DISPATCH_NS = 80.0
HOOK_BUDGET_PCT = 1.0  # of a CPU: what the hooks may cost to run at all, shared by the probes attached
# Every section at once (snapshot --detail-every 1: a dozen programs on per-packet tracepoints) needs
# about 1/64 of the time to keep their dispatch within HOOK_BUDGET_PCT in the veth flood; capped at
# 16 they cost it about 4% more of its packets (A-B-A: 0.900 at 16, 0.937 at 64).
MAX_SCALE = 64
# Attaching a raw tracepoint's program and detaching it again patches the kernel's text (jump
# label, static call: IPIs to every CPU) and cost the veth flood here 0.3-0.5% of a second's
# packets an operation; copy latency's window is four of them. At a scale of 8 and more, a window
# opens one interval in `every` (up to this many), `every` times as long: the hooks are on for as
# long in all, and attached and detached `every` times less often. The intervals between carry the
# window's estimates (their kernel counters stay their own).
WINDOW_EVERY_MAX = 4
WINDOW_MIN_SHARE = 4  # a longer window: at most 1/4 of its interval


@dataclass(frozen=True)
class Rate:
    """How a sampled probe samples: 1 run in `n` does the whole work, and its per-packet hooks are
    attached for 1/`scale` of each interval (struct ns_rate in bpf_src/netscope.h), as one
    window of 1/`window_scale` of one interval in `every`."""

    n: int = 1
    scale: int = 1
    every: int = 1

    @property
    def effective(self) -> int:
        """1 packet in this many does the whole work."""
        return self.n * self.scale

    @property
    def window_scale(self) -> int:
        """The window's weights count this many times for its interval (what the kernel is told)."""
        return self.scale // self.every


def windows_every(scale: int) -> int:
    """One interval in how many has the window, at `scale` (see WINDOW_EVERY_MAX)."""
    return max(1, min(WINDOW_EVERY_MAX, scale // WINDOW_MIN_SHARE))


@dataclass(frozen=True)
class Load:
    """A sampled probe's load over the last interval: its sampler's runs per second (as if attached
    all along), and how many program runs go with each."""

    runs_per_s: float
    hooks_per_run: float = 1.0


@dataclass(frozen=True)
class RunCost:
    """ns per run of a sampled probe's hooks: unsampled (`run_ns`) and sampled (`sampled_ns`)."""

    run_ns: float
    sampled_ns: float

    def at(self, rate: int) -> float:
        """Mean ns per run when 1 run in `rate` is sampled."""
        return self.run_ns + (self.sampled_ns - self.run_ns) / rate

    def scaled(self, k: float) -> RunCost:
        return RunCost(self.run_ns * k, self.sampled_ns * k)


# Measured here (2-CPU VM, kernel 6.18, the veth flood of `make bench`): ns of BPF run time per run of
# a probe's sampled hook, net of bpf_stats' own clock reads, with 1 run in 1024 sampled and with
# every run sampled. Per run of the sampled hook, the probe's other hooks included: the latency
# probe's reads (about 1.4 per arrival), the softirq probe's exits, the stack probe's wakeups.
DEFAULT_COSTS: dict[str, RunCost] = {
    "softirq": RunCost(12.0, 68.0),
    "napi": RunCost(12.0, 80.0),
    "rings": RunCost(8.0, 184.0),
    "latency": RunCost(48.0, 350.0),
    "stack": RunCost(13.0, 140.0),
    "flows": RunCost(10.0, 260.0),
    "send": RunCost(10.0, 120.0),
}


def required_rates(
    runs_per_s: Mapping[str, float], costs: Mapping[str, RunCost], spare_ns_per_s: float
) -> dict[str, int]:
    """The smallest rate per probe (a power of two) that keeps the sampled probes within
    `spare_ns_per_s`: what their unsampled runs leave of it is shared out evenly, and a probe that
    needs less than its share at rate 1 leaves the rest to the others."""
    floor = sum(runs_per_s[p] * costs[p].run_ns for p in runs_per_s)
    extra = {p: runs_per_s[p] * (costs[p].sampled_ns - costs[p].run_ns) for p in runs_per_s}
    # What the unsampled runs cost no rate can lower: past the budget, the samples still get a
    # little of it, so the figures thin out instead of vanishing.
    left = max(spare_ns_per_s - floor, spare_ns_per_s * MIN_SAMPLED_SHARE)
    rates = {p: 1 for p in runs_per_s}
    pending = sorted((p for p in extra if extra[p] > 0), key=lambda p: extra[p])
    while pending:
        share = left / len(pending)
        p = pending.pop(0)
        if share > 0 and extra[p] <= share:
            left -= extra[p]
            continue
        need = extra[p] / share if share > 0 else math.inf
        rates[p] = MAX_RATE if need >= MAX_RATE else 1 << max(0, math.ceil(math.log2(need)))
        left -= extra[p] / rates[p]
    return rates


@dataclass
class RateController:
    """The rate of every sampled probe, interval after interval. A rate goes up at once when the
    runs grow; it comes down one step (half) per interval, and only while the lower rate would still
    fit, so a bursty load does not make it flap. `forced` (--sample N: Rate(N)) fixes every rate."""

    budget_pct: float = BUDGET_PCT
    forced: Rate | None = None
    rates: dict[str, Rate] = field(default_factory=dict)
    costs: dict[str, RunCost] = field(default_factory=dict)  # as measured, where they were
    fixed_ns_per_s: float = 0.0  # the exact hooks' cost, as bpf_stats last measured it

    def cost(self, probe: str) -> RunCost:
        return self.costs.get(probe) or DEFAULT_COSTS.get(probe, RunCost(10.0, 100.0))

    def measured(
        self, ns_per_run: Mapping[str, float], fixed_ns_per_s: float, rates: Mapping[str, int]
    ) -> None:
        """A bpf_stats measurement (net of bpf_stats' own clock reads): each sampled probe's run time
        per run of its sampler (at in-kernel rates `rates` then), and the run time per second of the
        hooks that count every event (drops, interrupts). A sampled probe corrects the price that
        weighed most in what was measured: the sampled run's at a low rate, the plain run's at a
        high one."""
        self.fixed_ns_per_s = fixed_ns_per_s
        lo, hi = CORRECTION_BOUNDS
        for p, per_run in ns_per_run.items():
            rate, now, default = rates.get(p, 1), self.cost(p), DEFAULT_COSTS.get(p)
            if rate <= SAMPLED_WEIGHS_MOST:
                sampled = now.run_ns + (per_run - now.run_ns) * rate
                base = default.sampled_ns if default else now.sampled_ns
                self.costs[p] = RunCost(now.run_ns, min(hi * base, max(lo * base, sampled)))
            else:
                run = per_run - (now.sampled_ns - now.run_ns) / rate
                base = default.run_ns if default else now.run_ns
                self.costs[p] = RunCost(min(hi * base, max(lo * base, run)), now.sampled_ns)

    def update(self, loads: Mapping[str, Load]) -> dict[str, Rate]:
        """The rates for the next interval, given each sampled probe's load in the last."""
        if self.forced is not None:
            self.rates = dict.fromkeys(loads, self.forced)
            return dict(self.rates)
        wanted_scales = required_scales(loads, HOOK_BUDGET_PCT)
        scales = {p: self._step(p, wanted_scales[p], lambda r: r.scale) for p in loads}
        budget = AIM * self.budget_pct / 100 * 1e9
        # The hooks that count every event come first; the sampled ones share what is left, and at
        # least a third of the budget (in a drop storm the drops alone may pass it).
        spare = max(budget - self.fixed_ns_per_s, budget * MIN_SHARE)
        attached = {p: load.runs_per_s / scales[p] for p, load in loads.items()}
        wanted = required_rates(attached, {p: self.cost(p) for p in loads}, spare)
        self.rates = {
            p: Rate(self._step(p, n, lambda r: r.n), scales[p], windows_every(scales[p]))
            for p, n in wanted.items()
        }
        return dict(self.rates)

    def onset(self, loads: Mapping[str, Load], watched: Collection[str]) -> dict[str, Rate]:
        """Mid-interval: the rates the `watched` probes (hooks on all the interval) would need, if
        their load now, among the others' (`loads`), needs a larger scale than the one in force:
        the scale raised, n kept (the interval's end sets both again). Recorded with `raised`.
        Nothing when forced."""
        if self.forced is not None:
            return {}
        wanted = required_scales(loads, HOOK_BUDGET_PCT)
        out = {}
        for p in watched:
            now = self.rates.get(p, Rate())
            if p in wanted and wanted[p] > now.scale:
                out[p] = Rate(now.n, wanted[p])
        return out

    def raised(self, probe: str, rate: Rate) -> None:
        """A rate `onset` proposed is in force."""
        self.rates[probe] = rate

    def _step(self, probe: str, wanted: int, part: Callable[[Rate], int]) -> int:
        """Up at once to `wanted`; down one step (half) at a time, while half still suffices."""
        now = part(self.rates.get(probe, Rate()))
        if wanted >= now:
            return wanted
        return now // 2 if now > 1 and wanted <= now // 2 else now


def required_scales(loads: Mapping[str, Load], budget_pct: float) -> dict[str, int]:
    """Each probe's scale, the budget for the hooks' dispatch shared out evenly: a probe that
    needs less than its share at scale 1 leaves the rest to the others (copy latency, with no
    socket reading, leaves the flows probe all of it)."""
    left = budget_pct
    scales = {}
    pending = sorted(loads, key=lambda p: dispatch_pct(loads[p]))
    while pending:
        share = left / len(pending)
        p = pending.pop(0)
        scales[p] = required_scale(loads[p], share)
        left -= dispatch_pct(loads[p]) / scales[p]
    return scales


def dispatch_pct(load: Load) -> float:
    """What a probe's hooks cost to run at all, attached all the time: % of a CPU."""
    return load.runs_per_s * load.hooks_per_run * DISPATCH_NS / 1e9 * 100


def required_scale(load: Load, share_pct: float) -> int:
    """The smallest 1/scale of the time (a power of two) for which the probe's hooks cost no more
    than `share_pct` of a CPU to run at all."""
    if share_pct <= 0:  # the others took it all (capped at MAX_SCALE, they needed more)
        return MAX_SCALE
    need = dispatch_pct(load) / share_pct
    return 1 if need <= 1 else min(MAX_SCALE, 1 << math.ceil(math.log2(need)))
