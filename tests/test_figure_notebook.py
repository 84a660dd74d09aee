"""The figure notebooks' cells (docs/figures.md "Notebooks"): generated from the registry, stating exactly the
registered claims, refusing misspelt parameters, drawing live figures and panels, publishing only on request."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_figures_sap import LT, SAP, fake_fetch

from sparsity_lab.figures.params import ParameterError
from sparsity_lab.figures.registry import Inputs, all_figures, get_figure
from sparsity_lab.report import notebook as notebook_module
from sparsity_lab.report import notebook_cells, pipeline
from sparsity_lab.report.notebook import GENERATED_MARK, FigureNotebook, assigned_parameters

ROOT = Path(__file__).resolve().parents[1]


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("spec", all_figures(), ids=lambda s: s.stem)
def test_each_notebook_states_exactly_its_registered_claims(spec) -> None:
    nb = nbformat.read(ROOT / "notebooks" / spec.notebook, as_version=4)
    stated = [c for c in nb.cells if "nbgen-claims-statements" in _tags(c)]
    assert len(stated) == 1, "one generated 'claims checked here' block"
    found = dict(re.findall(r"^\* \*\*(\S+)\*\* (.+)$", stated[0].source, flags=re.M))
    assert found == {cid: notebook_cells.math_markup(text) for cid, text in spec.claim_statements().items()}
    prose = [c.source for c in nb.cells if not any(t.startswith(notebook_cells.TAG) for t in _tags(c))]
    assert prose, "the hand-written introduction is kept"
    assert not [p for p in prose if re.search("claim", p, re.I)], "a claim is stated only in the generated block"


def test_each_notebook_has_the_generated_layout() -> None:
    for spec in all_figures():
        nb = nbformat.read(ROOT / "notebooks" / spec.notebook, as_version=4)
        roles = list(dict.fromkeys(t for c in nb.cells for t in _tags(c) if t.startswith(notebook_cells.TAG)))
        expected = [r for r in notebook_cells.LAYOUT if r != "panel" or spec.panels()]
        assert roles == [notebook_cells.TAG + r for r in expected], spec.stem
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert f'FigureNotebook("{spec.name}", globals())' in code and "nb.draw(records" in code
        assert "if publish:\n    nb.publish()" in code
    for name in ("sap_trajectories", "pruning_scopes", "sap_vs_lth"):  # figures with panels redraw one alone
        assert get_figure(name).panels()
    assert notebook_cells.check() == []


def test_layout_keeps_hand_written_cells_after_the_cell_they_follow() -> None:
    spec = get_figure("pqi_properties")
    intro = nbformat.v4.new_markdown_cell("# Figure 7 intro")
    note = nbformat.v4.new_markdown_cell("A note under the figure.")
    stale = nbformat.v4.new_code_cell("fig = old_call()", metadata={"tags": ["nbgen-figure"]})
    nb = nbformat.v4.new_notebook(cells=[intro, stale, note])
    cells = notebook_cells.layout(nb, spec)
    assert cells[0] is intro and "old_call" not in "".join(c.source for c in cells)
    figure_at = max(i for i, c in enumerate(cells) if "nbgen-figure" in _tags(c))
    assert cells[figure_at + 1] is note
    params = next(c for c in cells if "parameters" in _tags(c))
    assert "n_seeds: int = None" in params.source and "publish: bool = False" in params.source


def test_papermill_reads_every_parameter_with_its_type() -> None:
    import papermill as pm

    for spec in all_figures():
        params = pm.inspect_notebook(str(ROOT / "notebooks" / spec.notebook))
        assert params["profile"]["inferred_type_name"] == "str" and params["publish"]["inferred_type_name"] == "bool"
        assert "None" not in {p["inferred_type_name"] for p in params.values()}, spec.stem
    assert pm.inspect_notebook(str(ROOT / "notebooks" / "01_sap_trajectories.ipynb"))["seeds"][
        "inferred_type_name"] == "list[int]"


def test_a_misspelt_parameter_is_refused_in_the_cell_and_from_papermill() -> None:
    cell = notebook_cells.parameters_source(get_figure("pqi_properties"))
    with pytest.raises(ParameterError, match=r"unknown parameter 'n_seed' \(did you mean 'n_seeds'\?\)"):
        FigureNotebook("pqi_properties", {"In": ["", cell + "\nn_seed = 3"], "profile": "smoke", "n_seed": 3})
    with pytest.raises(ParameterError, match="'n_seed'"):  # papermill's injected cell
        FigureNotebook("pqi_properties", {"In": ["", cell, "# Parameters\nprofile = 'smoke'\nn_seed = 3\n"]})
    # a typo fixed since (an older run of the cell) and names of other cells are not parameters
    history = ["", cell + "\nn_seed = 3", cell, "metric = 'gini'"]
    assert "n_seeds" in assigned_parameters({"In": history}) and "n_seed" not in assigned_parameters({"In": history})
    FigureNotebook("pqi_properties", {"In": history, "profile": "smoke", "metric": "gini"})
    assert GENERATED_MARK in cell


@pytest.fixture()
def fake_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures 1, 2, 6 drawn from deterministic records instead of the store."""
    def load(runs, *, store=None):
        raw = fake_fetch([r.config for r in runs])
        return Inputs(pipeline.with_labels(raw, runs), list(runs), raw=raw)

    monkeypatch.setattr(pipeline, "load", load)
    monkeypatch.setattr(pipeline, "provenance", lambda run_ids, store=None: "fake runs")
    monkeypatch.setattr(notebook_module, "_display", lambda *objects: None)


