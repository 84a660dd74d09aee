"""The report batch: real papermill kernels on two tiny notebooks (one ok, one raising)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sparsity_lab.figures.registry import all_figures
from sparsity_lab.report.batch import UsageError, _parse_overrides, select
from sparsity_lab.report.batch import main as report_main

OK_CELLS = [
    "import sys\nprint('KERNEL', sys.executable)\nprint('TWICE', n_seeds * 2)\nprint('PUBLISH', publish)",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2))\n"
    "ax.plot([0, 1], [1, 0])\nplt.show()",
    "from sparsity_lab.report import files\n"
    "paths = files.save_figure(fig, output_dir, OK)\n"
    "files.write_meta(output_dir, OK, run_ids=['run-b', 'run-a'], caption='tiny caption', figures=paths, extra={\n"
    "    'claims': [{'claim': '7.1', 'status': 'fails', 'reason': 'Hoyer passed cloning', 'statement': 's'}],\n"
    "    'claims_summary': 'claims 0/1 hold (1 fail)', 'claims_status': 'fails'})",
]
#: Registered figure names (the report runs registered figures only): a tiny notebook under each name.
OK, BAD = "07_pqi_properties", "08_asni_schedule"
BAD_CELLS = ["print('about to fail')", "raise ValueError('p must be < q')", "print('never reached')"]


def _notebook(path: Path, cells: list[str]) -> None:
    params = nbformat.v4.new_code_cell(f'profile = "quick"\noutput_dir = None\nn_seeds = 1\nOK = "{OK}"',
                                       metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[params, *(nbformat.v4.new_code_cell(c) for c in cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def notebooks(tmp_path: Path) -> Path:
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    _notebook(nb_dir / f"{OK}.ipynb", OK_CELLS)
    _notebook(nb_dir / f"{BAD}.ipynb", BAD_CELLS)
    (nb_dir / "helper.ipynb").write_text("not a figure notebook")  # no NN_ prefix: ignored
    _notebook(nb_dir / f"{OK}-Copy1.ipynb", BAD_CELLS)  # JupyterLab's "Duplicate": not registered, ignored
    return nb_dir


def _report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", "nbs", "--out", "reports", *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_report_runs_renders_and_indexes_ok_and_failed_notebooks(notebooks: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    proc = _report(tmp_path, "--profile", "smoke", "-p", "n_seeds", "21")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{OK}-Copy1.ipynb is not a registered figure's notebook: ignored" in proc.stdout
    assert "claims 0/1 hold (1 fail)" in proc.stdout  # the summary's claims column
    assert BAD in proc.stderr and "ValueError: p must be < q" in proc.stderr
    assert OK not in proc.stderr  # only the failed notebook is named
    assert f"{OK}: ran, claims failed" in proc.stdout and f"{BAD}: FAILED" in proc.stdout
    out = tmp_path / "reports" / "smoke"

    ok_nb = nbformat.read(out / f"{OK}.ipynb", as_version=4)
    streams = "".join(o.get("text", "") for c in ok_nb.cells for o in c.get("outputs", []))
    assert f"KERNEL {sys.executable}" in streams  # the kernel is this interpreter's environment
    assert "TWICE 42" in streams  # -p n 21 reached the notebook as an int
    assert "PUBLISH True" in streams  # only the batch publishes
    injected = [c for c in ok_nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "profile = \"smoke\"" in injected[0].source
    assert str((out / "figures").resolve()) in injected[0].source

    ok_html = (out / f"{OK}.html").read_text()
    assert "data:image/png;base64," in ok_html
    assert '<link rel="stylesheet" href' not in ok_html  # self-contained
    bad_html = (out / f"{BAD}.html").read_text()
    assert "p must be &lt; q" in bad_html or "p must be < q" in bad_html
    bad_nb = nbformat.read(out / f"{BAD}.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in bad_nb.cells for o in c.get("outputs", []))
    assert (out / "figures" / f"{OK}.png").is_file() and (out / "figures" / f"{OK}.pdf").is_file()

    index = (out / "index.html").read_text()
    assert OK in index and BAD in index
    assert index.count('class="badge warn"') == 1 and index.count('class="badge bad"') == 1
    assert '<li class="fails"><b>7.1</b> fails: <i>s</i> — Hoyer passed cloning</li>' in index
    assert "ValueError: p must be &lt; q" in index
    assert "data:image/png;base64," in index  # thumbnail of 01_ok
    assert "run-a" in index and "tiny caption" in index

    status = json.loads((out / "index.json").read_text())
    by_name = {n["name"]: n for n in status["notebooks"]}
    assert set(by_name) == {OK, BAD}
    assert by_name[OK]["status"] == "claims failed" and by_name[OK]["run_ids"] == ["run-a", "run-b"]
    assert by_name[OK]["claims"][0]["claim"] == "7.1"
    assert by_name[BAD]["status"] == "failed"
    assert (by_name[BAD]["error_name"], by_name[BAD]["error_message"]) == ("ValueError", "p must be < q")
    assert by_name[BAD]["html"] == f"{BAD}.html" and by_name[OK]["wall_s"] > 0
    assert status["profile"] == "smoke" and status["parameters"] == {"n_seeds": 21}

    # the calls below run in this process (the one above went through the entry point)
    monkeypatch.chdir(tmp_path)
    for var in ("SPARSITY_LAB_DATA", "SPARSITY_LAB_RESULTS"):  # main sets them where unset: undone after the test
        monkeypatch.setenv(var, os.environ.get(var) or str(tmp_path / var.lower()))

    # --notebooks runs one notebook (other parameters: executed again): its card is updated, the other
    # registered notebook's card is kept
    first_run = (out / f"{OK}.ipynb").stat().st_mtime_ns
    code = report_main(["--notebooks-dir", "nbs", "--out", "reports", "--profile", "smoke", "--notebooks", OK])
    out_err = capsys.readouterr()
    assert code == 0 and BAD not in out_err.out, out_err.out + out_err.err
    assert (out / f"{OK}.ipynb").stat().st_mtime_ns != first_run
    cards = {n["name"]: n for n in json.loads((out / "index.json").read_text())["notebooks"]}
    assert list(cards) == [OK, BAD] and cards[OK]["inputs"] != by_name[OK]["inputs"]
    assert {k: v for k, v in cards[BAD].items()} == by_name[BAD]
    assert "ValueError: p must be &lt; q" in (out / "index.html").read_text()

    # from here on nothing starts a kernel

    # the same inputs again: the notebook is kept as it is, not executed (report.freshness)
    executed_at = (out / f"{OK}.ipynb").stat().st_mtime_ns
    code = report_main(["--notebooks-dir", "nbs", "--out", "reports", "--profile", "smoke", "--notebooks", OK])
    out_err = capsys.readouterr()
    assert code == 0 and "up to date, kept as they are" in out_err.out, out_err.out + out_err.err
    assert (out / f"{OK}.ipynb").stat().st_mtime_ns == executed_at
    kept = {n["name"]: n for n in json.loads((out / "index.json").read_text())["notebooks"]}
    assert kept[OK]["reused"] is True and kept[OK]["inputs"] == cards[OK]["inputs"] is not None
    assert "kept: its inputs are unchanged since that run" in (out / "index.html").read_text()
    assert {k: v for k, v in kept[OK].items() if k != "reused"} == {k: v for k, v in cards[OK].items() if k != "reused"}

    # --render-only rebuilds HTML and index from the executed notebooks without running a kernel
    executed_mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.ipynb")}
    for stale in (*out.glob("*.html"), out / "index.json"):
        stale.unlink()
    code = report_main(["--notebooks-dir", "nbs", "--out", "reports", "--profile", "smoke", "--render-only"])
    out_err = capsys.readouterr()
    assert code == 1 and f"{BAD} (ValueError: p must be < q)" in out_err.err, out_err.out + out_err.err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.ipynb")} == executed_mtimes
    assert "data:image/png;base64," in (out / f"{OK}.html").read_text()
    rendered = json.loads((out / "index.json").read_text())
    again = {n["name"]: n for n in rendered["notebooks"]}
    assert rendered["render_only"] is True
    for name in (OK, BAD):
        for key in ("status", "error_name", "error_message", "run_ids", "html", "caption"):
            assert again[name][key] == by_name[name][key], (name, key)
    assert again[OK]["wall_s"] > 0  # papermill's recorded duration
    # a profile that was never executed is reported per notebook, not silently skipped
    code = report_main(["--notebooks-dir", "nbs", "--out", "reports", "--profile", "paper", "--render-only"])
    assert code == 1 and capsys.readouterr().err.count("NotExecuted") == 2


def test_unknown_notebook_exits_2_and_lists_available(notebooks: Path, tmp_path: Path) -> None:
    proc = _report(tmp_path, "--notebooks", "99_missing")
    assert proc.returncode == 2
    assert "99_missing" in proc.stderr and OK in proc.stderr and BAD in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_select_by_stem_prefix_and_file_name(tmp_path: Path) -> None:
    available = [tmp_path / f"{n}.ipynb" for n in ("01_sap_trajectories", "07_pqi_properties", "10_asni2")]
    assert select(available, None) == available
    assert select(available, ["07"]) == [available[1]]
    assert select(available, ["10_asni2.ipynb", "01_sap_trajectories", "01"]) == [available[0], available[2]]
    assert select(available, ["1", "asni2"]) == [available[0], available[2]]  # number or figure name
    with pytest.raises(UsageError, match="'2' is not a notebook; available: 01_sap_trajectories"):
        select(available, ["2"])


def test_parameter_overrides_are_parsed_as_yaml() -> None:
    assert _parse_overrides([["n", "3"], ["lr", "0.5"], ["seeds", "[0, 1]"], ["tag", "abc"], ["x", "null"]]) == {
        "n": 3, "lr": 0.5, "seeds": [0, 1], "tag": "abc", "x": None}
    with pytest.raises(UsageError, match="--profile"):
        _parse_overrides([["profile", "paper"]])
    with pytest.raises(UsageError, match="'publish' is set by the report"):
        _parse_overrides([["publish", "false"]])
    with pytest.raises(UsageError, match="identifier"):
        _parse_overrides([["not-a-name", "1"]])


ROOT = Path(__file__).resolve().parents[1]


def test_committed_notebooks_share_the_format() -> None:
    """Every figure notebook: no outputs or counts, kernel python3, one `parameters` cell generated from
    the registry (python -m sparsity_lab.report.notebook_cells --check)."""
    from sparsity_lab.report.notebook_cells import check

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) == len(all_figures()), "a figure notebook is missing or an unregistered one is committed"
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs: make strip"
    assert check() == []


def test_a_notebook_saved_in_jupyter_passes_after_make_strip(tmp_path: Path) -> None:
    """Outputs, execution counts and JupyterLab's metadata added to a copy vanish with `make strip`'s
    command (read from the Makefile): the stripped copy equals the committed notebook byte for byte."""
    import shlex
    import shutil

    recipe = (ROOT / "Makefile").read_text().split("\nstrip:")[1].splitlines()[1].strip()
    assert recipe.startswith("$(VENV)/bin/nbstripout") and recipe.endswith("notebooks/*.ipynb")
    nbstripout = shutil.which("nbstripout", path=str(Path(sys.executable).parent))
    assert nbstripout, "nbstripout (a dev dependency) is not installed"
    original = ROOT / "notebooks" / "01_sap_trajectories.ipynb"
    saved = tmp_path / original.name
    nb = nbformat.read(original, as_version=4)
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.4", "mimetype": "text/x-python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.metadata.update({"execution": {"iopub.execute_input": "2026-11-27T08:00:00Z"}, "scrolled": True,
                              "trusted": True})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
                        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nbformat.write(nb, saved)
    assert saved.read_bytes() != original.read_bytes()
    args = shlex.split(recipe.removeprefix("$(VENV)/bin/nbstripout").removesuffix("notebooks/*.ipynb"))
    subprocess.run([nbstripout, *args, str(saved)], check=True, timeout=60)
    assert saved.read_bytes() == original.read_bytes()


def test_papermill_reads_every_parameter_of_the_committed_notebooks(caplog: pytest.LogCaptureFixture) -> None:
    """papermill's parser gives up on a parameter line whose comment holds '=' (it then drops the line from
    `papermill --help-notebook` and logs a warning in every batch run)."""
    import logging

    import papermill as pm

    with caplog.at_level(logging.WARNING, logger="papermill"):
        for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            params = pm.inspect_notebook(str(nb))
            assert {"profile", "output_dir"} <= set(params), nb.name
            assert all(p["help"] for name, p in params.items()), nb.name  # every line's comment was read
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]


def test_make_lab_allows_root_only_when_run_as_root() -> None:
    """`jupyter lab` refuses root without --allow-root, and root is the default user in containers."""
    import os
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "-n", "lab", f"VENV={Path(sys.executable).parents[1]}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    line = next(ln for ln in proc.stdout.splitlines() if "jupyter lab" in ln)
    assert ("--allow-root" in line) == (os.getuid() == 0), line


def test_index_card_states_what_a_failed_claim_says_and_why() -> None:
    from sparsity_lab.report.index_page import _claims

    card = _claims([{"claim": "1.5", "status": "fails", "statement": "SAP keeps fewer weights than LT",
                     "reason": "SAP 5.97 % vs LT 0.124 %"},
                    {"claim": "1.4", "status": "holds", "statement": "LT degrades gracefully", "reason": "ok"}],
                   "claims 1/2 hold (1 fail)")
    assert "SAP keeps fewer weights than LT" in card and "SAP 5.97 % vs LT 0.124 %" in card
    assert "LT degrades gracefully" not in card  # a claim that holds shows only its reason
