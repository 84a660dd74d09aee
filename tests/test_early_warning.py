"""The PQI early-warning rule (docs/methods.md §6) on synthetic trajectories, online and offline, and as
a stopping option of iterative_pruning."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sparsity_lab.claims.early_warning import evaluate_early_warning, summarise_evaluation
from sparsity_lab.experiments.own_loop import iterative_pruning
from sparsity_lab.measures.early_warning import (
    EarlyWarning,
    PQIMonitor,
    WarningRule,
    early_warning,
    early_warning_from_records,
)

RULE = WarningRule(flag_rise=0.1, stop_rise=0.5, back=1)
KW = {"flag_rise": RULE.flag_rise, "stop_rise": RULE.stop_rise, "back": RULE.back}


def three_phase(T: int = 20) -> np.ndarray:
    """Decrease 0.20 -> 0.10 (t = 0..6), rise by 0.03 a step to 0.34 (t = 6..14), drop to 0.03 (t > 14)."""
    t = np.arange(T + 1, dtype=float)
    y = np.where(t <= 6, 0.20 - 0.1 * t / 6, 0.10 + 0.03 * (t - 6))
    return np.where(t > 14, 0.03, y)


def test_clean_three_phase_curve_flags_at_the_rise_and_stops_before_the_peak() -> None:
    y = three_phase()
    w = early_warning(y, **KW)
    assert w.trough == 6
    assert w.flag == 7  # 0.13 >= 1.1 * 0.10: the first iteration of the rise
    assert w.fired == 8  # 0.16 >= 1.5 * 0.10
    assert w.stop == 7 < 14  # one back, well before the peak (t = 14)
    assert "stop at t=7" in w.reason


def test_a_curve_that_never_rises_gives_no_flag_and_no_stop() -> None:
    y = 0.2 * np.exp(-np.arange(21) / 5)  # keeps decreasing (SAP(0.5,1) at small budgets)
    w = early_warning(y, **KW)
    assert (w.flag, w.stop, w.fired, w.trough) == (None, None, None, 20)
    assert "no compression phase" in w.reason


@pytest.mark.parametrize("seed", range(20))
def test_small_random_fluctuations_raise_no_false_flag(seed: int) -> None:
    rng = np.random.default_rng(seed)
    flat = 0.12 * (1 + rng.uniform(-0.04, 0.04, 31))  # +-4 %: at most 8.3 % above the running minimum
    falling = 0.2 * np.exp(-np.arange(31) / 8) * (1 + rng.uniform(-0.04, 0.04, 31))
    for y in (flat, falling):
        w = early_warning(y, **KW)
        assert w.flag is None and w.stop is None


def test_a_rise_only_above_the_flag_threshold_flags_but_does_not_stop() -> None:
    y = [0.2, 0.15, 0.10, 0.12, 0.13, 0.12]  # +30 % at most
    w = early_warning(y, **KW)
    assert (w.flag, w.stop) == (3, None)


def test_back_zero_stops_where_it_fires_and_stop_never_goes_below_zero() -> None:
    y = three_phase()
    assert early_warning(y, flag_rise=0.1, stop_rise=0.5, back=0).stop == 8
    assert early_warning([0.1, 0.2, 0.3], flag_rise=0.1, stop_rise=0.5, back=5).stop == 0


def test_remaining_is_quoted_in_the_reason() -> None:
    y = three_phase()
    rem = 0.8 ** np.arange(len(y))
    w = early_warning(y, rem, **KW)
    assert f"{rem[7]:.3%}" in w.reason


@pytest.mark.parametrize(("args", "kwargs", "needle"), [
    (([0.2, math.nan, 0.1],), {}, r"pqi\[1\]=nan: must be finite"),
    (([0.2, 0.1, 1.5],), {}, r"pqi\[2\]=1.5"),
    (([0.2, -0.1],), {}, r"pqi\[1\]=-0.1"),
    (([0.2],), {}, "pqi has 1 value"),
    (([],), {}, "pqi has 0 value"),
    (("0.2 0.1",), {}, "must be a sequence"),
    (([0.2, "a"],), {}, r"pqi\[1\]='a': not a number"),
    (([0.2, 0.1, 0.3], [1.0, 0.8]), {}, "remaining has 2 values but pqi has 3"),
    (([0.2, 0.1], [1.0, math.inf]), {}, r"remaining\[1\]=inf"),
    (([0.2, 0.1],), {"flag_rise": 0.0}, "flag_rise=0.0"),
    (([0.2, 0.1],), {"stop_rise": math.nan}, "stop_rise=nan"),
    (([0.2, 0.1],), {"flag_rise": 0.5, "stop_rise": 0.2}, "stop_rise=0.2 < flag_rise=0.5"),
    (([0.2, 0.1],), {"back": -1}, "back=-1"),
    (([0.2, 0.1],), {"back": 1.5}, "back=1.5"),
    (([0.2, 0.1],), {"flag_rise": True}, "flag_rise=True"),
])
def test_bad_input_is_one_value_error_naming_it(args: tuple, kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as err:
        early_warning(*args, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("seed", range(30))
def test_online_monitor_equals_offline_rule_on_every_prefix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.clip(three_phase(25) * (1 + rng.normal(0, 0.15, 26)) if seed % 2 else rng.uniform(0.05, 0.3, 26), 0, 1)
    flag_rise = float(rng.uniform(0.05, 0.3))
    rule = WarningRule(flag_rise=flag_rise, stop_rise=flag_rise + float(rng.uniform(0, 1)), back=int(rng.integers(0, 3)))
    monitor = PQIMonitor(rule)
    for t, v in enumerate(y):
        online = monitor.update(v)
        if t >= 1:
            offline = early_warning(y[: t + 1], flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
            assert online == offline
    assert monitor.result == early_warning(y, flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
    if monitor.stopped:  # the stop is decided at `fired` from PQI(0..fired) alone
        full = early_warning(y, flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
        prefix = early_warning(y[: full.fired + 1], flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
        assert prefix == full


def _records(runs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    rows = []
    for run_id, (pqi, acc, rem) in runs.items():
        for t in range(len(pqi)):
            rows += [{"run_id": run_id, "iteration": t, "stage": "retrained", "metric": "pqi", "scope": "global",
                      "group": "all", "p": 0.5, "q": 1.0, "value": pqi[t]},
                     {"run_id": run_id, "iteration": t, "stage": "retrained", "metric": "pqi", "scope": "global",
                      "group": "all", "p": 1.0, "q": 2.0, "value": 0.99},  # another (p, q): ignored
                     {"run_id": run_id, "iteration": t, "stage": "retrained", "metric": "accuracy", "scope": "model",
                      "group": "all", "p": math.nan, "q": math.nan, "value": acc[t]},
                     {"run_id": run_id, "iteration": t, "stage": "retrained", "metric": "remaining",
                      "scope": "model", "group": "all", "p": math.nan, "q": math.nan, "value": rem[t]},
                     {"run_id": run_id, "iteration": t, "stage": "pruned", "metric": "pqi", "scope": "global",
                      "group": "all", "p": 0.5, "q": 1.0, "value": 0.5}]  # pruned stage: ignored
    return pd.DataFrame(rows)


def test_records_per_run_and_the_evaluation_of_claims_11() -> None:
    y = three_phase()
    rem = 0.8 ** np.arange(21)
    acc_collapse = np.where(np.arange(21) < 11, 0.90, 0.30)  # collapses at t = 11; sparsest within 1 pt: t = 10
    flat = 0.2 * np.exp(-np.arange(21) / 5)
    records = _records({"a": (y, acc_collapse, rem), "b": (flat, np.full(21, 0.9), rem)})
    table = early_warning_from_records(records, RULE)
    assert list(table["run_id"]) == ["a", "b"]
    assert table.set_index("run_id").loc["a", "stop"] == 7 and pd.isna(table.set_index("run_id").loc["b", "stop"])
    ev = evaluate_early_warning(records, RULE).set_index("run_id")
    a, b = ev.loc["a"], ev.loc["b"]
    assert (a["stop_eval"], a["t_collapse"], a["sparsest_ok"]) == (7, 11, 10)
    assert bool(a["c11_1"]) and bool(a["c11_2"]) and bool(a["c11_3"])  # 0.8^7 <= 2 * 0.8^10 = 1.024 * 0.8^7
    assert b["stop_eval"] == 20 and pd.isna(b["c11_1"]) and bool(b["c11_2"]) and bool(b["c11_3"])
    summary = summarise_evaluation(ev.reset_index()).set_index("claim")
    assert summary.loc["11.1", "n"] == 1 and summary.loc["11.2", "n"] == 2 and summary.loc["11.3", "verdict"] == "holds"
    strict = evaluate_early_warning(records, WarningRule(0.1, 0.5, 2)).set_index("run_id")
    assert not strict.loc["a", "c11_3"]  # stop at t = 6 keeps 0.8^6 > 2 * 0.8^10
    with pytest.raises(ValueError, match="lack the column"):
        early_warning_from_records(records.drop(columns="metric"))


# ---------------------------------------------------------------------------------------------------------
# iterative_pruning(stop="pqi_warning")

X = torch.randn(256, 20, generator=torch.Generator().manual_seed(0))
Y = (X[:, :5].sum(1) > 0).long()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))


def _train(model: nn.Module, masks) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks.attach(opt, model)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        opt.step()


def _pqi(records: pd.DataFrame) -> pd.Series:
    rows = records[(records.metric == "pqi") & (records.stage == "retrained") & (records.scope == "global")]
    return rows.set_index("iteration")["value"].sort_index()


def test_iterative_pruning_stops_where_the_offline_rule_says_and_keeps_that_iteration() -> None:
    _, full = iterative_pruning(_model(), _train, rule="sap", iterations=12, p=1.0, q=2.0)
    y = _pqi(full).to_list()
    rule = WarningRule(flag_rise=0.02, stop_rise=0.05, back=1)
    offline = early_warning(y, flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
    assert offline.stop is not None and offline.fired < 12  # the tiny model's PQI rises after its trough
    model = _model()
    masks, records = iterative_pruning(model, _train, rule="sap", iterations=12, stop=rule, p=1.0, q=2.0)
    assert records["iteration"].max() == offline.fired  # trained up to the iteration where the rule fired
    assert _pqi(records).to_list() == pytest.approx(y[: offline.fired + 1])
    assert records.attrs["early_warning"] == offline
    remaining = records[(records.metric == "remaining") & (records.stage == "retrained") & (records.scope == "global")]
    kept = remaining.set_index("iteration")["value"][offline.stop]
    assert masks.remaining_fraction() == pytest.approx(kept)  # the masks of the stop iteration
    params = masks.parameters(model)
    assert all(bool((params[n].detach()[~m] == 0).all()) for n, m in masks.items())
    # and the model holds the weights trained at the stop: its PQI is the recorded one
    from sparsity_lab.measures.sparsity import measure_model
    rec = measure_model(model, masks, scopes=("global",), pq_pairs=((0.5, 1.0),), measures=("pqi",))
    assert [r["value"] for r in rec if r["metric"] == "pqi"][0] == pytest.approx(y[offline.stop])


def test_iterative_pruning_default_has_no_stop_and_named_rule_uses_the_fitted_thresholds() -> None:
    _, plain = iterative_pruning(_model(), _train, rule="lt", iterations=2, fraction=0.2)
    assert plain["iteration"].max() == 2 and "early_warning" not in plain.attrs
    _, named = iterative_pruning(_model(), _train, rule="lt", iterations=2, stop="pqi_warning", fraction=0.2)
    assert isinstance(named.attrs["early_warning"], EarlyWarning)
    assert named.attrs["early_warning"] == early_warning(_pqi(named).to_list())
    with pytest.raises(ValueError, match="stop='pqi'"):
        iterative_pruning(_model(), _train, rule="lt", iterations=2, stop="pqi")
