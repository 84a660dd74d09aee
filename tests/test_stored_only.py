"""``report --stored-only`` (what ``make figures PROFILE=gpu`` uses): a batch that never trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stored_only_marks_notebooks_with_missing_runs_and_trains_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "SPARSITY_LAB_RESULTS": str(tmp_path / "results")}
    cmd = [sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", str(ROOT / "notebooks"), "--out",
           str(tmp_path / "reports"), "--profile", "smoke", "--notebooks", "01", "--stored-only"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "not run, their runs are not stored (--stored-only): 01_sap_trajectories" in proc.stdout
    index = json.loads((tmp_path / "reports" / "smoke" / "index.json").read_text())
    cards = {e["name"]: e for e in index["notebooks"]}
    missing = cards["01_sap_trajectories"]
    assert missing["status"] == "runs missing" and "4 of 4 runs are not in the results store" in missing["error_message"]
    assert not list((tmp_path / "results").glob("iterative_*"))  # nothing trained
    page = (tmp_path / "reports" / "smoke" / "index.html").read_text()
    assert "runs missing" in page and "--stored-only trains nothing" in page


def test_split_stored_runs_the_notebooks_whose_runs_are_all_stored(tmp_path: Path) -> None:
    from sparsity_lab.report import pipeline
    from sparsity_lab.report.stored_only import split_stored

    planned = pipeline.plan(["01", "07"], "smoke")
    stored = {r.run_id for r in planned[0][2][:3]}  # 3 of figure 1's 4 runs

    class Store:
        root = tmp_path

        def is_complete(self, run_id: str) -> bool:
            return run_id in stored

    chosen = [Path(f"{spec.stem}.ipynb") for spec, _, _ in planned]
    runnable, skipped = split_stored(chosen, planned, Store(), "smoke")
    assert [p.stem for p in runnable] == ["07_pqi_properties"]  # it reads no run
    assert [(o.name, o.status) for o in skipped] == [("01_sap_trajectories", "runs missing")]
    assert "1 of 4 runs are not in the results store" in skipped[0].error_message
