"""`sparsity-lab sweep` reports a run's errors like `sparsity-lab run` (one line, same exit status): a run whose
training diverges (exit 1, one line per failed run, no traceback, also from worker processes) and a read-only
store that must train (exit 2, one line, nothing written). Through the entry point, so logged lines count too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings

# test_divergence's repro (digits mlp, lr 1e6, no clipping), one epoch: diverges at once
DIVERGING = IterativeConfig(dataset="digits", model="mlp", iterations=0, pq_grid=False,
                            train=TrainSettings(epochs=1, batch_size=64, lr=1e6, grad_clip=None))
FINE = config_with(DIVERGING, train=TrainSettings(epochs=1, batch_size=128))
ENTRY = [sys.executable, "-m", "sparsity_lab"]
COMMON = ["--dataset", "digits", "--model", "mlp", "--iterations", "0", "--pq_grid", "false", "--train.epochs", "1"]
RUN_FLAGS = [*COMMON, "--train.batch_size", "64", "--train.lr", "1000000.0", "--train.grad_clip", "none", "--no-progress"]


def _sweep_file(path: Path, *configs) -> Path:
    import json

    path.write_text(json.dumps([c.to_dict() for c in configs]))
    return path


def _cli(args: list[str], cwd: Path, prefix: list[str] = ENTRY) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    env.pop("SPARSITY_LAB_DEBUG", None)
    return subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def run_line(tmp_path_factory) -> str:
    """What ``run`` prints for the diverging config: one line (both sweeps below must print the same)."""
    where = tmp_path_factory.mktemp("run")
    ran = _cli(["--results", str(where / "results"), "run", *RUN_FLAGS], where)
    assert ran.returncode == 1
    line, = ran.stderr.strip().splitlines()
    assert line.startswith(f"sparsity-lab run: run {DIVERGING.run_id} failed: training diverged at epoch 0")
    return line


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_with_a_diverging_run_prints_one_line_like_run(tmp_path, workers, run_line):
    sweep_file = _sweep_file(tmp_path / "sweep.json", DIVERGING, FINE)
    swept = _cli(["--results", str(tmp_path / "sweep"), "sweep", str(sweep_file), "--devices", "cpu",
                  "--workers-per-device", str(workers), "--no-progress"], tmp_path)
    assert swept.returncode == 1, swept.stderr
    assert "Traceback" not in swept.stderr
    assert swept.stderr.strip().splitlines() == [run_line.replace("sparsity-lab run:", "sparsity-lab sweep:", 1)]
    assert re.search(rf"{FINE.run_id}\s+done", swept.stdout) and re.search(rf"{DIVERGING.run_id}\s+failed",
                                                                           swept.stdout)


_READ_ONLY = """
import os, sys
from pathlib import Path
root = Path(sys.argv[1])
real = os.access
os.access = lambda p, mode, **kw: False if Path(p) == root else real(p, mode, **kw)  # root ignores file modes
from sparsity_lab.cli import main as cli
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_sweep_into_a_read_only_store_that_must_train_is_one_line_exit_2_like_run(tmp_path, command):
    root = tmp_path / "results"
    root.mkdir()
    sweep_file = _sweep_file(tmp_path / "sweep.json", FINE)
    args = (["run", *COMMON, "--no-progress"] if command == "run" else
            ["sweep", str(sweep_file), "--devices", "cpu", "--no-progress"])
    if os.geteuid() == 0:  # root ignores file modes: simulate the read-only store
        out = _cli([str(root), "--results", str(root), *args], tmp_path, [sys.executable, "-c", _READ_ONLY])
    else:
        os.chmod(root, 0o555)
        try:
            out = _cli(["--results", str(root), *args], tmp_path)
        finally:
            os.chmod(root, 0o755)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [f"sparsity-lab {command}: error: results store {root} is not writable"]
    assert list(root.iterdir()) == []  # nothing written: no run directory, no lock
