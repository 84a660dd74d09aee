"""Identical runs write identical files: the same tiny run in two fresh stores, in two processes with different
PYTHONHASHSEED, gives byte-identical tensor files (safetensors keeps ``__metadata__`` in a Rust HashMap whose
order is random per map, so the store writes the header itself in a fixed order: store/packed.py).

Files that legitimately hold times are compared without them: ``config.json`` ("created"), ``COMPLETE``
("finished"), each step's ``records.parquet`` (its ``wall_time`` rows) and so ``manifest.json`` (their
checksums); every other file, and every other manifest entry, must be byte-identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from sparsity_lab.store.codec import records_from_bytes

_SCRIPT = """
import hashlib, json, sys
import torch
from sparsity_lab import experiments
from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.masks import MaskSet
from sparsity_lab.store import ResultsStore, codec
from sparsity_lab.engine.trainer import TrainSettings

root = sys.argv[1]
cfg = IterativeConfig(dataset="digits", model="mlp", iterations=2, train=TrainSettings(epochs=1, batch_size=128),
                      pq_grid=False)
experiments.run(cfg, store=ResultsStore(root), device="cpu", progress=False)
# many encodings in one process too (the metadata order changes from one safetensors call to the next)
tensors = {"fc2.weight": torch.ones(3, 4, dtype=torch.bool), "fc1.weight": torch.zeros(2, 5, dtype=torch.uint8),
           "theta": torch.arange(6.0)}
masks = MaskSet({"fc2.weight": torch.ones(3, 4, dtype=torch.bool), "fc1.weight": torch.zeros(2, 5, dtype=torch.bool)})
digests = []
for i in range(16):
    digests.append(hashlib.sha256(codec.tensors_to_bytes(tensors)).hexdigest())
    masks.save(f"{root}/masks.safetensors")
    with open(f"{root}/masks.safetensors", "rb") as fh:
        digests.append(hashlib.sha256(fh.read()).hexdigest())
print(json.dumps(digests))
"""
_TIMED = {"config.json": "created", "COMPLETE": "finished"}


def _run(root: Path, seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(root)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _without_wall_time(path: Path) -> pd.DataFrame:
    records = records_from_bytes(path.read_bytes())
    return records[records.metric != "wall_time"].reset_index(drop=True)


def test_identical_runs_write_byte_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    digests = _run(first, "1"), _run(second, "2")
    assert len(set(digests[0] + digests[1])) == 2  # one file of tensors, one mask file: each always the same bytes
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    timed = set()
    for rel in files:
        a, b = first / rel, second / rel
        if rel.name in _TIMED:
            docs = [json.loads(p.read_text()) for p in (a, b)]
            assert docs[0].pop(_TIMED[rel.name]) and docs[1].pop(_TIMED[rel.name])
            assert docs[0] == docs[1], rel
        elif rel.name == "records.parquet":
            pd.testing.assert_frame_equal(_without_wall_time(a), _without_wall_time(b))
        elif rel.name == "manifest.json":
            continue  # compared below
        else:
            assert a.read_bytes() == b.read_bytes(), f"{rel} differs"
            continue
        timed.add(rel)
    assert {r.name for r in timed} == {"config.json", "COMPLETE", "records.parquet"}
    tensor_files = [r for r in files if r.suffix == ".safetensors" and r.parts[0] != "masks.safetensors"]
    assert len(tensor_files) >= 4  # three steps and the final weights
    for manifest in [r for r in files if r.name == "manifest.json"]:
        entries = [json.loads((root / manifest).read_text())["files"] for root in (first, second)]
        assert entries[0].keys() == entries[1].keys()
        for name in entries[0]:
            if Path(manifest.parent, name) not in timed:
                assert entries[0][name] == entries[1][name], f"{manifest}: {name}"
