"""sparsity_lab.report.explore on a small real store (digits): metric selection, labels, bands, the widget panel."""

from __future__ import annotations

import pytest

from sparsity_lab import experiments
from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.report.explore import metric_frame, plot_metric, run_labels
from sparsity_lab.report.explore_panel import explorer
from sparsity_lab.store import ResultsStore, load_results

T = 2


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    store = ResultsStore(tmp_path_factory.mktemp("explore"))
    base = IterativeConfig(dataset="digits", model="mlp", iterations=T, train=TrainSettings(epochs=1, batch_size=64))
    for method in ("sap", "lt"):
        for seed in (0, 1):
            experiments.run(config_with(base, method=method, seed=seed), store=store, device="cpu", progress=False)
    return store


def test_metric_frame_one_row_per_run_and_iteration(store: ResultsStore) -> None:
    records = load_results(store=store)
    acc = metric_frame(records, "accuracy", stage="retrained")
    assert len(acc) == 4 * (T + 1) and not acc.duplicated(["run_id", "iteration"]).any()
    pqi = metric_frame(records, "pqi", stage="retrained", scope="global", p=0.5, q=1.0)
    assert len(pqi) == 4 * (T + 1) and set(pqi["p"]) == {0.5}


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"metric": "nope"}, "available: ["),
    ({"metric": "accuracy"}, "several stages ['pruned', 'retrained']: pass stage="),
    ({"metric": "accuracy", "stage": "trained"}, "stage='trained' does not occur"),
    ({"metric": "pqi", "stage": "retrained", "scope": "global"}, "pick p and q from"),
])
def test_metric_frame_says_what_to_choose(store: ResultsStore, kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        metric_frame(load_results(store=store), **kwargs)


def test_labels_name_what_differs_and_bands_average_the_seeds(store: ResultsStore) -> None:
    frame = metric_frame(load_results(store=store), "remaining", stage="retrained", scope="global")
    labels = run_labels(frame)
    assert set(labels) == {"method=sap", "method=lt"}  # the seed is averaged, not a label
    fig = plot_metric(load_results(store=store), "remaining", stage="retrained", scope="global", logy=True)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["method=lt", "method=sap"]
    lt_line = next(line for line in ax.get_lines() if line.get_label() == "method=lt")
    lt = frame[labels == "method=lt"].groupby("iteration")["value"].mean()
    assert list(lt_line.get_ydata()) == pytest.approx(list(lt))  # the line is the mean over the two seeds


def test_explorer_panel_filters_runs_and_redraws(store: ResultsStore) -> None:
    panel = explorer(store)
    _, menus, controls, _, _ = panel.children
    assert panel.profile.value == "none (own runs)"  # digits mlp runs: no figure's plan holds them
    method = next(m for m in menus.children if m.description == "method")
    metric = next(c for c in controls.children if c.description == "metric")
    assert set(method.options) == {"sap", "lt"} and "pqi" in metric.options
    assert metric.value == "accuracy" and panel.figure is not None  # a first plot without any choice
    method.value = ("lt",)
    metric.value = "remaining"
    scope = next(c for c in controls.children if c.description == "scope")
    scope.value = "global"
    assert panel.message is None
    (line,) = [ln for ln in panel.figure.axes[0].get_lines() if ln.get_label() == "all runs"]
    assert line.get_ydata()[0] == 1.0 and line.get_ydata()[-1] < 1.0  # LT's remaining fraction falls
    metric.value = "pqi"  # a (p, q) grid: the first pair is offered, so the plot is one line per label
    assert panel.message is None and panel.figure.axes[0].get_title().startswith("pqi (stage=retrained")
    scope.value = "layer"  # layer scope: the group menu offers the layers, the first is drawn
    group = next(c for c in controls.children if c.description == "group")
    assert group.value in group.options and group.value.endswith(".weight") and panel.message is None
    before = len(method.options)
    panel.refresh()  # re-reads the store: same runs, same menus, selection kept
    assert len(method.options) == before and method.value == ("lt",)


def test_explorer_on_an_empty_store_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ValueError, match="no complete runs"):
        explorer(ResultsStore(tmp_path))


@pytest.mark.slow
def test_explore_notebook_runs_under_papermill(store: ResultsStore, tmp_path) -> None:
    import json
    from pathlib import Path

    import papermill as pm

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(str(root / "notebooks" / "explore_results.ipynb"), str(out), kernel_name="python3",
                        parameters={"results": str(store.root)}, cwd=str(root / "notebooks"), progress_bar=False,
                        execution_timeout=300)  # a lost kernel reply fails the test instead of hanging the suite
    cells = json.loads(out.read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert f"4 complete runs in {store.root}" in text and "no stored runs of figure 1 yet" in text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


# ---------------------------------------------------------------- a large store (quick + gpu runs, synthetic)
@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    import explore_store

    store = ResultsStore(tmp_path_factory.mktemp("big"))
    assert len(explore_store.build(store, max_steps=4)) >= 100
    return store


def test_catalogue_names_each_runs_figures_and_profiles(big_store: ResultsStore) -> None:
    from sparsity_lab.report.explore import run_catalogue
    from sparsity_lab.report.pipeline import plan

    runs = run_catalogue(big_store)
    fig1_quick = {r.run_id for _, _, rs in plan([1], "quick") for r in rs}
    chosen = runs[runs["profiles"].map(lambda p: "quick" in p) & runs["figures"].map(lambda f: "01_sap_trajectories" in f)]
    assert set(chosen["run_id"]) == fig1_quick


def test_explorer_starts_on_one_figure_at_one_profile_with_a_labelled_plot(big_store: ResultsStore) -> None:
    panel = explorer(big_store)
    assert panel.profile.value in ("quick", "gpu") and panel.figure_menu.value.startswith("01_")
    assert 0 < len(panel.loaded) < 40  # records of the chosen figure's runs only, not the whole store
    ax = panel.figure.axes[0]
    assert ax.get_ylabel() == "accuracy (%)" and ax.get_legend() is not None
    assert all(30 < y <= 100 for line in ax.get_lines() for y in line.get_ydata())
    panel.profile.value = "gpu" if panel.profile.value == "quick" else "quick"
    assert panel.message is None and panel.figure is not None


def test_labels_leave_out_another_methods_fields(store: ResultsStore) -> None:
    records = load_results(store=store)
    frame = metric_frame(records, "accuracy", stage="retrained")
    frame["config_p"] = [{("sap", 0): 0.5, ("sap", 1): 0.25}.get((m, s), 0.7 + s) for m, s in zip(frame["method"], frame["seed"])]
    assert set(run_labels(frame)) == {"method=sap, p=0.5", "method=sap, p=0.25", "method=lt"}  # LT's p: unused


@pytest.mark.slow
def test_explore_notebook_on_a_store_of_148_runs_takes_under_a_minute(big_store: ResultsStore, tmp_path) -> None:
    import json
    import time
    from pathlib import Path

    import papermill as pm

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "explore.ipynb"
    start = time.perf_counter()
    pm.execute_notebook(str(root / "notebooks" / "explore_results.ipynb"), str(out), kernel_name="python3",
                        parameters={"results": str(big_store.root)}, cwd=str(root / "notebooks"), progress_bar=False,
                        execution_timeout=120)
    assert time.perf_counter() - start < 60
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # figure 1's runs at one profile, in code
    assert out.stat().st_size < 2_000_000
