"""Bit-packed masks in the store (store/packed.py): exact round trip, size, and stores written before packing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save
from test_store_fakes import FakeConfig, make_records

from sparsity_lab.store import ResultsStore, packed
from sparsity_lab.store.atomic import sha256_bytes
from sparsity_lab.store.codec import tensors_from_bytes, tensors_to_bytes

shapes = st.lists(st.integers(0, 13), min_size=0, max_size=4)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=st.sampled_from([torch.bool, torch.uint8]), seed=st.integers(0, 2**31 - 1),
       keep=st.floats(0.0, 1.0))
def test_binary_tensors_round_trip_exactly(shape, dtype, seed, keep):
    """Any shape (0-d, empty, sizes not a multiple of 8) comes back with the same shape, dtype and values."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(shape, generator=g) < keep).to(dtype)
    other = torch.randn(3, generator=g)
    data = tensors_to_bytes({"mask.w": mask, "x": other})
    back = tensors_from_bytes(data)
    assert set(back) == {"mask.w", "x"}
    assert back["mask.w"].dtype == dtype and back["mask.w"].shape == mask.shape
    assert torch.equal(back["mask.w"], mask)
    assert torch.equal(back["x"], other)
    assert json.loads(packed.safetensors_metadata(data)[packed.METADATA_KEY])["mask.w"]["shape"] == list(shape)


def test_non_binary_tensors_are_not_packed():
    tensors = {"count": torch.tensor([0, 1, 2], dtype=torch.uint8), "f": torch.tensor([0.0, 1.0]),
               "i": torch.tensor([0, 1], dtype=torch.int64)}
    data = tensors_to_bytes(tensors)
    assert packed.METADATA_KEY not in packed.safetensors_metadata(data)
    back = tensors_from_bytes(data)
    for key, value in tensors.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value)


def test_masks_take_one_bit_per_entry():
    mask = torch.rand(1000, 1000) < 0.3
    unpacked, bits = len(st_save({"m": mask.to(torch.uint8)})), len(tensors_to_bytes({"m": mask.to(torch.uint8)}))
    assert unpacked > 1_000_000 and bits < 1_000_000 / 8 + 1000


def test_a_step_written_before_packing_still_loads(tmp_path: Path):
    """A store file written the old way (plain uint8 masks, no metadata) reads back unchanged."""
    store = ResultsStore(tmp_path / "results")
    config = FakeConfig()
    store.prepare(config)
    mask = (torch.rand(5, 7) < 0.5).to(torch.uint8)
    store.save_step(config.run_id, 0, make_records(0), {"mask.w": mask})
    old = st_save({"mask.w": mask, "model.b": torch.ones(2)})  # what codec wrote before store/packed.py
    rel = "steps/0000/tensors.safetensors"
    (store.run_dir(config.run_id) / rel).write_bytes(old)
    doc = json.loads((store.run_dir(config.run_id) / "manifest.json").read_text())
    doc["files"][rel] = {"sha256": sha256_bytes(old), "size": len(old)}
    (store.run_dir(config.run_id) / "manifest.json").write_text(json.dumps(doc))
    back = store.load_step_tensors(config.run_id, 0)
    assert back["mask.w"].dtype == torch.uint8 and torch.equal(back["mask.w"], mask)
    assert torch.equal(back["model.b"], torch.ones(2))


def test_store_round_trips_packed_masks_and_writes_them_small(tmp_path: Path):
    store = ResultsStore(tmp_path / "results")
    config = FakeConfig()
    store.prepare(config)
    mask = (torch.rand(64, 300) < 0.5).to(torch.uint8)
    store.save_step(config.run_id, 0, make_records(0), {"mask.w": mask})
    store.save_artifact(config.run_id, "final", {"mask.w": mask.bool(), "model.w": torch.randn(64, 300)})
    assert torch.equal(store.load_step_tensors(config.run_id, 0)["mask.w"], mask)
    final = store.load_artifact(config.run_id, "final")
    assert final["mask.w"].dtype == torch.bool and torch.equal(final["mask.w"], mask.bool())
    assert (store.run_dir(config.run_id) / "steps/0000/tensors.safetensors").stat().st_size < 64 * 300 / 8 + 500


@pytest.mark.parametrize("bad", [b"", b"\x00" * 4, (10**6).to_bytes(8, "little") + b"{}"])
def test_metadata_of_a_non_safetensors_blob_is_an_error(bad):
    with pytest.raises(ValueError, match="not a safetensors file"):
        packed.safetensors_metadata(bad)


def test_a_complete_iterative_run_drops_its_init_and_recomputes_a_lost_step_identically(tmp_path: Path):
    """θ₀ is recreated from the seed, so a complete run need not keep artifacts/init (6 MB for the cnn)."""
    from sparsity_lab import experiments
    from sparsity_lab.config.configs import IterativeConfig
    from sparsity_lab.engine.trainer import TrainSettings

    store = ResultsStore(tmp_path / "results")
    cfg = IterativeConfig(dataset="digits", model="mlp", method="lt", iterations=2, pq_grid=False,
                          train=TrainSettings(epochs=1, batch_size=128))
    first = experiments.run(cfg, store=store, device="cpu", progress=False).records
    run_dir = store.run_dir(cfg.run_id)
    assert not (run_dir / "artifacts/init.safetensors").exists()
    lost = run_dir / "steps/0002/records.parquet"
    lost.write_bytes(lost.read_bytes()[:-1] + b"\0")  # damaged: step 2 is discarded and recomputed
    assert store.completed_steps(cfg.run_id) == [0, 1] and not store.is_complete(cfg.run_id)
    again = experiments.run(cfg, store=store, device="cpu", progress=False)
    assert not again.reused
    keep = lambda r: (r[r.metric != "wall_time"].sort_values(["iteration", "stage", "metric", "scope", "group", "p", "q"])  # noqa: E731
                      .reset_index(drop=True))
    pd.testing.assert_frame_equal(keep(again.records), keep(first))
