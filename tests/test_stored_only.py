"""``report --stored-only`` (what ``make figures PROFILE=gpu`` uses): a batch that never trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stored_only_runs_what_is_stored_and_marks_the_rest_without_training(tmp_path: Path) -> None:
    env = {**os.environ, "SPARSITY_LAB_RESULTS": str(tmp_path / "results")}
    cmd = [sys.executable, "-m", "sparsity_lab.report", "--notebooks-dir", str(ROOT / "notebooks"), "--out",
           str(tmp_path / "reports"), "--profile", "smoke", "--notebooks", "01", "07", "--stored-only"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "not run, their runs are not stored (--stored-only): 01_sap_trajectories" in proc.stdout
    index = json.loads((tmp_path / "reports" / "smoke" / "index.json").read_text())
    cards = {e["name"]: e for e in index["notebooks"]}
    assert cards["07_pqi_properties"]["status"] == "ok"  # trains nothing, so it runs
    missing = cards["01_sap_trajectories"]
    assert missing["status"] == "runs missing" and "4 of 4 runs are not in the results store" in missing["error_message"]
    assert not list((tmp_path / "results").glob("iterative_*"))  # nothing trained
    page = (tmp_path / "reports" / "smoke" / "index.html").read_text()
    assert "runs missing" in page and "--stored-only trains nothing" in page
