"""Tests of sweep.py: grid expansion, sweep files, run_many in-process and over spawned workers."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import time
from types import SimpleNamespace

import pytest
import torch
from test_store_fakes import FakeConfig, fake_run

from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep import runner as sweep
from sparsity_lab.sweep.runner import SweepOutcome, expand_grid, load_sweep_file, run_many, sweep_entries


def fake_runner(config, *, store, device, progress):
    """Stands in for experiments.run: 'boom' raises, 'die' kills its process, 'slow' sleeps first."""
    assert progress is False
    if config.method == "boom":
        raise ValueError(f"boom in {config.run_id}")
    if config.method == "die":
        os._exit(3)
    if config.method == "slow":
        time.sleep(1.0)
    status = fake_run(config, store, accuracy=float(torch.get_num_threads()))
    with open(store.run_dir(config.run_id) / "device.txt", "w") as fh:
        fh.write(device)
    return SimpleNamespace(run_id=config.run_id, reused=status == "reused")


# ---------------------------------------------------------------- grids and sweep files
def test_expand_grid_is_the_cartesian_product_with_nested_dotted_keys():
    base = {"kind": "iterative", "method": "sap", "train": {"lr": 0.1}}
    out = expand_grid(base, {"seed": [0, 1, 2], "train.epochs": [1, 5]})
    assert len(out) == 6
    assert [(d["seed"], d["train"]["epochs"]) for d in out] == [(s, e) for s in (0, 1, 2) for e in (1, 5)]
    assert all(d["train"]["lr"] == 0.1 and d["method"] == "sap" for d in out)
    assert base == {"kind": "iterative", "method": "sap", "train": {"lr": 0.1}}  # not mutated
    assert out[0]["train"] is not out[1]["train"]
    assert expand_grid({"a": 1}, {}) == [{"a": 1}]
    with pytest.raises(ValueError, match=r"grid\['seed'\]"):
        expand_grid({}, {"seed": 3})


def test_sweep_entries_accepts_lists_blocks_and_mixtures():
    block = {"kind": "asni", "base": {"seed": 0}, "grid": {"variant": ["asni1", "asni2"]}}
    assert sweep_entries(block) == [{"seed": 0, "kind": "asni", "variant": "asni1"},
                                    {"seed": 0, "kind": "asni", "variant": "asni2"}]
    assert len(sweep_entries([{"kind": "iterative"}, block])) == 3
    with pytest.raises(ValueError, match="unknown keys"):
        sweep_entries({"base": {}, "grids": {}})


def test_load_sweep_file_yaml_and_json(tmp_path):
    from sparsity_lab.config.configs import ConfigError, IterativeConfig

    yaml_file = tmp_path / "sweep.yaml"
    yaml_file.write_text("kind: iterative\nbase:\n  dataset: digits\n  train.epochs: 2\n"
                         "grid:\n  method: [sap, lt]\n  seed: [0, 1]\n")
    configs = load_sweep_file(yaml_file, validate=False)
    assert len(configs) == 4 and all(isinstance(c, IterativeConfig) for c in configs)
    assert [(c.method, c.seed) for c in configs] == [("sap", 0), ("sap", 1), ("lt", 0), ("lt", 1)]
    assert all(c.train.epochs == 2 and c.dataset == "digits" for c in configs)
    assert len({c.run_id for c in configs}) == 4
    json_file = tmp_path / "sweep.json"
    json_file.write_text(json.dumps([{"kind": "iterative", "dataset": "digits"}, {"kind": "iterative", "scop": "x"}]))
    with pytest.raises(ConfigError, match=r"sweep.json: config 1 .*unknown config field 'scop'"):
        load_sweep_file(json_file, validate=False)


def test_load_sweep_file_validates_before_anything_runs(tmp_path):
    pytest.importorskip("sparsity_lab.rules.prune")
    from sparsity_lab.config.configs import ConfigError

    json_file = tmp_path / "sweep.json"
    json_file.write_text(json.dumps([{"kind": "iterative", "dataset": "digits", "scope": "nowhere"}]))
    with pytest.raises(ConfigError, match="scope='nowhere'"):
        load_sweep_file(json_file)
    assert load_sweep_file(json_file, validate=False)[0].scope == "nowhere"


# ---------------------------------------------------------------- run_many
def test_run_many_in_process_dedups_keeps_order_and_isolates_failures(tmp_path, caplog):
    store = ResultsStore(tmp_path)
    a, b, boom = FakeConfig(seed=1), FakeConfig(seed=2), FakeConfig(method="boom")
    calls = []

    def counting(config, **kw):
        assert kw["store"] is store and kw["device"] == "cpu"
        calls.append(config.run_id)
        return fake_runner(config, **kw)

    out = run_many([a, boom, b, a], devices=["cpu"], store=store, progress=False, runner=counting)
    assert [o.run_id for o in out] == [a.run_id, boom.run_id, b.run_id, a.run_id]
    assert [o.status for o in out] == ["done", "failed", "done", "done"]
    assert sorted(calls) == sorted([a.run_id, b.run_id, boom.run_id])  # the duplicate ran once
    assert out[1].error.startswith("ValueError: boom in") and "fake_runner" in out[1].error
    assert out[3].config is a and all(isinstance(o, SweepOutcome) for o in out)
    assert "1 of 3 runs failed" in caplog.text
    assert store.is_complete(a.run_id) and store.is_complete(b.run_id) and not store.is_complete(boom.run_id)
    calls.clear()
    again = run_many([a, b], store=store, progress=False, runner=counting, devices=["cpu"])
    assert [o.status for o in again] == ["reused", "reused"] and calls == []


def test_run_many_propagates_keyboard_interrupt_in_process(tmp_path):
    def interrupted(config, **kw):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_many([FakeConfig()], devices=["cpu"], store=tmp_path, progress=False, runner=interrupted)


def test_run_many_over_spawned_workers(tmp_path):
    store = ResultsStore(tmp_path)
    good = [FakeConfig(seed=s, steps=2) for s in range(3)]
    configs = [good[0], FakeConfig(method="boom"), good[1], FakeConfig(method="die"), good[2], good[0]]
    out = run_many(configs, devices=["cpu"], workers_per_device=2, store=store, progress=False, runner=fake_runner)
    by_method = {o.config.method: o for o in out}
    assert [o.status for o in out if o.config.method == "sap"] == ["done"] * 4
    assert "ValueError: boom" in by_method["boom"].error
    assert by_method["die"].status == "failed" and "exit code 3" in by_method["die"].error
    assert {o.device for o in out} == {"cpu"}  # the worker's device, also for the run whose worker died
    threads = max(1, (os.cpu_count() or 1) // 2)
    for c in good:
        assert store.is_complete(c.run_id)
        assert (store.run_dir(c.run_id) / "device.txt").read_text() == "cpu"
        assert store.summary(c.run_id)["summary"]["final_accuracy"] == threads  # CPU cores shared fairly
    assert mp.active_children() == []


def test_interrupting_a_sweep_terminates_workers_and_keeps_finished_runs(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    quick, slow = FakeConfig(seed=0), FakeConfig(method="slow", seed=1)
    real_record = sweep._record

    def record_then_interrupt(outcomes, config, *args):
        real_record(outcomes, config, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "_record", record_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_many([quick, slow, FakeConfig(method="slow", seed=2)], devices=["cpu", "cpu"], store=store,
                 progress=False, runner=fake_runner)
    assert mp.active_children() == []
    assert store.is_complete(quick.run_id)
    assert store.status(slow.run_id) in ("missing", "partial")  # killed mid-run: never marked complete


def test_dependency_order_puts_parent_runs_first():
    @dataclasses.dataclass(frozen=True)
    class Child(FakeConfig):
        def dependencies(self):
            return [FakeConfig(seed=self.seed)]

    assert sweep._depth(FakeConfig()) == 0 and sweep._depth(Child()) == 1
    from sparsity_lab.config.configs import AsniConfig, IterativeConfig

    assert sweep._parents(IterativeConfig(method="random_ticket")) == [IterativeConfig(method="lt")]
    assert sweep._parents(AsniConfig(variant="asni2")) == [AsniConfig(variant="asni1")]
    assert sweep._parents(AsniConfig(variant="dense")) == []


def test_run_many_with_the_real_runner_then_load_results(tmp_path):
    """End to end on scikit-learn's digits: a control and its parent, deduplicated, then one tidy frame."""
    pytest.importorskip("sparsity_lab.masks")
    pytest.importorskip("sparsity_lab.rules.prune")
    from sparsity_lab.config.configs import IterativeConfig
    from sparsity_lab.config.fields import config_with
    from sparsity_lab.engine.trainer import TrainSettings
    from sparsity_lab.store import load_results

    base = IterativeConfig(dataset="digits", model="mlp", iterations=1, pq_grid=False,
                           train=TrainSettings(epochs=1, batch_size=256))
    control, parent = config_with(base, method="random_ticket"), config_with(base, method="lt")
    store = ResultsStore(tmp_path)
    out = run_many([control, parent, control], devices=["cpu"], store=store, progress=False)
    assert [o.status for o in out] == ["done", "done", "done"], [o.error for o in out]
    assert [o.run_id for o in out] == [control.run_id, parent.run_id, control.run_id]
    frame = load_results(store=store, method=["lt", "random_ticket"])
    assert set(frame["method"]) == {"lt", "random_ticket"} and set(frame["iteration"]) == {0, 1}
    assert set(frame.groupby("method")["run_id"].nunique()) == {1}
    assert all(o.status == "reused" for o in run_many([control, parent], devices=["cpu"], store=store,
                                                       progress=False))


