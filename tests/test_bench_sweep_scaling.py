"""benchmarks/bench_sweep_scaling.py on the CPU: its sweep, one measurement in a fresh process, its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sparsity_lab.config.configs import config_from_dict
from sparsity_lab.sweep.runner import sweep_entries

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sweep_scaling.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sweep_scaling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_sweep_is_16_cnn_configs_sap_and_lt(bench) -> None:
    args = bench.parse_args([])
    assert (args.models, args.dataset, args.iterations, args.seeds, args.epochs) == ("cnn", "fashionmnist", 3, 8, "3")
    blocks = bench.sweep_blocks(["cnn"], "fashionmnist", 3, 10, 8, 0, 0)
    configs = [config_from_dict(entry) for entry in sweep_entries(blocks)]
    assert len({c.run_id for c in configs}) == 16
    assert {(c.method, c.model, c.dataset, c.iterations, c.train.epochs) for c in configs} == {
        (m, "cnn", "fashionmnist", 3, 10) for m in ("sap", "lt")}
    assert {(c.p, c.q) for c in configs if c.method == "sap"} == {(0.5, 1.0)}


@pytest.mark.parametrize("devices", ["cpu", "cpu,cpu"])  # in-process, and two workers from the fork server
def test_one_cpu_measurement_is_timed_and_saved(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                devices: str) -> None:
    out = tmp_path / "scaling.json"
    bench.run(bench.parse_args(["--device-sets", devices, "--dataset", "digits", "--models", "mlp", "--iterations",
                                "1", "--epochs", "1", "--seeds", "1", "--out", str(out)]))
    saved = json.loads(out.read_text())
    assert saved["gpu_count"] == 0 and saved["torch"] and saved["git_sha"] and "--device-sets" in saved["command"]
    (rec,) = saved["records"]
    assert rec["devices"] == devices.split(",") and rec["epochs"] == 1 and "error" not in rec
    assert rec["runs"] == rec["done"] == 2 and rec["speedup_vs_first"] == 1.0
    assert 0 < rec["run_many_s"] < rec["wall_s"] and 0 < rec["busy_fraction"]["cpu"] < len(rec["devices"])
    assert {o["device"] for o in rec["outcomes"]} == {"cpu"} and rec["estimate_s"] > 0
    assert "1.00x" in capsys.readouterr().out
