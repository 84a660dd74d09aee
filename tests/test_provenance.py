"""Per-run provenance (store/meta.py run_environment): the device, torch/CUDA and host each run trained on,
in its config.json beside code_version, and the figure captions written from it (report.pipeline.provenance)."""

from __future__ import annotations

import json

from sparsity_lab import experiments
from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.report.pipeline import provenance
from sparsity_lab.store import ResultsStore


def test_a_run_records_its_device_and_the_caption_says_so(tmp_path) -> None:
    store = ResultsStore(tmp_path)
    config = IterativeConfig(dataset="digits", model="mlp", iterations=1, train=TrainSettings(epochs=1, batch_size=64))
    before = config.run_id
    experiments.run(config, store=store, device="cpu", progress=False)
    doc = json.loads((store.run_dir(config.run_id) / "config.json").read_text())
    env = doc["environment"]
    assert env["device_type"] == "cpu" and env["device"].startswith("CPU (") and env["torch"] and env["host"]
    assert config.run_id == before == doc["run_id"]  # the canonical text, hence the id, does not change
    text = provenance([config.run_id], store=store)
    assert f"on {env['device']}, torch {env['torch']}" in text and "CUDA" not in text


def test_a_bundle_note_is_not_repeated_under_runs_that_recorded_their_device(tmp_path) -> None:
    from sparsity_lab.store import imported

    store = ResultsStore(tmp_path)
    config = IterativeConfig(dataset="digits", model="mlp", iterations=1, train=TrainSettings(epochs=1, batch_size=64))
    experiments.run(config, store=store, device="cpu", progress=False)
    run_dir = store.run_dir(config.run_id)
    (run_dir / imported.IMPORTED_FILE).write_text(json.dumps({"bundle": "gpu.tar.xz", "note": "figure 9 on a 2-core CPU"}))
    text = provenance([config.run_id], store=store)
    assert "imported from gpu.tar.xz" in text and "2-core" not in text


def test_runs_from_two_environments_are_credited_separately(tmp_path) -> None:
    """A bundle mixing old runs (no environment recorded: the bundle's note says where) and new runs (device
    recorded): each code version is named with its own machine, and the bundle once, with its note."""
    from sparsity_lab.store import imported

    store = ResultsStore(tmp_path)
    old, new = (IterativeConfig(dataset="digits", model="mlp", iterations=1, seed=s,
                                train=TrainSettings(epochs=1, batch_size=64)) for s in (0, 1))
    for config in (old, new):
        experiments.run(config, store=store, device="cpu", progress=False)
        (store.run_dir(config.run_id) / imported.IMPORTED_FILE).write_text(
            json.dumps({"bundle": "gpu.tar.xz", "note": "old runs on 4x H200"}))
    doc_path = store.run_dir(old.run_id) / "config.json"
    doc = json.loads(doc_path.read_text())
    doc.pop("environment")
    doc["code_version"] = {**doc["code_version"], "git": "fe46527" + "0" * 33}
    doc_path.write_text(json.dumps(doc))
    device = json.loads((store.run_dir(new.run_id) / "config.json").read_text())["environment"]["device"]
    text = provenance([old.run_id, new.run_id], store=store)
    assert text.startswith("runs trained with code fe46527; with code ") and f" on {device}" in text, text
    assert text.endswith(", imported from gpu.tar.xz (old runs on 4x H200)") and text.count("gpu.tar.xz") == 1, text
