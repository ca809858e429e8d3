"""The sampling rates: each sampled probe's rate keeps netscope's BPF within its budget."""

from __future__ import annotations

from netscope.model.sampling import (
    AIM,
    BUDGET_PCT,
    DEFAULT_COSTS,
    DISPATCH_NS,
    HOOK_BUDGET_PCT,
    MAX_RATE,
    MAX_SCALE,
    Load,
    Rate,
    RateController,
    RunCost,
    required_rates,
    required_scale,
    windows_every,
)
from netscope.probes.base import Runs

BUDGET_NS = AIM * BUDGET_PCT / 100 * 1e9
COSTS = {"flows": RunCost(10.0, 260.0), "napi": RunCost(12.0, 80.0)}
SHARE = HOOK_BUDGET_PCT / 2  # two probes share the budget
SHARE_RUNS = SHARE / 100 * 1e9 / DISPATCH_NS  # runs/s whose dispatch fills a probe's share


def cost_at(runs: dict[str, float], rates: dict[str, int]) -> float:
    return sum(n * COSTS[p].at(rates[p]) for p, n in runs.items())


def test_low_rates_sample_everything() -> None:
    assert required_rates({"flows": 1000.0, "napi": 1000.0}, COSTS, BUDGET_NS) == {"flows": 1, "napi": 1}
    assert RateController().update({"flows": Load(1000.0)}) == {"flows": Rate(1, 1)}


