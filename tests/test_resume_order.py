"""Resumed and repeated runs store the same records, row order included (issue 9 §2).

safetensors returns a file's tensors in arbitrary order (a fresh hash order on every load), so masks and
weights read back from the store must be rebuilt in the model's order; otherwise the layer rows of a resumed
run come in another order, global pruning breaks ties differently and sums are taken in another order.
These in-process tests interrupt a run by failing its store write after k steps; tests/test_resume_soak.py
SIGKILLs real processes.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch

from sparsity_lab import experiments
from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.experiments.common import masks_from_tensors
from sparsity_lab.masks import MaskSet, in_model_order
from sparsity_lab.models import create_model
from sparsity_lab.store import ResultsStore, codec, comparable
from sparsity_lab.store.codec import tensors_from_bytes, tensors_to_bytes

ITER_TRAIN = TrainSettings(epochs=1, batch_size=128)
ASNI_TRAIN = TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=4, batch_size=128,
                           lr_schedule="constant", grad_clip=None)


class Interrupted(Exception):
    pass


@pytest.fixture(autouse=True)
def reversed_loads(monkeypatch):
    """Every tensor file of the store reads back in reverse order, as safetensors' hash order may give it:
    the runners must not depend on the order of what they load."""
    original = codec.tensors_from_bytes
    monkeypatch.setattr(codec, "tensors_from_bytes", lambda data: dict(reversed(list(original(data).items()))))


def _run_interrupted(cfg, store: ResultsStore, after: int, monkeypatch) -> None:
    """Run ``cfg`` until ``after`` more steps are stored, then fail the next store write (a crash)."""
    original, calls = ResultsStore.save_step, {"n": 0}

    def failing(self, *args, **kwargs):
        if calls["n"] == after:
            raise Interrupted
        calls["n"] += 1
        return original(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(ResultsStore, "save_step", failing)
        with pytest.raises(Interrupted):
            experiments.run(cfg, store=store, device="cpu", progress=False)


def _records(cfg, store: ResultsStore) -> pd.DataFrame:
    return comparable(experiments.run(cfg, store=store, device="cpu", progress=False).records)


@pytest.mark.parametrize("method", ["sap", "lt"])
def test_resumed_iterative_run_stores_identical_records_in_the_same_order(tmp_path, method, monkeypatch):
    cfg = IterativeConfig(dataset="digits", model="mlp", method=method, scope="global", iterations=3,
                          train=ITER_TRAIN, pq_grid=False)
    want = _records(cfg, ResultsStore(tmp_path / "clean"))
    store = ResultsStore(tmp_path / "resumed")
    for after in (1, 1):  # interrupted twice, each time after one more completed iteration
        _run_interrupted(cfg, store, after, monkeypatch)
    pd.testing.assert_frame_equal(_records(cfg, store), want)


def test_asni2_runs_store_rows_in_the_same_order(tmp_path):
    cfg = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=ASNI_TRAIN, variant="asni2")
    store = ResultsStore(tmp_path)
    first = _records(cfg, store)
    for _ in range(2):  # a clean rerun of the child reads the parent's final artifact again
        shutil.rmtree(store.run_dir(cfg.run_id))
        pd.testing.assert_frame_equal(_records(cfg, store), first)


def test_resumed_asni_run_stores_identical_records_in_the_same_order(tmp_path, monkeypatch):
    cfg = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=ASNI_TRAIN, variant="asni1")
    want = _records(cfg, ResultsStore(tmp_path / "clean"))
    store = ResultsStore(tmp_path / "resumed")
    _run_interrupted(cfg, store, 2, monkeypatch)
    pd.testing.assert_frame_equal(_records(cfg, store), want)


def test_masks_and_states_read_back_in_model_order(tmp_path):
    model = create_model("mlp", "digits")
    backwards = MaskSet(dict(reversed(list(MaskSet.for_model(model).items()))))
    backwards.save(tmp_path / "m.safetensors")
    assert list(MaskSet.load(tmp_path / "m.safetensors")) == list(backwards)  # as saved
    assert list(MaskSet.load(tmp_path / "m.safetensors", model)) == list(MaskSet.for_model(model))
    masks = MaskSet.for_model(model)
    tensors = {f"mask.{k}": v.to(torch.uint8) for k, v in reversed(list(masks.items()))}
    assert list(masks_from_tensors(tensors, torch.device("cpu"), model)) == list(masks)
    state = dict(reversed(list(model.state_dict().items())))
    assert list(in_model_order(state, model)) == list(model.state_dict())
    prefixed = {f"model.{k}": v for k, v in state.items()} | tensors
    ordered = in_model_order(prefixed, model)
    assert list(ordered) == [f"model.{k}" for k in model.state_dict()] + [f"mask.{k}" for k in masks]


def test_stored_tensors_come_back_in_the_order_they_were_saved():
    tensors = {f"layer{i}.weight": torch.full((2,), float(i)) for i in (3, 0, 5, 1, 4, 2)}
    data = tensors_to_bytes(tensors)
    for _ in range(5):  # safetensors' own order changes from one load to the next
        assert list(tensors_from_bytes(data)) == list(tensors)


def test_comparable_drops_only_wall_time():
    frame = pd.DataFrame({"iteration": [0, 0, 1], "metric": ["accuracy", "wall_time", "loss"], "value": [1.0, 2.0, 3.0]})
    out = comparable(frame)
    assert list(out.metric) == ["accuracy", "loss"] and list(out.index) == [0, 1]
