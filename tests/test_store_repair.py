"""A store that repairs itself (issue 9 §3): damaged files of a complete run are found (ls, verify, reuse),
named, and exactly the lost steps are recomputed; garbage config.json, orphans and read-only stores.

One real iterative run on digits (T = 2, one epoch per iteration, CPU, ~1 s) is stored once per module and
copied for each case.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from sparsity_lab import experiments
from sparsity_lab.cli import main as cli
from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.store import ResultsStore, list_runs, load_results
from sparsity_lab.store.atomic import atomic_write_json, read_json, sha256_bytes

CFG = IterativeConfig(dataset="digits", model="mlp", iterations=2, train=TrainSettings(epochs=1, batch_size=128),
                      pq_grid=False)
OTHER = config_with(CFG, seed=1)


def comparable(records: pd.DataFrame) -> pd.DataFrame:
    """Records without wall time, in a canonical row order (resumed runs may store rows in another order)."""
    keep = records[records.metric != "wall_time"].drop(columns=["run_id"], errors="ignore")
    return keep.sort_values(["iteration", "stage", "metric", "scope", "group", "p", "q"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("template") / "results"
    store = ResultsStore(root)
    experiments.run(CFG, store=store, device="cpu", progress=False)
    experiments.run(OTHER, store=store, device="cpu", progress=False)
    return root, comparable(store.records(CFG.run_id))


@pytest.fixture
def store(template, tmp_path) -> ResultsStore:
    root = tmp_path / "results"
    shutil.copytree(template[0], root)
    return ResultsStore(root)


# ---------------------------------------------------------------- kinds of damage
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def zero_fill(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


class Planted:
    """Unpickling this would create a file: proof that no pickle is ever executed."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_in_place(path: Path) -> None:
    Planted.marker = str(path.parent / "PWNED")
    path.write_bytes(pickle.dumps({"mask.fc1.weight": Planted()}))


