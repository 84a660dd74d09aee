"""Seed groups (issue #4): the seeds of one config trained together by the batched engine, on scikit-learn's
digits (CPU, seconds). The group's stored records must equal separate runs' (docs/methods.md §3): masks, remaining
fractions and counts exactly; accuracies, losses and sparsity measures within 1e-4 (the batched engine sums
in another order: weights differ by ~1e-8)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from sparsity_lab import experiments
from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.batched import BatchedTrainer
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.experiments import seed_group
from sparsity_lab.experiments.iterative import IterativeRun
from sparsity_lab.experiments.seed_group import (
    batch_blockers,
    check_seed_group,
    forms_seed_group,
    run_seed_group,
    should_batch,
)
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep import runner as sweep

SEEDS = (0, 1, 2)
T = 2
BASE = IterativeConfig(dataset="digits", model="mlp", iterations=T, pq_grid=False,
                       train=TrainSettings(epochs=1, batch_size=128))
KEYS = ["iteration", "stage", "metric", "scope", "group", "p", "q"]
EXACT = {"remaining", "compression", "speedup", "kept", "pruned_count"}  # functions of the masks alone
TOL = 1e-4


def group(method: str, seeds=SEEDS, **overrides) -> list[IterativeConfig]:
    return [config_with(BASE, method=method, seed=s, **overrides) for s in seeds]


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded kernels: faster on a busy 2-core machine, and deterministic sums."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def engine_sizes(monkeypatch):
    """Spy: the member count of every BatchedTrainer built."""
    sizes: list[int] = []
    real_init = BatchedTrainer.__init__

    def spying_init(self, models, *args, **kwargs):
        sizes.append(len(models))
        real_init(self, models, *args, **kwargs)

    monkeypatch.setattr(BatchedTrainer, "__init__", spying_init)
    return sizes


@pytest.fixture(scope="module")
def separate(tmp_path_factory):
    """Records of separate runs (experiments.run, one seed at a time), computed once per method."""
    store = ResultsStore(tmp_path_factory.mktemp("separate"))
    cache: dict[str, list[pd.DataFrame]] = {}

    def records(method: str) -> list[pd.DataFrame]:
        if method not in cache:
            torch.set_num_threads(1)
            cache[method] = [experiments.run(c, store=store, device="cpu", progress=False).records
                             for c in group(method)]
        return cache[method]

    return records


def assert_same_records(batched: pd.DataFrame, alone: pd.DataFrame) -> None:
    """Same rows; mask-determined metrics exactly equal, the rest within TOL."""
    a = batched[batched.metric != "wall_time"].drop(columns="run_id")
    b = alone[alone.metric != "wall_time"].drop(columns="run_id")
    assert len(a) == len(b) and not a.duplicated(KEYS).any()
    both = a.merge(b, on=KEYS, how="outer", suffixes=("_batched", "_alone"), indicator=True)
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"]
    exact = both.metric.isin(EXACT)
    assert exact.sum() > 0 and (both.value_batched[exact] == both.value_alone[exact]).all(), \
        both[exact & (both.value_batched != both.value_alone)]
    diff = (both.value_batched - both.value_alone).abs()
    assert diff.max() < TOL, both.loc[diff.idxmax()]
    assert set(both.metric) >= {"accuracy", "loss", "remaining", "pqi", "gini", "kept", "pruned_count"}


def stored_masks(store: ResultsStore, run_id: str) -> list[dict[str, torch.Tensor]]:
    return [store.load_step_tensors(run_id, s) for s in store.completed_steps(run_id)]


# ---------------------------------------------------------------- batched == separate
@pytest.mark.parametrize("method", ["sap", "lt"])
def test_batched_group_records_equal_separate_runs(trainings, tmp_path, separate, engine_sizes, method):
    store = ResultsStore(tmp_path)
    before = trainings()
    results = run_seed_group(group(method), store=store, device="cpu", progress=False)
    assert engine_sizes == [len(SEEDS)] * (T + 1)  # every iteration trained all seeds in one engine
    assert trainings() - before == len(SEEDS) * (T + 1)
    assert [r.run_id for r in results] == [c.run_id for c in group(method)]
    assert not any(r.reused for r in results)
    for config, result, alone in zip(group(method), results, separate(method)):
        assert store.is_complete(config.run_id) and store.completed_steps(config.run_id) == list(range(T + 1))
        assert_same_records(result.records, alone)
        assert_same_records(store.records(config.run_id), alone)
    final = "metric == 'remaining' and scope == 'model' and stage == 'retrained' and iteration == @T"
    remaining = [r.records.query(final).value.item() for r in results]
    assert all(0 < x < 1 for x in remaining)  # the runs did prune


def test_group_masks_equal_separate_masks_and_rerun_reuses(tmp_path, tmp_path_factory, engine_sizes):
    configs = group("lt")
    store, alone = ResultsStore(tmp_path), ResultsStore(tmp_path_factory.mktemp("alone"))
    run_seed_group(configs, store=store, device="cpu", progress=False)
    for c in configs:
        experiments.run(c, store=alone, device="cpu", progress=False)
        for mine, theirs in zip(stored_masks(store, c.run_id), stored_masks(alone, c.run_id), strict=True):
            assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    engine_sizes.clear()
    again = run_seed_group(configs + configs[:1], store=store, device="cpu", progress=False)
    assert [r.reused for r in again] == [True] * 4 and engine_sizes == []
    assert again[0].run_id == again[3].run_id


# ---------------------------------------------------------------- partial groups
def test_complete_member_is_reused_and_only_the_others_train(trainings, tmp_path, separate, engine_sizes):
    store = ResultsStore(tmp_path)
    configs = group("sap")
    experiments.run(configs[1], store=store, device="cpu", progress=False)
    engine_sizes.clear()
    before = trainings()
    results = run_seed_group(configs, store=store, device="cpu", progress=False)
    assert [r.reused for r in results] == [False, True, False]
    assert trainings() - before == 2 * (T + 1)
    assert engine_sizes == [2] * (T + 1)
    for result, alone in zip(results, separate("sap")):
        assert_same_records(result.records, alone)


def test_interrupted_group_resumes_where_each_member_stopped(trainings, tmp_path, separate, engine_sizes, monkeypatch):
    store = ResultsStore(tmp_path)
    configs = group("sap")
    real_finish = IterativeRun.finish_iteration
    calls = {"n": 0}

    def crashing_finish(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # iteration 0 of all three stored, iteration 1 of the first member only
            raise RuntimeError("simulated crash")
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(IterativeRun, "finish_iteration", crashing_finish)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_seed_group(configs, store=store, device="cpu", progress=False)
    monkeypatch.setattr(IterativeRun, "finish_iteration", real_finish)
    first, *others = sorted(configs, key=lambda c: c.run_id)  # members are locked and handled in run-id order
    assert store.completed_steps(first.run_id) == [0, 1]
    assert all(store.completed_steps(c.run_id) == [0] for c in others)
    assert all(store.status(c.run_id) == "partial" for c in configs)  # not complete, locks released
    engine_sizes.clear()
    before = trainings()
    results = run_seed_group(configs, store=store, device="cpu", progress=False)
    assert trainings() - before == 1 + 2 * 2  # only the missing iterations
    assert engine_sizes == [2, 3]  # t = 1: the two laggards together; t = 2: all three
    for result, alone in zip(results, separate("sap")):
        assert not result.reused
        assert_same_records(result.records, alone)


def test_member_locked_by_another_process_runs_alone_afterwards(tmp_path, engine_sizes, monkeypatch):
    store, other = ResultsStore(tmp_path), ResultsStore(tmp_path)  # two store objects: two lock holders
    configs = group("lt", iterations=1)
    held = other.lock(configs[2].run_id)
    held.__enter__()
    alone = []
    real_run = seed_group.run

    def run_after_release(config, **kwargs):
        alone.append(config.run_id)
        held.__exit__(None, None, None)  # the other process finishes and lets go
        return real_run(config, **kwargs)

    monkeypatch.setattr(seed_group, "run", run_after_release)
    results = run_seed_group(configs, store=store, device="cpu", progress=False)
    assert engine_sizes == [2, 2] and alone == [configs[2].run_id]
    assert all(store.is_complete(c.run_id) for c in configs) and not any(r.reused for r in results)


# ---------------------------------------------------------------- validation, fallback, policy
def test_group_must_differ_only_in_seed():
    with pytest.raises(ValueError, match="differ only in seed"):
        check_seed_group([config_with(BASE, seed=0), config_with(BASE, seed=1, p=0.25)])
    with pytest.raises(ValueError, match="IterativeConfig"):
        check_seed_group([BASE, SimpleNamespace(seed=1)])
    with pytest.raises(ValueError, match="at least one"):
        check_seed_group([])
    assert [c.seed for c in check_seed_group(group("sap") + group("sap")[:1])] == list(SEEDS)


def test_unbatchable_groups_run_seed_by_seed(tmp_path, engine_sizes):
    configs = group("lt", iterations=1, rank_weights="best_test")
    assert batch_blockers(configs[0]) and not forms_seed_group(configs)
    results = run_seed_group(configs[:2], store=ResultsStore(tmp_path), device="cpu", progress=False)
    assert engine_sizes == [] and not any(r.reused for r in results)
    for overrides in ({"rewind_epoch": 1, "train.epochs": 2}, {"method": "random_ticket"}, {"train_subset": 500},
                      {"val_size": 100, "rank_weights": "best_val"}):
        assert batch_blockers(config_with(BASE, **overrides)), overrides


def test_should_batch_policy():
    mlp = group("sap")
    cnn = [config_with(c, dataset="synthetic:cifar10", model="cnn") for c in mlp]
    assert should_batch(mlp, "cuda:0") and should_batch(mlp[:2], "cuda")
    assert not should_batch(mlp, "cpu")  # nothing to gain on CPU
    assert not should_batch(cnn, "cuda:0")  # convolutions under vmap become grouped convolutions
    assert not should_batch(mlp[:1], "cuda:0") and not should_batch(mlp[:1] * 3, "cuda:0")  # one seed is no group
    assert not should_batch([mlp[0], config_with(mlp[1], q=2.0)], "cuda:0")
    assert not should_batch(group("sap", rank_weights="best_test"), "cuda:0")
    assert forms_seed_group(cnn)  # batch_seeds=True may still force it


# ---------------------------------------------------------------- run_many
def test_sweep_groups_seeds_by_policy():
    configs = group("sap") + [config_with(BASE, method="lt")] + [config_with(c, model="cnn") for c in group("sap")]
    assert sweep._group_seeds(configs, ["cpu"], "auto") == configs
    assert sweep._group_seeds(configs, ["cuda:0"], False) == configs
    jobs = sweep._group_seeds(configs, ["cuda:0", "cuda:1"], "auto")
    assert jobs == [sweep.SeedGroupJob(tuple(configs[:3])), *configs[3:]]  # mlp batched, cnn not
    forced = sweep._group_seeds(configs, ["cpu"], True)
    assert forced == [sweep.SeedGroupJob(tuple(configs[:3])), configs[3], sweep.SeedGroupJob(tuple(configs[4:]))]
    with pytest.raises(ValueError, match="batch_seeds"):
        sweep.run_many(configs, batch_seeds="yes", devices=["cpu"], progress=False)


def test_run_many_batch_seeds_uses_the_group_runner(tmp_path, engine_sizes, monkeypatch):
    calls = []
    real = seed_group.run_seed_group

    def spy(configs, **kwargs):
        calls.append([c.seed for c in configs])
        return real(configs, **kwargs)

    monkeypatch.setattr(seed_group, "run_seed_group", spy)
    store = ResultsStore(tmp_path)
    pair, single = group("lt", seeds=(3, 4), iterations=1), config_with(BASE, method="sap", iterations=1)
    configs = [pair[0], single, pair[1], pair[0]]
    out = sweep.run_many(configs, devices=["cpu"], store=store, progress=False, batch_seeds=True)
    assert calls == [[3, 4]] and engine_sizes == [2, 2]
    assert [o.run_id for o in out] == [c.run_id for c in configs]
    assert [o.status for o in out] == ["done"] * 4, [o.error for o in out]
    assert all(store.is_complete(c.run_id) for c in configs)
    again = sweep.run_many(configs, devices=["cpu"], store=store, progress=False, batch_seeds=True)
    assert [o.status for o in again] == ["reused"] * 4 and calls == [[3, 4]]
    others = group("lt", seeds=(5, 6), iterations=1)
    sweep.run_many(others, devices=["cpu"], store=store, progress=False)  # "auto" on CPU: seed by seed
    assert calls == [[3, 4]] and all(store.is_complete(c.run_id) for c in others)


def failing_group_runner(configs, *, store, device, progress):
    """Completes the first member for real, then fails: the sweep must report per member."""
    experiments.run(configs[0], store=store, device=device, progress=progress)
    raise RuntimeError("group engine broke")


def test_run_many_reports_a_failed_group_per_member(tmp_path):
    configs = group("lt", seeds=(7, 8), iterations=0)
    out = sweep.run_many(configs, devices=["cpu"], store=tmp_path, progress=False, batch_seeds=True,
                         group_runner=failing_group_runner)
    assert [o.status for o in out] == ["done", "failed"]
    assert out[0].error is None and out[1].error.startswith("RuntimeError: group engine broke")


def fake_group_runner(configs, *, store, device, progress):
    """Stands in for run_seed_group in spawned workers: 'boom' groups raise, others return results."""
    if configs[0].method == "lt":
        raise ValueError("boom group")
    return [SimpleNamespace(run_id=c.run_id, reused=False) for c in configs]


def test_run_many_sends_groups_to_spawned_workers(tmp_path):
    good, bad = group("sap", seeds=(0, 1)), group("lt", seeds=(0, 1))
    out = sweep.run_many(good + bad, devices=["cpu", "cpu"], store=tmp_path, progress=False, batch_seeds=True,
                         group_runner=fake_group_runner)
    assert [o.status for o in out] == ["done", "done", "failed", "failed"]
    assert all("ValueError: boom group" in o.error for o in out[2:])
    assert dataclasses.asdict(out[0])["config"] == dataclasses.asdict(good[0])
