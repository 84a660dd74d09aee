"""Kill-and-resume soak (issue 9 §2): a run SIGKILLed at several points and resumed each time stores the
same records, row order included, as an uninterrupted run (``store.comparable`` drops the wall-time rows).

The child processes (forked from the package's fork server: tests/children.py) run the ordinary runner; the
parent polls the store's completed steps and kills the child once a given number of steps is stored,
optionally after a delay (so kills land during training, during a store write or during an artifact write).
``benchmarks/resume_soak.py`` runs more kills.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import children
import pandas as pd

from sparsity_lab import experiments
from sparsity_lab.config.configs import AsniConfig, ExperimentConfig, IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.store import ResultsStore, comparable
from sparsity_lab.store.manifest import RECORDS_FILE, read_manifest, step_rel


def stored_steps(run_dir: Path) -> int:
    """How many steps 0, 1, … the run's manifest lists, read only (``completed_steps`` may also repair, which
    an outside observer must not do while the run's process writes)."""
    files, n = read_manifest(run_dir), 0
    while step_rel(n, RECORDS_FILE) in files:
        n += 1
    return n


def soak(cfg: ExperimentConfig, root: Path, kill_points: Sequence[tuple[int, float]], timeout: float = 300.0) -> int:
    """Run ``cfg`` in child processes on the store at ``root``: for each (steps, delay) of ``kill_points``, SIGKILL
    the child ``delay`` seconds after the store holds ``steps`` completed steps (0: once the run directory
    exists; −1: once the child started), then start it again; the last child runs to completion. Returns how
    many kills landed."""
    store = ResultsStore(root)
    points, kills, deadline = list(kill_points), 0, time.monotonic() + timeout
    for attempt in itertools.count():
        out = root.parent / f"{root.name}-child-{attempt}.txt"
        child = children.start_run(cfg.to_dict(), out, env={"SPARSITY_LAB_RESULTS": str(root)})
        point = points.pop(0) if points else None
        reached = time.monotonic() if point is not None and point[0] < 0 else None
        while child.exitcode is None:
            assert time.monotonic() < deadline, "soak timed out"
            run_dir = store.run_dir(cfg.run_id)
            if point is not None and reached is None and run_dir.exists() and stored_steps(run_dir) >= point[0]:
                reached = time.monotonic()
            if reached is not None and time.monotonic() >= reached + point[1]:
                child.kill()
                kills += 1
                break
            time.sleep(0.005)
        code, said = children.finish(child, out)
        if code not in (0, -9):
            raise AssertionError(f"child failed ({code}):\n{said}")
        if code == 0 and store.is_complete(cfg.run_id):
            return kills
    raise AssertionError("unreachable")


def _assert_soak_equals_clean(cfg: ExperimentConfig, tmp_path: Path, kill_points) -> None:
    clean = comparable(experiments.run(cfg, store=ResultsStore(tmp_path / "clean"), device="cpu",
                                       progress=False).records)
    kills = soak(cfg, tmp_path / "killed", kill_points)
    assert kills >= 2, f"only {kills} kill(s) landed before the run completed"
    killed = comparable(ResultsStore(tmp_path / "killed").records(cfg.run_id))
    pd.testing.assert_frame_equal(killed, clean)
    steps = ResultsStore(tmp_path / "killed").completed_steps(cfg.run_id)
    assert steps == list(range(len(steps))) and steps


def test_killed_and_resumed_sap_run_equals_an_uninterrupted_one(tmp_path):
    cfg = IterativeConfig(dataset="digits", model="mlp", method="sap", iterations=3, pq_grid=False,
                          train=TrainSettings(epochs=2, batch_size=128))
    _assert_soak_equals_clean(cfg, tmp_path, [(0, 0.0), (2, 0.1)])


def test_killed_and_resumed_asni_run_equals_an_uninterrupted_one(tmp_path):
    cfg = AsniConfig(dataset="digits", model="mlp", s_max=90.0, kappa=1.0, variant="asni1",
                     train=TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=6,
                                         batch_size=128, lr_schedule="constant", grad_clip=None))
    _assert_soak_equals_clean(cfg, tmp_path, [(1, 0.0), (3, 0.05)])