def garbage(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00garbage\x81")


def delete(path: Path) -> None:
    path.unlink()


def not_safetensors_with_matching_checksum(path: Path) -> None:
    """Garbage whose sha256 and size are recorded in manifest.json (checksums alone cannot catch it)."""
    data = b"\xff" * 64
    path.write_bytes(data)
    manifest = path.parents[2] / "manifest.json"
    doc = read_json(manifest)
    doc["files"]["steps/0001/tensors.safetensors"] = {"sha256": sha256_bytes(data), "size": len(data)}
    atomic_write_json(manifest, doc)


# (file, damage, problem text, iterations retrained: the lost steps)
CASES: list[tuple[str, Callable[[Path], None], str, int]] = [
    ("steps/0001/records.parquet", truncate, "size", 2),
    ("steps/0002/tensors.safetensors", flip, "sha256", 1),
    ("steps/0000/records.parquet", zero_fill, "sha256", 3),
    ("steps/0001/tensors.safetensors", pickle_in_place, "size", 2),
    ("steps/0001/tensors.safetensors", not_safetensors_with_matching_checksum, "not a safetensors file", 2),
    ("manifest.json", delete, "missing", 3),
    ("manifest.json", zero_fill, "unreadable", 3),
    ("artifacts/final.safetensors", flip, "sha256", 1),  # saved with the last step: only it is recomputed
    # (a complete iterative run keeps no `init`: θ₀ is rebuilt from the seed; tests/test_store_packed.py)
    ("COMPLETE", garbage, "size", 0),
    ("config.json", garbage, "not valid JSON", 0),
    ("config.json", delete, "missing", 0),
]


@pytest.mark.parametrize(("rel", "damage", "reason", "lost"), CASES,
                         ids=[f"{c[1].__name__}-{c[0]}" for c in CASES])
def test_damaged_complete_run_is_flagged_then_recomputes_only_the_lost_steps(trainings, store, template, capsys, caplog, rel,
                                                                             damage, reason, lost):
    run_id = CFG.run_id
    damage(store.run_dir(run_id) / rel)
    fresh = ResultsStore(store.root)  # a new process: no cached digests
    assert fresh.status(run_id) == "damaged" and not fresh.is_complete(run_id)
    runs = list_runs(fresh).set_index("run_id")
    assert runs.loc[run_id, "status"] == "damaged" and rel in runs.loc[run_id, "problem"]
    assert reason in runs.loc[run_id, "problem"]
    assert runs.loc[OTHER.run_id, "status"] == "complete"  # one damaged run does not break the store
    assert cli.main(["--results", str(store.root), "ls"]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and rel in out
    with caplog.at_level(logging.WARNING, logger="sparsity_lab.store"):
        loaded = load_results(store=fresh)
    assert set(loaded["run_id"]) == {OTHER.run_id}  # never a partial trajectory of a complete-marked run
    assert f"run {run_id} left out, it is damaged ({rel}" in caplog.text

    before = trainings()
    result = experiments.run(CFG, store=ResultsStore(store.root), device="cpu", progress=False)
    assert result.reused == (rel == "config.json")  # a rewritten config.json was all it took
    assert trainings() - before == lost
    assert not (store.run_dir(run_id) / "steps" / "0001" / "PWNED").exists()
    again = ResultsStore(store.root)
    assert again.status(run_id) == "complete" and again.check(run_id).problem is None
    pd.testing.assert_frame_equal(comparable(again.records(run_id)), template[1], check_exact=False, rtol=1e-6)


def test_sweep_does_not_report_a_damaged_run_reused(store):
    from sparsity_lab.sweep.runner import run_many

    flip(store.run_dir(CFG.run_id) / "steps" / "0002" / "records.parquet")
    outcomes = {o.run_id: o.status for o in run_many([CFG, OTHER], devices=["cpu"], store=store, progress=False)}
    assert outcomes == {CFG.run_id: "done", OTHER.run_id: "reused"}


def test_verify_names_the_file_and_repair_discards_the_damaged_steps(store, capsys):
    root = str(store.root)
    assert cli.main(["--results", root, "verify"]) == 0
    assert "2 runs checked, 0 damaged" in capsys.readouterr().out
    truncate(store.run_dir(CFG.run_id) / "steps" / "0002" / "records.parquet")
    assert cli.main(["--results", root, "verify", OTHER.run_id]) == 0  # only the run asked for
    assert cli.main(["--results", root, "verify"]) == 1
    out = capsys.readouterr().out
    assert f"{CFG.run_id}  damaged  steps/0002/records.parquet: size" in out and "1 damaged" in out
    assert cli.main(["--results", root, "verify", "--repair", CFG.run_id[:14]]) == 0
    assert "now partial" in capsys.readouterr().out
    assert ResultsStore(root).completed_steps(CFG.run_id) == [0, 1]
    assert cli.main(["--results", root, "verify"]) == 0


def test_garbage_config_json_leaves_the_rest_of_the_store_readable(store, capsys, caplog):
    garbage(store.run_dir(CFG.run_id) / "config.json")
    root = str(store.root)
    assert cli.main(["--results", root, "ls"]) == 0
    assert "config.json: not valid JSON" in capsys.readouterr().out
    assert cli.main(["--results", root, "show", CFG.run_id]) == 1
    assert "config.json" in capsys.readouterr().out
    assert cli.main(["--results", root, "show", OTHER.run_id]) == 0
    with caplog.at_level(logging.WARNING, logger="sparsity_lab.store"):
        assert set(load_results(store=root)["run_id"]) == {OTHER.run_id}
    assert f"{CFG.run_id} left out, it is damaged (config.json" in caplog.text


def test_orphan_temporaries_are_removed_when_a_run_is_opened_or_completed(store):
    run_dir = store.run_dir(CFG.run_id)
    (run_dir / "COMPLETE").unlink()  # as if killed before completion, with leftovers of the kill
    orphans = [run_dir / "artifacts" / ".tmp-trainer.safetensors-0123456789ab", run_dir / ".tmp-COMPLETE-00ff"]
    for path in orphans:
        path.write_bytes(b"half written")
    assert store.status(CFG.run_id) == "partial"  # a kill's leftovers are not damage
    experiments.run(CFG, store=store, device="cpu", progress=False)
    assert not any(p.exists() for p in orphans) and store.status(CFG.run_id) == "complete"


def test_read_only_store_that_must_train_says_so_in_one_line(store, capsys, monkeypatch):
    root = store.root
    before = sorted(p.name for p in root.iterdir())
    new = ["--results", str(root), "run", "--dataset", "digits", "--model", "mlp", "--iterations", "0",
           "--train.epochs", "1", "--seed", "5", "--no-progress"]
    if os.geteuid() == 0:  # root ignores file modes: simulate the read-only store
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == root else real(p, mode, **kw))
    else:
        os.chmod(root, 0o555)
    try:
        assert cli.main(new) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [f"sparsity-lab run: error: results store {root} is not writable"]
        assert sorted(p.name for p in root.iterdir()) == before  # nothing written: no run directory, no lock
        # reading a read-only store still works: reuse, ls, load_results
        assert experiments.run(CFG, store=ResultsStore(root), device="cpu", progress=False).reused
        assert cli.main(["--results", str(root), "ls"]) == 0
    finally:
        os.chmod(root, 0o755)


def test_damaged_asni_run_keeps_its_verified_epochs(tmp_path):
    from sparsity_lab.config.configs import AsniConfig

    cfg = AsniConfig(dataset="digits", model="mlp", train=TrainSettings(epochs=3, batch_size=128))
    store = ResultsStore(tmp_path)
    experiments.run(cfg, store=store, device="cpu", progress=False)
    before = comparable(store.records(cfg.run_id))
    kept = (store.run_dir(cfg.run_id) / "steps" / "0000" / "records.parquet").stat().st_mtime_ns
    flip(store.run_dir(cfg.run_id) / "steps" / "0001" / "records.parquet")
    assert ResultsStore(tmp_path).status(cfg.run_id) == "damaged"
    experiments.run(cfg, store=ResultsStore(tmp_path), device="cpu", progress=False)
    again = ResultsStore(tmp_path)
    assert again.status(cfg.run_id) == "complete"
    assert (store.run_dir(cfg.run_id) / "steps" / "0000" / "records.parquet").stat().st_mtime_ns == kept
    pd.testing.assert_frame_equal(comparable(again.records(cfg.run_id)), before, check_exact=False, rtol=1e-6)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("records.parquet", b"PAR1" + bytes(20) + b"PAR1", "not a parquet file"),
    ("records.parquet", bytes(32), "no PAR1 magic"),
    ("tensors.safetensors", (10).to_bytes(8, "little") + b'{"a": 1}  ', "bad header"),
    ("config.json", b"\xff\xfe", "not valid JSON"),
])
def test_structural_checks_name_what_is_wrong(tmp_path, name, data, reason):
    from sparsity_lab.store.formats import content_problem

    path = tmp_path / name
    path.write_bytes(data)
    assert reason in content_problem(path)


@pytest.mark.parametrize(("damage", "reason"), [(delete, "missing"), (zero_fill, "unreadable")])
def test_manifest_rebuilt_by_running_again_covers_config_and_every_file(store, caplog, damage, reason):
    run_id, root = CFG.run_id, store.root
    run_dir = store.run_dir(run_id)
    damage(run_dir / "manifest.json")
    with caplog.at_level(logging.INFO, logger="sparsity_lab.store"):
        experiments.run(CFG, store=ResultsStore(root), device="cpu", progress=False)
    assert f"manifest.json: {reason}" in caplog.text and "interrupted write" not in caplog.text
    assert ResultsStore(root).status(run_id) == "complete"
    listed = set(read_json(run_dir / "manifest.json")["files"])
    on_disk = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert listed == on_disk - {"manifest.json"} and "config.json" in listed
    doc = read_json(run_dir / "config.json")
    doc["created"] = "2000-01-01T00:00:00+00:00"  # an edit that keeps the run's id and config
    atomic_write_json(run_dir / "config.json", doc)
    fresh = ResultsStore(root)
    assert fresh.status(run_id) == "damaged" and fresh.check(run_id).problem.file == "config.json"
    assert cli.main(["--results", str(root), "verify", run_id]) == 1
