"""Runners + store together, on scikit-learn's real digits (CPU, seconds): idempotence, resume, locking, exact pruning."""

from __future__ import annotations

import math
from pathlib import Path

import children
import pandas as pd
import pytest

from sparsity_lab import experiments
from sparsity_lab.config.configs import ConfigError, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.store import ResultsStore

TINY = TrainSettings(epochs=2, batch_size=128)


def tiny(**overrides) -> IterativeConfig:
    base = IterativeConfig(dataset="digits", model="mlp", iterations=3, train=TINY, pq_grid=False)
    return config_with(base, **overrides)


def _comparable(records: pd.DataFrame) -> pd.DataFrame:
    """Records without the timing rows, in a canonical order."""
    keep = records[records.metric != "wall_time"].drop(columns=["run_id"], errors="ignore")
    return keep.sort_values(["iteration", "stage", "metric", "scope", "group", "p", "q"]).reset_index(drop=True)


def _child(cfg: IterativeConfig, store: Path, out: Path, kill_at_epoch: int = -1) -> tuple[int, str]:
    """Run ``cfg`` in a child process on the store ``store`` (tests/children.py): (exit code, what it said)."""
    child = children.start_run(cfg.to_dict(), out, env={"SPARSITY_LAB_RESULTS": str(store)},
                               kill_at_epoch=kill_at_epoch)
    return children.finish(child, out)


def test_sigkill_mid_iteration_then_resume_gives_identical_records(tmp_path):
    cfg = tiny(method="sap")
    code, said = _child(cfg, tmp_path / "a", tmp_path / "killed.txt", kill_at_epoch=6)  # 2 epochs/iteration:
    assert code == -9, said                                                              # dies inside iteration 2
    store_a = ResultsStore(tmp_path / "a")
    assert store_a.completed_steps(cfg.run_id) == [0, 1]
    code, said = _child(cfg, tmp_path / "a", tmp_path / "resumed.txt")
    assert code == 0, said
    assert said.split() == ["TRAINED", "2"]  # only iterations 2 and 3 were trained again
    # the uninterrupted reference runs in this process: the same records
    fresh = experiments.run(cfg, store=ResultsStore(tmp_path / "b"), device="cpu", progress=False)
    assert not fresh.reused
    pd.testing.assert_frame_equal(_comparable(store_a.records(cfg.run_id)),
                                  _comparable(ResultsStore(tmp_path / "b").records(cfg.run_id)))


def test_two_processes_on_one_config_train_once(tmp_path):
    cfg = tiny(method="lt", iterations=2)
    outs = [tmp_path / f"child-{i}.txt" for i in range(2)]
    procs = [children.start_run(cfg.to_dict(), out, env={"SPARSITY_LAB_RESULTS": str(tmp_path)}) for out in outs]
    results = [children.finish(p, out) for p, out in zip(procs, outs)]
    assert all(code == 0 for code, _ in results), results
    verdicts = sorted(said.split()[0] for _, said in results)
    assert verdicts == ["REUSED", "TRAINED"]
    store = ResultsStore(tmp_path)
    assert store.is_complete(cfg.run_id) and store.completed_steps(cfg.run_id) == [0, 1, 2]


def test_rerunning_a_finished_config_does_no_training(trainings, tmp_path):
    store = ResultsStore(tmp_path)
    cfg = tiny(method="oneshot", iterations=1)
    first = experiments.run(cfg, store=store, device="cpu", progress=False)
    before = trainings()
    again = experiments.run(cfg, store=store, device="cpu", progress=False)
    assert not first.reused and again.reused
    assert trainings() == before
    pd.testing.assert_frame_equal(first.records, again.records)


def _counts(records: pd.DataFrame, total: int) -> dict[int, int]:
    rem = records[(records.metric == "remaining") & (records.scope == "model") & (records.stage == "retrained")]
    return {int(r.iteration): round(r.value * total) for r in rem.itertuples()}


def test_sap_prunes_exactly_what_its_recorded_pqi_predicts(tmp_path):
    cfg = tiny(method="sap", p=0.5, q=1.0, iterations=3)
    records = experiments.run(cfg, store=ResultsStore(tmp_path), device="cpu", progress=False).records
    total = 64 * 128 + 128 * 256 + 256 * 10  # digits mlp prunable weights
    counts = _counts(records, total)
    pqi = records[(records.metric == "pqi") & (records.scope == "global") & (records.stage == "retrained")
                  & (records.p == 0.5) & (records.q == 1.0)].set_index("iteration").value
    for t in range(cfg.iterations):
        d = counts[t]
        assert counts[t + 1] == math.ceil(d * (1.0 - pqi[t])), (t, d, pqi[t])  # r_t = ⌈d·(1 − I_{0.5,1})⌉
    assert counts[cfg.iterations] < counts[0]


def test_lottery_ticket_remaining_follows_the_documented_rounding(tmp_path):
    cfg = tiny(method="lt", prune_fraction=0.2, iterations=3)
    records = experiments.run(cfg, store=ResultsStore(tmp_path), device="cpu", progress=False).records
    total = 64 * 128 + 128 * 256 + 256 * 10
    counts = _counts(records, total)
    expected = total
    for t in range(cfg.iterations + 1):
        assert counts[t] == expected
        assert abs(counts[t] / total - 0.8 ** t) < 1e-4  # (1 − P)^t up to the floor of each step
        expected -= math.floor(0.2 * expected)


@pytest.mark.parametrize("overrides", [{"model": "transformer"}, {"p": 1.0, "q": 0.5}, {"train.epochs": 0},
                                       {"beta": 2.0}, {"iterations": -1}, {"method": "magic"}])
def test_bad_configs_fail_before_any_training(trainings, tmp_path, overrides):
    store = ResultsStore(tmp_path)
    before = trainings()
    with pytest.raises(ConfigError):
        experiments.run(tiny(**overrides), store=store, device="cpu", progress=False)
    assert trainings() == before
    assert not any(tmp_path.iterdir())