def env_runner(config, *, store, device, progress):
    """Records the worker's view of $SL_TEST_VALUE (as the run's accuracy) and its working directory."""
    status = fake_run(config, store, accuracy=float(os.environ.get("SL_TEST_VALUE", "-1")))
    (store.run_dir(config.run_id) / "cwd.txt").write_text(os.getcwd())
    return SimpleNamespace(run_id=config.run_id, reused=status == "reused")


@pytest.mark.parametrize("start", ["forkserver", "spawn"])
def test_workers_see_the_parent_environment_and_directory_of_now(tmp_path, monkeypatch, start):
    """Workers forked from a fork server started earlier still get the parent's current environment and
    working directory (worker_start.py), as spawned ones do."""
    from sparsity_lab.sweep import fork_server as worker_start

    monkeypatch.setenv("SPARSITY_LAB_WORKER_START", start)
    assert worker_start.method() == start
    worker_start.warm()  # a fork server starts with the environment of now ...
    monkeypatch.setenv("SL_TEST_VALUE", "7")  # ... which then changes
    monkeypatch.chdir(tmp_path)
    store = ResultsStore("store")  # relative to the new directory
    configs = [FakeConfig(seed=s) for s in range(2)]
    out = run_many(configs, devices=["cpu"], workers_per_device=2, store=store, progress=False, runner=env_runner)
    assert [o.status for o in out] == ["done", "done"]
    for c in configs:
        assert store.summary(c.run_id)["summary"]["final_accuracy"] == 7
        assert (tmp_path / "store" / c.run_id / "cwd.txt").read_text() == str(tmp_path)


