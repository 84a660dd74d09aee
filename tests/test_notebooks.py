"""Every figure notebook runs under papermill at profile=smoke; bad parameters fail clearly in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPARSITY_LAB_RESULTS": str(tmp_path / "results")}
    cmd = [sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", str(ROOT / "notebooks"),
           "--out", str(tmp_path / "reports"), *args]
    # run from outside the repository: nothing may depend on the working directory
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)


def run_smoke_batch(tmp_path: Path, names: list[str]) -> None:
    """``names`` run at smoke in one report batch: each ran (its claims checked), is indexed, has its HTML
    with an embedded figure and its PNG and PDF, and the runs it read are in the store."""
    proc = _report(tmp_path, "--profile", "smoke", "--notebooks", *names)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = tmp_path / "reports" / "smoke"
    index = json.loads((out / "index.json").read_text())
    entries = {e["name"]: e for e in index["notebooks"]}
    assert set(entries) == set(names)
    html_index = (out / "index.html").read_text()
    for name in names:
        assert entries[name]["status"] in ("ok", "claims failed"), entries[name]  # ran
        assert entries[name]["claims"] and entries[name]["claims_summary"], name
        assert name in html_index
        assert "data:image/png;base64," in (out / f"{name}.html").read_text(), name
        figures = list((out / "figures").glob(f"{name}*.png")) + list((out / "figures").glob(f"{name}*.pdf"))
        assert {p.suffix for p in figures} == {".png", ".pdf"}, name
    run_ids = {r for e in entries.values() for r in e["run_ids"]}
    assert run_ids and all((tmp_path / "results" / r).is_dir() for r in run_ids)
    if "07_pqi_properties" in names:  # the figure that trains nothing: its tables and an empty run list
        figures = out / "figures"
        for suffix in (".meta.json", "__property_checks.csv", "__sparsity_sweep.csv"):
            assert (figures / f"07_pqi_properties{suffix}").is_file(), suffix
        meta = json.loads((figures / "07_pqi_properties.meta.json").read_text())
        assert meta["run_ids"] == [] and meta["caption"].startswith("profile smoke") and meta["claims"]


def test_the_notebooks_are_the_registered_figures() -> None:
    from sparsity_lab.figures.registry import all_figures

    assert NOTEBOOKS == sorted(spec.stem for spec in all_figures()), NOTEBOOKS


@pytest.mark.slow
def test_every_notebook_runs_at_smoke_and_is_indexed(tmp_path: Path) -> None:
    """All twelve in one batch, as ``make figures`` runs them: one store (a run two figures read trains once),
    two notebooks at a time, their kernels forked from one template per worker (report/kernel_start.py)."""
    run_smoke_batch(tmp_path, NOTEBOOKS)


@pytest.mark.parametrize(("notebook", "key", "value", "message"), [
    ("01_sap_trajectories", "model", "transformer", "model='transformer'"),   # unknown model
    ("03_pq_ablation", "q_values", "[0.4]", "q=0.4"),                        # p = 1 >= q
])
def test_bad_parameter_is_refused_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], notebook, key, value,
                                                      message) -> None:
    """In this process (``report.main``, as ``python -m sparsity_lab.report`` calls it; that entry point's exit 2
    on a usage error: test_report.py), so no interpreter starts for a check that runs nothing."""
    from sparsity_lab.report.batch import main

    monkeypatch.setenv("SPARSITY_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)  # from outside the repository, as _report runs it
    code = main(["--notebooks-dir", str(ROOT / "notebooks"), "--out", str(tmp_path / "reports"), "--profile", "smoke",
                 "--notebooks", notebook, "-p", key, value])  # raising instead of returning 2 fails the test
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "reports").exists() and not (tmp_path / "results").exists()
