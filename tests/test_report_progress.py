"""The report batch's progress (report/progress.py, report/batch.py): per running notebook, its runs stored so
far; the training left from the cost model, scaled by what this batch measured, and no estimate on a CPU before
that (README "Reading the reports")."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from sparsity_lab.report import batch, progress
from sparsity_lab.report.notebook_run import NotebookOutcome
from sparsity_lab.report.progress import BatchProgress, duration
from sparsity_lab.sweep.costs import DEVICE


class FakeStore:
    def __init__(self, complete: set[str]) -> None:
        self.complete = complete

    def is_complete(self, run_id: str) -> bool:
        return run_id in self.complete


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


#: Per notebook, its runs' "configs": here the seconds the cost model gives each (estimate_seconds is patched).
PLAN = {"01_a": {"r1": 60.0, "r2": 120.0}, "02_b": {"r2": 120.0, "r3": 600.0}, "07_c": {}}


@pytest.fixture(autouse=True)
def cost_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "estimate_seconds", lambda config: config)


def test_duration() -> None:
    assert [duration(s) for s in (10, 90, 720, 3600 + 5 * 60)] == ["under 1 min", "about 2 min", "about 12 min", "about 1 h 05 min"]


def test_gpu_text_counts_stored_runs_and_estimates_from_the_cost_model() -> None:
    store, clock = FakeStore({"r1"}), Clock()
    p = BatchProgress(PLAN, store, on_cpu=False, clock=clock)
    # r2 is shared: counted once (120 + 600 s = 12 min)
    assert p.text(["01_a", "02_b"]) == (f"01_a 1/2 runs stored · 02_b 0/2 runs stored · 2 runs to train, about 12 min "
                                        f"on one {DEVICE} (cost model)")
    store.complete.add("r2")
    clock.now += 240  # r2 (120 s by the model) took 240 s here: factor 2, r3 left: 600 s x 2
    assert p.text(["02_b"], done={"01_a"}) == ("02_b 1/2 runs stored · 1 run to train, about 20 min "
                                               "(cost model × 2 measured in this batch)")
    assert p.text(["07_c"], done={"01_a", "02_b"}) == "07_c (no runs) · no training left"


def test_cpu_says_no_estimate_until_a_run_is_trained() -> None:
    store, clock = FakeStore(set()), Clock()
    p = BatchProgress(PLAN, store, on_cpu=True, clock=clock)
    assert p.text(["01_a"]) == "01_a 0/2 runs stored · 3 runs to train · CPU: no estimate until one is trained"
    store.complete.add("r1")
    clock.now += 600  # 60 s by the model took 600 s on this CPU: factor 10
    assert p.text(["01_a"]).endswith("2 runs to train, about 2 h 00 min (cost model × 10 measured in this batch)")


def test_runs_stored_before_the_batch_do_not_calibrate() -> None:
    clock = Clock()
    p = BatchProgress(PLAN, FakeStore({"r1", "r2", "r3"}), on_cpu=True, clock=clock)
    clock.now += 100
    assert p.text(["01_a", "02_b"]) == "01_a 2/2 runs stored · 02_b 2/2 runs stored · no training left"


def test_the_batch_bar_shows_the_running_notebooks_runs(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
                                                        ) -> None:
    store = FakeStore(set())

    def fake_run(nb: Path, *_args, **_kw) -> NotebookOutcome:
        store.complete.add("r1")  # the notebook trains its first run, then works on
        time.sleep(0.5)
        return NotebookOutcome(name=nb.stem, status="ok")

    monkeypatch.setattr(batch, "run_notebook", fake_run)
    monkeypatch.setattr(batch, "PROGRESS_EVERY_S", 0.05)
    args = argparse.Namespace(jobs=1, kernel="python3", timeout=None, profile="smoke")
    chosen = [tmp_path / "01_a.ipynb", tmp_path / "02_b.ipynb"]
    p = BatchProgress(PLAN, store, on_cpu=True)
    outcomes = batch._run_all(chosen, tmp_path, args, {}, time.perf_counter(), p)
    out = capsys.readouterr().out
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert "01_a 1/2 runs stored" in out and "cost model ×" in out, out
    assert "02_b 0/2 runs stored" in out, "the second notebook is shown once the first is done"
    assert "s/nb" not in out, "no rate-based ETA"
