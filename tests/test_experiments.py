"""Runners + store together, on scikit-learn's real digits (CPU, seconds): idempotence, resume, locking, exact pruning."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


def _child(script: str, store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARSITY_LAB_RESULTS": str(store), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=env,
                          capture_output=True, text=True, timeout=300)


RUN_SCRIPT = """
    import json, os, signal, sys
    from sparsity_lab import experiments
    from sparsity_lab.config.configs import config_from_dict
    from sparsity_lab.engine.trainer import MaskedTrainer
    cfg = config_from_dict(json.loads(sys.argv[1]))
    kill_at = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    calls = {"n": 0}
    original = MaskedTrainer.train_epoch
    def counting(self):
        calls["n"] += 1
        if calls["n"] == kill_at:   # mid-iteration: after the first epoch of a later iteration
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self)
    MaskedTrainer.train_epoch = counting
    result = experiments.run(cfg, device="cpu", progress=False)
    trained = experiments.ResultsStore().summary(result.run_id)["summary"]["trained_now"]
    print("REUSED" if result.reused else "TRAINED", trained)
"""


def test_sigkill_mid_iteration_then_resume_gives_identical_records(tmp_path):
    cfg = tiny(method="sap")
    payload = json.dumps(cfg.to_dict())
    killed = _child(RUN_SCRIPT, tmp_path / "a", payload, "6")  # 2 epochs/iteration: dies inside iteration 2
    assert killed.returncode == -9, killed.stderr
    store_a = ResultsStore(tmp_path / "a")
    assert store_a.completed_steps(cfg.run_id) == [0, 1]
    resumed = _child(RUN_SCRIPT, tmp_path / "a", payload)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["TRAINED", "2"]  # only iterations 2 and 3 were trained again
    # the uninterrupted reference runs in this process: one interpreter start-up fewer, the same records
    fresh = experiments.run(cfg, store=ResultsStore(tmp_path / "b"), device="cpu", progress=False)
    assert not fresh.reused
    pd.testing.assert_frame_equal(_comparable(store_a.records(cfg.run_id)),
                                  _comparable(ResultsStore(tmp_path / "b").records(cfg.run_id)))


def test_two_processes_on_one_config_train_once(tmp_path):
    cfg = tiny(method="lt", iterations=2)
    env = {**os.environ, "SPARSITY_LAB_RESULTS": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-c", textwrap.dedent(RUN_SCRIPT), json.dumps(cfg.to_dict())]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    verdicts = sorted(o[0].split()[0] for o in outputs)
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
