"""Tests of the results store: atomic steps, corruption detection, contiguous prefix, locks, queries."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_store_fakes import FakeConfig, FakeTrain, fake_run, make_records, make_tensors

from sparsity_lab.store import ResultsStore, StoreError, list_runs, load_results
from sparsity_lab.store import run_files as run_files_module
from sparsity_lab.store.atomic import file_digest


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return ResultsStore(tmp_path / "results")


def _stored(store: ResultsStore, config: FakeConfig, n: int) -> str:
    store.prepare(config)
    for step in range(n):
        store.save_step(config.run_id, step, make_records(step), make_tensors(step))
    return config.run_id


# ---------------------------------------------------------------- root, prepare, round trip
def test_root_from_argument_env_and_default(tmp_path, monkeypatch):
    assert ResultsStore(tmp_path / "a").root == (tmp_path / "a").absolute()
    monkeypatch.setenv("SPARSITY_LAB_RESULTS", str(tmp_path / "env"))
    assert ResultsStore().root == (tmp_path / "env").absolute()
    monkeypatch.delenv("SPARSITY_LAB_RESULTS")
    monkeypatch.chdir(tmp_path)  # the checkout's results/, whatever the working directory (_roots.py)
    assert ResultsStore().root == Path(__file__).resolve().parents[1] / "results"


def test_run_ids_cannot_escape_the_root(store):
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(StoreError, match="invalid run id"):
            store.run_dir(bad)


def test_prepare_writes_config_and_detects_a_different_config(store):
    config = FakeConfig(method="lt", train=FakeTrain(epochs=3))
    run_dir = store.prepare(config)
    doc = json.loads((run_dir / "config.json").read_text())
    assert doc["run_id"] == config.run_id == run_dir.name
    assert doc["config"] == config.to_dict() and doc["kind"] == "fake"
    assert set(doc["code_version"]) == {"sparsity_lab", "git", "dirty"}
    assert store.config(config.run_id) == config.to_dict()
    store.prepare(config)  # same config again: fine

    class Impostor(FakeConfig):
        @property
        def run_id(self) -> str:
            return config.run_id

    with pytest.raises(StoreError, match="different config"):
        store.prepare(Impostor(method="sap"))


def test_step_round_trip_and_manifest_checksums(store):
    run_id = _stored(store, FakeConfig(), 3)
    assert store.completed_steps(run_id) == [0, 1, 2]
    for step in range(3):
        loaded = store.load_step_tensors(run_id, step)
        for key, value in make_tensors(step).items():
            assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value)
    recs = store.records(run_id)
    expected = pd.concat([make_records(s) for s in range(3)], ignore_index=True)
    pd.testing.assert_frame_equal(recs.drop(columns="run_id"), expected, check_dtype=False)
    assert (recs["run_id"] == run_id).all()
    files = json.loads((store.run_dir(run_id) / "manifest.json").read_text())["files"]
    written = {p.relative_to(store.run_dir(run_id)).as_posix() for p in store.run_dir(run_id).rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert written == set(files)  # every written file is listed ...
    for rel, entry in files.items():  # ... with its true sha256 and size
        assert file_digest(store.run_dir(run_id) / rel) == (entry["sha256"], entry["size"])


def test_step_without_tensors_and_record_columns_are_checked(store):
    run_id = FakeConfig().run_id
    with pytest.raises(StoreError, match="not prepared"):
        store.save_step(run_id, 0, make_records(0))
    store.prepare(FakeConfig())
    store.save_step(run_id, 0, make_records(0))
    assert store.load_step_tensors(run_id, 0) == {}
    with pytest.raises(StoreError, match=r"lack the columns \['value'\]"):
        store.save_step(run_id, 1, make_records(1).drop(columns="value"))
    with pytest.raises(StoreError, match="gap"):
        store.save_step(run_id, 2, make_records(2))


def test_resaving_a_step_discards_it_and_later_steps(store, caplog):
    run_id = _stored(store, FakeConfig(), 3)
    store.mark_complete(run_id, {})
    store.save_step(run_id, 1, make_records(1, accuracy=0.5))
    assert "discards stored steps 1..2" in caplog.text
    assert store.completed_steps(run_id) == [0, 1] and not store.is_complete(run_id)
    assert store.records(run_id).query("metric == 'accuracy'")["value"].tolist() == [0.9, 0.5]


# ---------------------------------------------------------------- atomicity
def test_crash_before_rename_leaves_no_visible_step(store, monkeypatch):
    run_id = _stored(store, FakeConfig(), 1)

    def crash(tmp, final):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(run_files_module, "_publish_dir", crash)
    with pytest.raises(OSError, match="simulated"):
        store.save_step(run_id, 1, make_records(1), make_tensors(1))
    assert sorted(p.name for p in (store.run_dir(run_id) / "steps").iterdir()) == ["0000"]
    assert store.completed_steps(run_id) == [0]


def test_killed_process_leftovers_are_invisible_and_cleaned(store):
    """A hard kill (no except clause runs) leaves only a .tmp- directory; readers never see it."""
    run_id = _stored(store, FakeConfig(), 1)
    leftover = store.run_dir(run_id) / ".tmp-step-0001-deadbeef"
    leftover.mkdir()
    (leftover / "records.parquet").write_bytes(b"PAR1 half written")
    assert store.completed_steps(run_id) == [0]
    assert not leftover.exists()
    assert len(store.records(run_id)) == len(make_records(0))


def test_crash_between_rename_and_manifest_update_drops_the_step(store, monkeypatch, caplog):
    run_id = _stored(store, FakeConfig(), 1)
    real_update = store._update_manifest

    def crash(run, add, **kw):
        if any(rel.startswith("steps/0001/") for rel in add):
            raise KeyboardInterrupt
        return real_update(run, add, **kw)

    monkeypatch.setattr(store, "_update_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save_step(run_id, 1, make_records(1), make_tensors(1))
    assert (store.run_dir(run_id) / "steps" / "0001").is_dir()  # renamed but unrecorded
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING):
        assert store.completed_steps(run_id) == [0]
    assert "steps/0001/records.parquet: not recorded in manifest.json" in caplog.text
    assert not (store.run_dir(run_id) / "steps" / "0001").exists()


def test_crash_while_writing_the_manifest_keeps_the_old_one(store, monkeypatch):
    run_id = _stored(store, FakeConfig(), 1)
    manifest = store.run_dir(run_id) / "manifest.json"
    before = manifest.read_bytes()

    def crash(src, dst):
        raise OSError("simulated crash in os.replace")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store._update_manifest(run_id, {"x": {"sha256": "0", "size": 0}})
    monkeypatch.undo()
    assert manifest.read_bytes() == before
    assert [p.name for p in manifest.parent.iterdir() if p.name.startswith(".tmp-")] == []


# ---------------------------------------------------------------- corruption and the contiguous prefix
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("filename", ["records.parquet", "tensors.safetensors"])
@pytest.mark.parametrize("damage", [_truncate, _flip, Path.unlink], ids=["truncate", "flip", "delete"])
def test_damaged_step_and_later_steps_are_dropped(store, caplog, filename, damage):
    config = FakeConfig(steps=4)
    run_id = _stored(store, config, 4)
    store.mark_complete(run_id, {"final_accuracy": 0.9})
    damage(store.run_dir(run_id) / "steps" / "0001" / filename)
    store2 = ResultsStore(store.root)  # a fresh process: no cached digests
    with caplog.at_level(logging.WARNING):
        assert store2.completed_steps(run_id) == [0]
    assert f"steps/0001/{filename}" in caplog.text
    assert sorted(p.name for p in (store.run_dir(run_id) / "steps").iterdir()) == ["0000"]
    assert store2.status(run_id) == "partial"  # COMPLETE withdrawn: the run will be finished again
    assert fake_run(config, store2) == "done"
    assert store2.completed_steps(run_id) == [0, 1, 2, 3]


def test_damage_is_found_even_with_unchanged_size_and_mtime_in_a_fresh_store(store):
    run_id = _stored(store, FakeConfig(), 2)
    path = store.run_dir(run_id) / "steps" / "0000" / "records.parquet"
    st = path.stat()
    _flip(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ResultsStore(store.root).completed_steps(run_id) == []


def test_gap_in_steps_keeps_only_the_contiguous_prefix(store):
    run_id = _stored(store, FakeConfig(), 4)
    run_files_module.atomic.remove_tree(store.run_dir(run_id) / "steps" / "0002")
    assert store.completed_steps(run_id) == [0, 1]
    assert sorted(p.name for p in (store.run_dir(run_id) / "steps").iterdir()) == ["0000", "0001"]


def test_extra_unrecorded_file_invalidates_the_step(store):
    run_id = _stored(store, FakeConfig(), 2)
    (store.run_dir(run_id) / "steps" / "0001" / "stray.bin").write_bytes(b"x")
    assert store.completed_steps(run_id) == [0]


def test_corrupted_files_are_never_read(store, caplog):
    run_id = _stored(store, FakeConfig(), 3)
    _flip(store.run_dir(run_id) / "steps" / "0002" / "tensors.safetensors")
    with pytest.raises(StoreError, match="steps/0002/tensors.safetensors does not match"):
        store.load_step_tensors(run_id, 2)
    _flip(store.run_dir(run_id) / "steps" / "0001" / "records.parquet")
    recs = ResultsStore(store.root).records(run_id)  # reading does not repair, it skips
    assert recs["iteration"].unique().tolist() == [0]
    assert "records of step 1 and later are not read" in caplog.text


def test_unreadable_manifest_means_nothing_is_trusted(store):
    run_id = _stored(store, FakeConfig(), 2)
    (store.run_dir(run_id) / "manifest.json").write_text("{not json")
    assert store.completed_steps(run_id) == []


# ---------------------------------------------------------------- artifacts, completion, status
def test_artifacts_round_trip_and_corruption(store, caplog):
    run_id = FakeConfig().run_id
    store.prepare(FakeConfig())
    assert store.load_artifact(run_id, "theta0") is None
    theta = {"fc.weight": torch.randn(3, 2), "fc.bias": torch.zeros(3)}
    store.save_artifact(run_id, "theta0", theta)
    loaded = store.load_artifact(run_id, "theta0")
    assert all(torch.equal(loaded[k], v) for k, v in theta.items())
    _flip(store.run_dir(run_id) / "artifacts" / "theta0.safetensors")
    assert store.load_artifact(run_id, "theta0") is None
    assert "artifacts/theta0.safetensors does not match" in caplog.text


def test_status_and_completion(store):
    config = FakeConfig()
    assert store.status(config.run_id) == "missing"
    _stored(store, config, 2)
    assert store.status(config.run_id) == "partial" and not store.is_complete(config.run_id)
    with store.lock(config.run_id):
        assert store.status(config.run_id) == "running"
        with store.lock(config.run_id):  # re-entrant
            pass
        assert ResultsStore(store.root).status(config.run_id) == "running"  # another holder sees it
    store.mark_complete(config.run_id, {"final_accuracy": torch.tensor(0.75), "curve": (1, 2)})
    assert store.status(config.run_id) == "complete" and store.is_complete(config.run_id)
    summary = store.summary(config.run_id)
    assert summary["steps"] == 2 and summary["summary"] == {"final_accuracy": 0.75, "curve": [1, 2]}


def _child_runs(root: str, started, release) -> None:
    store = ResultsStore(root)
    config = FakeConfig(steps=2)
    store.prepare(config)
    with store.lock(config.run_id):
        started.set()
        release.wait(30)
        fake_run(config, store)


def test_second_process_waits_for_the_lock_then_reuses(store, caplog):
    ctx = mp.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_child_runs, args=(str(store.root), started, release))
    child.start()
    try:
        assert started.wait(60), "child never took the lock"
        run_id = FakeConfig(steps=2).run_id
        assert store.status(run_id) == "running"
        with pytest.raises(TimeoutError):
            with store.lock(run_id, timeout=0.2):
                pass
        release.set()
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="sparsity_lab.store"):
            assert fake_run(FakeConfig(steps=2), store) == "reused"
        assert f"waiting for run {run_id} held by another process" in caplog.text
        assert time.monotonic() - t0 < 60
        assert store.completed_steps(run_id) == [0, 1]
    finally:
        release.set()
        child.join(60)
    assert child.exitcode == 0


# ---------------------------------------------------------------- list_runs and load_results
@pytest.fixture
def populated(store) -> ResultsStore:
    fake_run(FakeConfig(method="sap", p=0.5, seed=0), store, accuracy=0.91)
    fake_run(FakeConfig(method="sap", p=1.0, seed=1), store, accuracy=0.92)
    fake_run(FakeConfig(method="lt", seed=0, train=FakeTrain(epochs=5)), store, accuracy=0.93)
    _stored(store, FakeConfig(method="lt", seed=7), 1)  # partial
    return store


def test_list_runs(populated):
    runs = list_runs(populated)
    assert len(runs) == 4 and runs["run_id"].is_unique
    assert list(runs.columns[:6]) == ["run_id", "kind", "status", "steps", "size_bytes", "created"]
    by_seed = runs.set_index("seed")
    assert by_seed.loc[7, "status"] == "partial" and by_seed.loc[7, "steps"] == 1
    assert (runs.query("status == 'complete'")["steps"] == 3).all()
    assert (runs["size_bytes"] > 0).all() and set(runs["method"]) == {"sap", "lt"}
    assert "train_epochs" in runs.columns
    pd.testing.assert_frame_equal(list_runs(populated.root), runs)


def test_load_results_filters_and_flattens(populated):
    sap = load_results(store=populated, method="sap")
    assert set(sap["config_p"]) == {0.5, 1.0} and sap["run_id"].nunique() == 2
    assert {"p", "q", "scope"} <= set(sap.columns)  # the records' own PQI exponents and scope stay
    assert set(sap.query("metric == 'pqi'")["p"]) == {0.5}
    assert len(sap) == 2 * 3 * len(make_records(0))
    one = load_results(store=populated, method="sap", p=1.0)
    assert one.query("metric == 'accuracy'")["value"].tolist() == [0.92] * 3
    dotted = load_results(store=populated, **{"train.epochs": 5})
    assert dotted["run_id"].nunique() == 1 and set(dotted["train_epochs"]) == {5}
    assert set(dotted["method"]) == {"lt"}
    assert load_results(store=populated, train_epochs=[1, 5])["run_id"].nunique() == 3
    assert load_results(store=populated, seed=[0, 7])["run_id"].nunique() == 2  # partial excluded
    assert load_results(store=populated, seed=[0, 7], include_partial=True)["run_id"].nunique() == 3
    assert load_results(store=populated, status=None)["run_id"].nunique() == 4
    ids = sorted(list_runs(populated).query("method == 'sap'")["run_id"])
    assert sorted(load_results(store=populated, run_id=ids)["run_id"].unique()) == ids
    assert load_results(store=populated, kind="other").empty
    assert load_results(store=populated, method="random").empty
    with pytest.raises(ValueError, match="no stored run has the config field"):
        load_results(store=populated, nonsense=1)


def test_load_results_on_an_empty_store(tmp_path):
    frame = load_results(store=tmp_path / "nothing")
    assert frame.empty and {"run_id", "metric", "value"} <= set(frame.columns)