def test_draw_returns_the_live_figure_and_its_options_change_it(fake_store) -> None:
    nb = FigureNotebook("sap_trajectories", {"profile": "smoke"})
    records = nb.records()
    assert {"label", "family", "metric", "value"} <= set(records.columns)
    shown = nb.glimpse(records)
    assert sorted(shown["label"]) == sorted(nb.params.methods) and (shown["metric"] == "accuracy").all()
    fig = nb.draw(records, figsize=(9, 4), methods=[SAP, LT], annotate=None)
    assert isinstance(fig, Figure) and tuple(fig.get_size_inches()) == (9, 4)
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {SAP, LT}
    assert "phases" not in fig.axes[2].get_title()
    filtered = nb.draw(records[records["label"] != LT])  # the records drawn are the reader's
    assert LT not in {t.get_text() for t in filtered.legends[0].get_texts()}
    with pytest.raises(ParameterError, match="unknown plotting option 'colour' of 01_sap_trajectories"):
        nb.draw(records, colour="red")
    claims = nb.claims(records)
    assert list(claims["claim"]) == list(get_figure(1).claim_statements())


@pytest.mark.parametrize(("name", "panel", "kw"), [
    ("sap_trajectories", "pqi", {}), ("pruning_scopes", "layer_pqi", {"scope": "layer"}),
    ("pruning_scopes", "accuracy", {"scope": "global"}), ("sap_vs_lth", "speedup", {}),
])
def test_one_panel_is_drawn_alone_on_the_readers_axes(fake_store, name, panel, kw) -> None:
    nb = FigureNotebook(name, {"profile": "smoke"})
    fig = Figure()
    ax = fig.subplots()
    assert nb.draw_panel(panel, nb.records(), ax=ax, linewidth=3.5, **kw) is ax
    assert ax.get_lines() and all(line.get_linewidth() == 3.5 for line in ax.get_lines() if line.get_label()
                                  [:1] != "_" and "dense" not in line.get_label())
    with pytest.raises(ParameterError, match="unknown panel"):
        nb.draw_panel("nope", ax=ax)


def test_exploring_writes_nothing_and_publish_writes_the_report_files(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "smoke" / "figures"
    ns = {"profile": "smoke", "output_dir": str(out), "n_seeds": 2, "n_trials": 2, "publish": False}
    nb = FigureNotebook("pqi_properties", ns)
    records = nb.records()
    nb.draw(records[records["measure"] != "Hoyer"], figsize=(8, 3))
    assert not nb.claims(records).empty
    assert not out.exists()
    paths = nb.publish()
    assert {p.name for p in paths} >= {"07_pqi_properties.png", "07_pqi_properties.pdf"}
    meta = pd.read_json(out / "07_pqi_properties.meta.json", typ="series")
    assert meta["params"]["n_seeds"] == 2 and meta["claims"]


@pytest.mark.slow
def test_papermill_exits_non_zero_naming_a_misspelt_parameter_and_a_run_writes_nothing(tmp_path: Path) -> None:
    notebook = ROOT / "notebooks" / "07_pqi_properties.ipynb"
    base = [sys.executable, "-m", "papermill", str(notebook), str(tmp_path / "o.ipynb"), "-p", "profile", "smoke",
            "-p", "output_dir", str(tmp_path / "figures"), "--cwd", str(ROOT / "notebooks")]
    proc = subprocess.run([*base, "-p", "n_seed", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "unknown parameter 'n_seed' (did you mean 'n_seeds'?)" in proc.stderr
    proc = subprocess.run([*base, "-p", "n_seeds", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "figures").exists()  # exploring, even under papermill, publishes nothing


def test_the_batch_draws_and_checks_the_report_figure_once_and_a_restyled_one_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the batch runs a notebook (publish set): publish reports the drawing and the verdicts the cells made
    of all records with the default options, without drawing or checking again; after a drawing of other
    records it draws and checks the report's figure itself."""
    ns = {"profile": "smoke", "output_dir": str(tmp_path / "a"), "n_seeds": 2, "n_trials": 2, "publish": True}
    nb = FigureNotebook("pqi_properties", ns)
    calls = {"draw": 0, "check": 0}
    spec_class = type(nb.spec)  # a frozen dataclass: its methods are counted on the class
    draw, check = spec_class.draw, spec_class.check_claims

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(spec_class, "draw", counting("draw", draw))
    monkeypatch.setattr(spec_class, "check_claims", counting("check", check))
    records = nb.records()
    nb.draw()
    shown = nb.claims()
    nb.publish()
    assert calls == {"draw": 1, "check": 1}
    meta = pd.read_json(tmp_path / "a" / "07_pqi_properties.meta.json", typ="series")
    assert [(c["claim"], c["status"]) for c in meta["claims"]] == list(zip(shown["claim"], shown["verdict"]))
    nb.draw(records[records["measure"] != "Hoyer"])  # another drawing: the report's is made and checked afresh
    nb.claims()  # on all records, so on a drawing of its own
    assert calls == {"draw": 3, "check": 2}
    nb.publish(tmp_path / "b")
    assert calls == {"draw": 4, "check": 3}
