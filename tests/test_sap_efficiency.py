"""Figure 12 (SAP's efficiency at the paper's ResNet-18 T = 15 setting) and claim 12.1, with its seed spread."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from claims_records import iterative_run

from sparsity_lab.claims import _spread
from sparsity_lab.claims.sap_efficiency import CLAIMS
from sparsity_lab.figures.params import resolve
from sparsity_lab.figures.registry import get_figure

T = 15
SAP05 = {"method": "sap", "p": 0.5, "q": 1.0}
LT = {"method": "lt", "prune_fraction": 0.2}


def _method(acc_at_T: list[float], rate: float, **config) -> pd.DataFrame:
    """One run per seed: accuracy 94 pt until T, then ``acc_at_T[seed]``; remaining ``rate**t``."""
    return pd.concat([iterative_run([94.0] * T + [a], remaining=[rate ** t for t in range(T + 1)], seed=s, **config)
                      for s, a in enumerate(acc_at_T)], ignore_index=True)


def verdict(sap_acc, lt_acc, sap_rate=0.75, lt_rate=0.8):
    records = pd.concat([_method(sap_acc, sap_rate, **SAP05), _method(lt_acc, lt_rate, **LT)], ignore_index=True)
    (v,) = CLAIMS(records)
    return v


def test_holds_when_sap_is_sparser_and_close_and_says_within_noise():
    v = verdict([93.0, 93.6, 94.2], [93.5, 94.1, 94.7])  # gap -0.5 pt, spread 0.6 pt
    assert v.status == "holds", v.reason
    assert v.numbers["acc gap (pt)"] == pytest.approx(-0.5)
    assert v.numbers["acc seed spread (pt)"] == pytest.approx(0.6)
    assert "within noise" in v.reason and "over 3 seeds" in v.reason
    assert v.numbers["SAP remaining at T"] == pytest.approx(0.75 ** T)


def test_fails_when_sap_keeps_more_weights_the_gpu_finding_shape():
    v = verdict([94.0] * 3, [94.0] * 3, sap_rate=0.85, lt_rate=0.8)
    assert v.status == "fails" and "keeps" in v.reason and "x LT's weights" in v.reason


def test_fails_when_accuracy_is_more_than_1_pt_below_lt_and_gap_beyond_spread_is_not_noise():
    v = verdict([92.0, 92.1, 92.2], [93.5, 93.6, 93.7])
    assert v.status == "fails" and "1.50 pt below LT" in v.reason
    assert "within noise" not in v.reason


def test_untestable_without_lt():
    (v,) = CLAIMS(_method([94.0], 0.75, **SAP05))
    assert v.status == "untestable" and "LT" in v.reason


def test_spread_helpers():
    a, b = pd.Series([1.0, 2.0, 3.0]), pd.Series([1.0, 1.0, 1.0])
    assert _spread.comparison_spread(a, b) == pytest.approx(1.0)
    assert math.isnan(_spread.comparison_spread(pd.Series([1.0]), b))
    assert _spread.noise_text(0.5, 1.0, "pt", 3) == "seed spread ±1 pt over 3 seeds, within noise"
    assert _spread.noise_text(1.5, 1.0, "pt", 3) == "seed spread ±1 pt over 3 seeds"
    assert _spread.noise_text(0.5, math.nan, "pt", 1) == "no seed spread (1 seed)"


def test_gpu_profile_is_the_papers_resnet18_protocol_and_quick_reuses_figure_1():
    spec = get_figure("sap_efficiency")
    gpu = resolve(spec.params, "gpu")
    configs = [r.config for r in spec.runs(gpu)]
    assert {(c.model, c.dataset, c.iterations, c.scope) for c in configs} == {("resnet18", "fashionmnist", 15, "global")}
    assert sorted({c.seed for c in configs}) == [0, 1, 2] and len(configs) == 12
    assert {(c.train.optimizer, c.train.lr, c.train.nesterov, c.train.lr_schedule) for c in configs} == {
        ("sgd", 0.1, True, "cosine")}
    for profile in ("smoke", "quick"):
        ours = {r.run_id for r in spec.runs(resolve(spec.params, profile))}
        fig1 = get_figure(1)
        assert ours == {r.run_id for r in fig1.runs(resolve(fig1.params, profile))}, profile


def test_gpu_runs_are_the_ones_the_device_script_trains():
    """benchmarks/gpu_profile/train_issue19.py trains figure 12's gpu runs: same run ids, all three seeds."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_profile" / "train_issue19.py"
    spec_ = importlib.util.spec_from_file_location("train_issue19", script)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    spec = get_figure("sap_efficiency")
    gpu = resolve(spec.params, "gpu")
    trained = {c.run_id for c in module.figure12_configs(gpu.epochs)}
    three_seeds = resolve(spec.params, "gpu", {"seeds": [0, 1, 2]})
    assert {r.run_id for r in spec.runs(three_seeds)} == trained
    assert {r.run_id for r in spec.runs(gpu)} <= trained


def test_figure_1_gpu_seed_2_runs_are_the_device_scripts_seed_2_configs():
    """Figure 1 reads three seeds at gpu; its seed-2 runs are exactly what train_issue19.py's seed2 stage trains."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_profile" / "train_issue19.py"
    spec_ = importlib.util.spec_from_file_location("train_issue19", script)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    fig1 = get_figure(1)
    gpu = resolve(fig1.params, "gpu")
    assert gpu.seeds == [0, 1, 2]
    seed2 = {r.run_id for r in fig1.runs(resolve(fig1.params, "gpu", {"seeds": [2]}))}
    assert seed2 == {c.run_id for c in module.seed2_configs(("01",))}