def test_a_bad_worker_start_method_is_named(monkeypatch):
    from sparsity_lab.cli import main as cli

    monkeypatch.setenv("SPARSITY_LAB_WORKER_START", "fork")
    with pytest.raises(ValueError, match=r"SPARSITY_LAB_WORKER_START='fork'.*forkserver, spawn"):
        run_many([FakeConfig(), FakeConfig(seed=1)], devices=["cpu"], workers_per_device=2, progress=False,
                 runner=fake_runner)
    assert cli.main(["sweep", "nothing.yaml"]) == 2


@pytest.mark.parametrize("argv, gpus, expected", [
    (["sweep", "f.yaml", "--devices", "cpu"], 0, False),
    (["sweep", "f.yaml", "--devices", "cpu,cpu"], 0, True),
    (["sweep", "f.yaml", "--devices=cuda:0", "--workers-per-device", "2"], 0, True),
    (["sweep", "f.yaml"], 0, False),
    (["sweep", "f.yaml"], 4, True),
    (["sweep", "f.yaml", "--workers-per-device", "x"], 4, False),
])
def test_expects_workers_reads_the_flags_and_the_driver_without_torch(monkeypatch, argv, gpus, expected):
    from sparsity_lab.sweep import fork_server as worker_start

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: [str(i) for i in range(gpus)] if str(p) == "/proc/driver/nvidia/gpus"
                        else real_listdir(p))
    assert worker_start.expects_workers(argv) is expected
    if gpus:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
        assert worker_start.expects_workers(["sweep", "f.yaml"]) is False


def test_the_fork_server_preloads_what_every_worker_imports_and_starts_no_thread() -> None:
    """A run builds a torch optimizer, which imports ``torch._dynamo`` on first use: after the server's imports a
    worker building one imports no more of it, and the preloaded modules leave no Python thread to fork around."""
    import subprocess
    import sys

    code = ("import sys, threading; from sparsity_lab.sweep import fork_server\n"
            "for m in fork_server.PRELOAD: __import__(m)\n"
            "threads, before = threading.active_count(), set(sys.modules)\n"
            "import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)\n"
            "print(threads, len([m for m in set(sys.modules) - before if m.startswith('torch._dynamo')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "0"], out
