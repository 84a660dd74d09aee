"""figures.plan: the runs a figure needs, learnt from the figure itself, and the report's prefetch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sparsity_lab.config import ConfigError
from sparsity_lab.experiments import TRAINING_COUNTER
from sparsity_lab.figures.plan import PlannedStop, figure_configs, notebook_figure, planning, prefetch
from sparsity_lab.figures.runs import ensure_results
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep import run_many

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture()
def empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ResultsStore:
    monkeypatch.setenv("SPARSITY_LAB_RESULTS", str(tmp_path / "results"))
    return ResultsStore(tmp_path / "results")


def test_every_notebook_plans_without_training_or_touching_the_store(empty_store: ResultsStore) -> None:
    before = TRAINING_COUNTER["iterations"]
    counts = {}
    for nb in NOTEBOOKS:
        module, names = notebook_figure(nb)
        assert "profile" in names and "output_dir" in names
        configs = figure_configs(module, "smoke")
        for c in configs:
            c.validate()
        counts[nb.stem[:2]] = len({c.run_id for c in configs})
    assert len(counts) == 10 and counts["07"] == 0  # figure 7 trains nothing
    assert all(n > 0 for k, n in counts.items() if k != "07"), counts
    assert TRAINING_COUNTER["iterations"] == before
    assert not empty_store.root.exists() or not any(empty_store.root.iterdir())


@pytest.mark.parametrize(("module", "params"), [("trajectories", {"methods": ["SAP (p=0.5, q=1)", "LT (P=0.2)"]}),
                                                ("asni_schedule", {})])
def test_prefetched_runs_are_exactly_what_the_figure_uses(empty_store: ResultsStore, module: str,
                                                          params: dict) -> None:
    """Run the planned configs, then draw the figure: it trains nothing more and uses only planned runs."""
    import importlib

    configs = figure_configs(module, "smoke", **params)
    assert all(o.status == "done" for o in run_many(configs, devices=["cpu"], store=empty_store, progress=False))
    before = TRAINING_COUNTER["iterations"]
    result = importlib.import_module(f"sparsity_lab.figures.{module}").make_figure(
        "smoke", store=empty_store, progress=False, **params)
    assert TRAINING_COUNTER["iterations"] == before
    assert set(result.run_ids) == {c.run_id for c in configs}


def test_planning_validates_first_and_stops_only_inside_the_block(empty_store: ResultsStore) -> None:
    with pytest.raises(ConfigError, match="transformer"):
        figure_configs("trajectories", "smoke", model="transformer")
    configs = figure_configs("asni_schedule", "smoke")
    with planning() as planned, pytest.raises(PlannedStop):
        ensure_results(configs, store=empty_store)
    assert planned == configs
    assert not empty_store.root.exists() or not any(empty_store.root.iterdir())


def test_prefetch_skips_a_notebook_it_cannot_plan_and_runs_the_rest(empty_store: ResultsStore,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    chosen = [nb for nb in NOTEBOOKS if nb.stem.startswith(("07", "08"))]
    failed = prefetch(chosen, "smoke", {"s_max": 120.0}, workers_per_device=1, progress=False)
    out = capsys.readouterr().out
    assert failed == [] and "08_asni_schedule not planned (ConfigError" in out and "s_max" in out
    assert "prefetch: 0 runs for 2 notebooks" in out
    failed = prefetch(chosen, "smoke", {"dim": 64}, workers_per_device=1, progress=False)  # dim: figure 7 only
    assert failed == [] and len(empty_store.run_ids()) == 1


def test_report_rejects_negative_prefetch_workers(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", str(ROOT / "notebooks"),
                           "--prefetch-workers", "-1", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--prefetch-workers -1" in proc.stderr


def test_plan_table_counts_runs_stored_and_epochs_left(empty_store: ResultsStore) -> None:
    from sparsity_lab.figures.plan import plan_table, training_epochs

    chosen = [nb for nb in NOTEBOOKS if nb.stem.startswith(("01", "07", "08", "10"))]
    table = plan_table(chosen, "smoke", {}, store=empty_store).set_index("notebook")
    smoke01 = figure_configs("trajectories", "smoke")
    assert table.loc["01_sap_trajectories", "runs"] == len(smoke01) == 4
    # METHODS.md §3: T + 1 trainings of E epochs per iterative run (smoke: T = 3, E = 1)
    assert table.loc["01_sap_trajectories", "epochs to train"] == sum(
        (c.iterations + 1) * c.train.epochs for c in smoke01) == 16
    assert table.loc["07_pqi_properties", "runs"] == 0
    asni = figure_configs("asni2", "smoke")  # 7 variants, 6 epochs each; figure 8's one run is among them
    assert table.loc["total (distinct runs)", "runs"] == 4 + len(asni)
    assert table.loc["total (distinct runs)", "epochs to train"] == 16 + sum(training_epochs(c) for c in asni)
    run_many(figure_configs("asni_schedule", "smoke"), devices=["cpu"], store=empty_store, progress=False)
    after = plan_table(chosen, "smoke", {}, store=empty_store).set_index("notebook")
    assert after.loc["08_asni_schedule", "stored"] == 1 and after.loc["08_asni_schedule", "epochs to train"] == 0
    assert after.loc["10_asni2", "stored"] == 1
    assert after.loc["total (distinct runs)", "epochs to train"] == table.loc["total (distinct runs)",
                                                                              "epochs to train"] - 6


def test_report_plan_prints_the_table_and_runs_nothing(tmp_path: Path) -> None:
    env = {**__import__("os").environ, "SPARSITY_LAB_RESULTS": str(tmp_path / "results")}
    proc = subprocess.run([sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", str(ROOT / "notebooks"),
                           "--profile", "smoke", "--notebooks", "08", "--plan", "--out", str(tmp_path / "reports")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "08_asni_schedule" in proc.stdout and "epochs to train" in proc.stdout
    assert not (tmp_path / "reports").exists() and not (tmp_path / "results").exists()