def test_a_flood_gets_the_smallest_power_of_two_that_fits() -> None:
    runs = {"flows": 100_000.0, "napi": 1000.0}
    rates = required_rates(runs, COSTS, BUDGET_NS)
    assert rates["napi"] == 1  # it needs less than its share: the rest goes to flows
    n = rates["flows"]
    assert n & (n - 1) == 0 and n > 1
    assert cost_at(runs, rates) <= BUDGET_NS  # fits...
    assert cost_at(runs, {**rates, "flows": n // 2}) > BUDGET_NS  # ...and half the rate would not


def test_past_the_budget_the_samples_thin_out_but_stay() -> None:
    runs = {"flows": 10_000_000.0, "napi": 10_000_000.0}  # the unsampled runs alone pass the budget
    rates = required_rates(runs, COSTS, BUDGET_NS)
    assert all(1 < n < MAX_RATE for n in rates.values()), rates


def test_hooks_that_cost_too_much_to_run_at_all_are_attached_part_of_the_time() -> None:
    assert required_scale(Load(SHARE_RUNS / 2), SHARE) == 1
    assert required_scale(Load(SHARE_RUNS * 3), SHARE) == 4  # the smallest power of two that fits
    assert required_scale(Load(SHARE_RUNS, hooks_per_run=3), SHARE) == 4  # its other hooks count too
    assert required_scale(Load(SHARE_RUNS * 1000), SHARE) == MAX_SCALE
    # The budget is shared by the probes attached; what one does not need goes to the others.
    rates = RateController().update({"napi": Load(SHARE_RUNS * 3), "rings": Load(SHARE_RUNS * 3)})
    assert rates["napi"].scale == 4 and rates["napi"].effective == rates["napi"].n * 4
    idle = RateController().update({"napi": Load(SHARE_RUNS * 3), "rings": Load(1.0)})
    assert idle["napi"].scale == 2 and idle["rings"].scale == 1  # as if alone: the whole budget


def test_at_a_large_scale_the_window_comes_one_interval_in_several() -> None:
    """Attaching and detaching the hooks costs the box at each window: at scale 8 and 16 it comes
    one interval in 2 and in 4, a quarter of that interval long (the hooks on as long in all),
    and the kernel counts each of its samples for that interval only."""
    assert [windows_every(s) for s in (1, 2, 4, 8, 16)] == [1, 1, 1, 2, 4]
    rate = RateController().update({"latency": Load(SHARE_RUNS * 1000)})["latency"]
    assert (rate.scale, rate.every, rate.window_scale) == (MAX_SCALE, 4, MAX_SCALE // 4)
    assert rate.effective == rate.n * MAX_SCALE  # 1 packet in n*scale does the work, on average
    assert RateController(forced=Rate(4)).update({"latency": Load(SHARE_RUNS * 1000)})["latency"].every == 1


def test_probes_capped_at_the_largest_scale_leave_the_others_the_largest_too() -> None:
    """Two probes whose dispatch passes their share even at MAX_SCALE spend more than the budget:
    the one after them has nothing left, and gets MAX_SCALE (snapshot --detail-every 1 with every
    section stopped on `1 << ceil(log2(inf))` in the bench's flood)."""
    heavy = Load(SHARE_RUNS * 100)
    rates = RateController().update({"flows": heavy, "stack": heavy, "latency": Load(SHARE_RUNS * 200)})
    assert {p: r.scale for p, r in rates.items()} == dict.fromkeys(("flows", "stack", "latency"), MAX_SCALE)
    assert required_scale(heavy, 0.0) == required_scale(heavy, -0.5) == MAX_SCALE


def test_rates_rise_at_once_and_come_down_a_step_at_a_time() -> None:
    c = RateController()
    flood = {"flows": Load(2 * SHARE_RUNS)}  # its hooks' dispatch fits: attached all the time
    high = c.update(flood)["flows"].n
    assert high >= 4 and c.rates["flows"].scale == 1
    quiet = {"flows": Load(100.0)}
    assert c.update(quiet)["flows"].n == high // 2  # one step down per interval
    assert c.update(quiet)["flows"].n == high // 4
    assert c.update(flood)["flows"].n == high  # back up at once
    assert c.update({}) == {}  # a probe no longer attached has no rate


def test_a_flood_beginning_mid_interval_raises_the_watched_probes_scale_at_once() -> None:
    """The onset watch (netscope/sources/probe_set.py): a probe on all the interval whose load now
    needs a duty cycle gets the scale at once, its n kept; a probe not watched (mid-window) keeps
    its rate, and one whose load fits gets nothing. Forced rates never move."""
    c = RateController()
    c.update({"napi": Load(100.0), "flows": Load(100.0)})
    c.rates["napi"] = Rate(2, 1)
    flood = {"napi": Load(SHARE_RUNS * 3), "flows": Load(SHARE_RUNS * 3)}
    assert c.onset(flood, ["napi"]) == {"napi": Rate(2, 4)}
    assert c.rates["napi"] == Rate(2, 1)  # proposed only
    c.raised("napi", Rate(2, 4))
    assert c.rates["napi"] == Rate(2, 4) and c.rates["flows"] == Rate(1, 1)
    assert c.onset(flood, ["napi"]) == {}  # already there
    assert c.onset({"flows": Load(100.0)}, ["flows"]) == {}
    assert RateController(forced=Rate(10)).onset(flood, ["napi", "flows"]) == {}


def test_runs_per_second_count_only_the_time_the_hooks_were_on() -> None:
    assert Runs(fires=1000, coverage=0.25).per_s(2.0) == 2000.0
    assert Runs(fires=1000).per_s(2.0) == 500.0
    assert Runs(fires=1000, coverage=0.0).per_s(1.0) == Runs(fires=5).per_s(0.0) == 0.0


def test_forced_rate() -> None:
    assert RateController(forced=Rate(100)).update({"flows": Load(5.0), "napi": Load(1e9)}) == {
        "flows": Rate(100),
        "napi": Rate(100),
    }


def test_a_measurement_corrects_the_price_that_weighed_most() -> None:
    c = RateController()
    default = DEFAULT_COSTS["flows"]
    # At rate 1 the sampled run is what was measured: twice the default price.
    c.measured({"flows": 2 * default.sampled_ns}, 0.0, {"flows": 1})
    assert c.cost("flows").sampled_ns == 2 * default.sampled_ns and c.cost("flows").run_ns == default.run_ns
    # At a high rate the plain run is.
    c = RateController()
    per_run = 3 * default.run_ns + (default.sampled_ns - default.run_ns) / 1024
    c.measured({"flows": per_run}, 0.0, {"flows": 1024})
    assert round(c.cost("flows").run_ns, 6) == 3 * default.run_ns
    assert c.cost("flows").sampled_ns == default.sampled_ns


def test_the_exact_hooks_come_off_the_budget_first_but_leave_a_third() -> None:
    loads = {"flows": Load(2 * SHARE_RUNS)}
    free, busy, storm = RateController(), RateController(), RateController()
    free.measured({}, 0.0, {})
    busy.measured({}, BUDGET_NS / 2, {})
    storm.measured({}, 10 * BUDGET_NS, {})
    n_free, n_busy, n_storm = (c.update(loads)["flows"].n for c in (free, busy, storm))
    assert n_free < n_busy < n_storm < MAX_RATE
