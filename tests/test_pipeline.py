"""The figure registry, typed parameters and the orchestrator (plan, prefetch, load, draw)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from sparsity_lab.figures.params import ParameterError
from sparsity_lab.figures.registry import all_figures, get_figure
from sparsity_lab.report import pipeline
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep import costs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ResultsStore:
    monkeypatch.setenv("SPARSITY_LAB_RESULTS", str(tmp_path / "results"))
    return ResultsStore(tmp_path / "results")


def test_every_figure_has_one_name_and_its_notebook() -> None:
    specs = all_figures()
    assert [s.number for s in specs] == list(range(1, 13))
    for spec in specs:
        assert (ROOT / "notebooks" / spec.notebook).is_file(), spec.stem
        for key in (spec.number, f"{spec.number:02d}", spec.name, spec.stem, spec.notebook):
            assert get_figure(key) is spec
        assert (ROOT / "sparsity_lab" / "figures" / f"{spec.name}.py").is_file()  # module named as the figure
    with pytest.raises(ParameterError, match="unknown figure 'trajectories': allowed 01_sap_trajectories"):
        get_figure("trajectories")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_seed": 3}, "unknown parameter 'n_seed' of figure '01_sap_trajectories'"),
    ({"iteration": 9}, "did you mean 'iterations'"),
    ({"seeds": "abc"}, "parameter seeds='abc' of figure '01_sap_trajectories': expected list of int"),
    ({"iterations": 9.5}, "parameter iterations=9.5 .*expected int"),
    ({"seeds": [0, True]}, "expected list of int"),
    ({"rank_weights": "best"}, "allowed last, best_val, best_test"),
    ({"methods": ["SAP"]}, "allowed SAP \\(p=0.5, q=1\\)"),
])
def test_bad_parameters_are_refused_naming_them(overrides: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        pipeline.resolve("sap_trajectories", "smoke", **overrides)


def test_profiles_are_checked_and_floats_take_ints() -> None:
    with pytest.raises(ParameterError, match="unknown profile 'quik' \\(did you mean 'quick'\\?\\): allowed smoke"):
        pipeline.resolve("sap_trajectories", "quik")
    assert pipeline.resolve("asni_schedule", "smoke", s_max=80).s_max == 80.0


def test_every_offered_choice_works_rank_weights_best_val_with_val_size() -> None:
    params = pipeline.resolve("sap_trajectories", "smoke", rank_weights="best_val", val_size=100)
    configs = [r.config for r in get_figure(1).runs(params)]
    for c in configs:
        c.validate()
    assert {(c.rank_weights, c.val_size) for c in configs} == {("best_val", 100)}


def test_every_figure_plans_at_every_profile_without_training(trainings, empty_store: ResultsStore) -> None:
    before = trainings()
    for profile in ("smoke", "quick", "gpu", "paper"):
        planned = {spec.stem[:2]: runs for spec, _, runs in pipeline.plan([s.name for s in all_figures()], profile)}
        assert planned["07"] == [] and all(planned[k] for k in planned if k != "07"), profile
    assert trainings() == before
    assert not empty_store.root.exists() or not any(empty_store.root.iterdir())


def test_split_overrides_refuses_a_name_no_chosen_figure_has() -> None:
    specs = [get_figure(7), get_figure(8)]
    split = pipeline.split_overrides(specs, {"dim": 64, "s_max": 80.0})
    assert split == {"07_pqi_properties": {"dim": 64}, "08_asni_schedule": {"s_max": 80.0}}
    with pytest.raises(ParameterError, match="unknown parameter 'n_seed' \\(did you mean 'n_seeds'\\?\\)"):
        pipeline.split_overrides([get_figure(7)], {"n_seed": 3})


def test_figures_are_pure_readers() -> None:
    """No figure module imports the sweep/worker/experiment layer or the store (docs/figures.md)."""
    banned = ("sparsity_lab.sweep.runner", "sparsity_lab.sweep.job", "sparsity_lab.experiments", "sparsity_lab.store",
              "sparsity_lab.rules.prune")
    for path in (ROOT / "sparsity_lab" / "figures").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith(banned)], (path.name, names)


def test_prefetched_runs_are_exactly_what_the_figure_reads(trainings, empty_store: ResultsStore) -> None:
    """Plan, prefetch, then draw with train=False: nothing more trains and only planned runs are read."""
    (spec, params, runs), = pipeline.plan(["asni_schedule"], "smoke", {"epochs": 2})
    assert pipeline.prefetch([r.config for r in runs], devices=["cpu"], store=empty_store, progress=False) == []
    before = trainings()
    result = pipeline.make_figure(spec, "smoke", store=empty_store, train=False, progress=False, epochs=2)
    assert trainings() == before
    assert result.run_ids == [r.run_id for r in runs] and result.name == "08_asni_schedule"
    with pytest.raises(RuntimeError, match="no stored records"):
        pipeline.make_figure(spec, "smoke", store=empty_store, train=False, progress=False, epochs=3)


def test_plan_table_counts_runs_epochs_and_gpu_hours(empty_store: ResultsStore) -> None:
    table = pipeline.plan_table(["01", "07", "08"], "smoke", store=empty_store).set_index("figure")
    assert table.loc["01_sap_trajectories", "runs"] == 4
    # docs/methods.md §3: T + 1 trainings of E epochs per iterative run (smoke: T = 3, E = 1)
    assert table.loc["01_sap_trajectories", "epochs to train"] == 4 * 4
    assert table.loc["07_pqi_properties", "runs"] == 0
    assert table.loc["total (distinct runs)", "epochs to train"] == 16 + 2 * 6  # + ASNI-I and dense
    gpu = pipeline.plan_table(["01", "09"], "gpu", store=empty_store).set_index("figure")
    assert gpu.loc["01_sap_trajectories", "epochs to train"] == 12 * 31 * 10  # 4 methods x 3 seeds
    per_run = 31 * 10 * costs.seconds_per_epoch("cnn", "fashionmnist") + 31 * costs.PER_TRAINING_SECONDS
    assert gpu.loc["01_sap_trajectories", "GPU-hours (est.)"] == pytest.approx(12 * per_run / 3600, abs=0.01)
    assert gpu.loc["09_asni_concentration", "epochs to train"] == 8 * 50 + 21 * 5  # asni1 + dense, LT ticket; one-shot: 0


def _report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**__import__("os").environ, "SPARSITY_LAB_RESULTS": str(tmp_path / "results")}
    return subprocess.run([sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", str(ROOT / "notebooks"),
                           "--out", str(tmp_path / "reports"), *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_report_plan_prints_the_table_and_runs_nothing(tmp_path: Path) -> None:
    proc = _report(tmp_path, "--profile", "gpu", "--plan")
    assert proc.returncode == 0, proc.stderr
    assert "08_asni_schedule" in proc.stdout and "GPU-hours" in proc.stdout and "epochs to train" in proc.stdout
    assert not (tmp_path / "reports").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--notebooks", "07", "-p", "n_seed", "3"], "unknown parameter 'n_seed'"),
    (["--notebooks", "01", "-p", "seeds", "abc"], "expected list of int"),
    (["--profile", "quik"], "unknown profile 'quik'"),
    (["--prefetch-workers", "-1"], "--prefetch-workers -1"),
])
def test_report_refuses_bad_input_before_running(tmp_path: Path, args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from sparsity_lab.report.batch import main

    code = main(["--notebooks-dir", str(ROOT / "notebooks"), "--out", str(tmp_path / "reports"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err  # one line, no traceback
    assert not (tmp_path / "reports").exists()


def test_claims_get_the_records_as_load_results_returns_them(empty_store: ResultsStore) -> None:
    """Claims select methods by config columns: no label columns, no run listed twice (figure 4's shared run)."""
    from sparsity_lab.store import load_results

    seen = {}
    spec = get_figure("asni_schedule")
    result = pipeline.make_figure(spec, "smoke", store=empty_store, progress=False, epochs=2, device="cpu")
    inputs = pipeline.load(spec.runs(pipeline.resolve(spec, "smoke", epochs=2)), store=empty_store)
    seen["claims"] = spec.claims_input(inputs, None, None)
    assert seen["claims"].equals(load_results(store=empty_store, run_id=result.run_ids))
    assert "label" in inputs.records.columns and "label" not in seen["claims"].columns


def test_notebooks_use_the_repository_store_from_any_working_directory(tmp_path: Path) -> None:
    """Opened with plain `jupyter lab` or VS Code, a notebook runs in notebooks/: the roots stay the repo's."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSITY_LAB_")}
    code = ("import os, sparsity_lab.report.pipeline; from sparsity_lab.store import ResultsStore; "
            "print(ResultsStore().root); print(os.environ['SPARSITY_LAB_DATA'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert [Path(p).resolve() for p in out] == [(ROOT / "results").resolve(), (ROOT / "data").resolve()]
