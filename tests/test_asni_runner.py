"""ASNI runners on real digits (CPU): schedule tracking, concentration points, the two-level init."""

from __future__ import annotations

import torch

from sparsity_lab import experiments
from sparsity_lab.config.configs import AsniConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.experiments.asni import _two_level_init, level_values
from sparsity_lab.masks import MaskSet
from sparsity_lab.models import create_model
from sparsity_lab.store import ResultsStore

SMOKE = TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=4, batch_size=128,
                      lr_schedule="constant", grad_clip=None)
PRUNABLE = 64 * 300 + 300 * 100 + 100 * 10  # lenet300_100 on 8x8 digits


def test_asni1_tracks_the_sigmoid_schedule_and_stores_concentration_points(tmp_path):
    cfg = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=SMOKE, histogram_bins=40)
    records = experiments.run(cfg, store=ResultsStore(tmp_path), device="cpu", progress=False).records
    target = records[records.metric == "target_sparsity"].set_index("iteration").value
    realised = records[(records.metric == "sparsity") & (records.scope == "global")].set_index("iteration").value
    assert len(target) == 4
    for t in target.index:  # within one weight of s(t) at every epoch
        assert abs(realised[t] - target[t]) * PRUNABLE / 100 <= 1.0
    assert realised.is_monotonic_increasing
    final = records[records.stage == "final"]
    for layer, group in final[final.scope == "layer"].groupby("group"):
        values = group.set_index("metric").value
        c_minus, c_plus = group[group.metric == "c_minus"].value.item(), group[group.metric == "c_plus"].value.item()
        assert c_minus < 0 < c_plus
        hist = group[group.metric == "histogram"]
        assert hist.value.sum() == values["surviving"]  # every survivor lands in a bin
        threshold = records[records.metric == "threshold"].value.iloc[-1]
        assert abs(c_minus) > threshold and c_plus > threshold, layer  # the lobes sit outside the pruned gap
    assert final[final.metric == "learned_levels"].value.item() == 6


def test_two_level_init_has_exactly_two_values_per_layer():
    torch.manual_seed(0)
    model = create_model("lenet300_100", "digits")
    masks = MaskSet.for_model(model)
    for m in masks.values():
        m.copy_(torch.rand(m.shape) < 0.3)
    trained = {k: p.detach().clone() for k, p in model.named_parameters()}
    levels = level_values(trained, masks)
    _two_level_init(model, masks, trained, levels)
    for name, param in model.named_parameters():
        if name in masks:
            survivors = param[masks[name]]
            assert set(survivors.unique().tolist()) <= {_float32(v) for v in levels[name]}
            assert torch.equal(torch.sign(survivors), torch.sign(trained[name][masks[name]]))
            assert (param[~masks[name]] == 0).all()
        elif name.endswith("bias"):
            assert (param == 0).all()


def _float32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


def test_asni2_variants_retrain_under_the_asni1_mask(tmp_path):
    store = ResultsStore(tmp_path)
    base = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=SMOKE)
    parent = experiments.run(base, store=store, device="cpu", progress=False)
    child = experiments.run(AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=SMOKE, variant="asni2"),
                            store=store, device="cpu", progress=False)
    sparsity = child.records[(child.records.metric == "sparsity") & (child.records.scope == "global")].value
    final_parent = parent.records[(parent.records.metric == "sparsity") & (parent.records.scope == "global")]
    assert (sparsity == final_parent.value.iloc[-1]).all()  # the mask is fixed during ASNI-II retraining
    accuracy = child.records[child.records.metric == "accuracy"].value
    assert accuracy.iloc[-1] > 0.5  # real learning on real digits (10 classes: chance is 0.1)


def test_a_complete_run_drops_its_resume_only_trainer_state(trainings, tmp_path):
    """The per-epoch trainer state exists while the run can be interrupted; once complete it is gone
    (file and manifest entry), the run still verifies, loads and is reused without training."""
    import json

    store = ResultsStore(tmp_path)
    cfg = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=SMOKE)
    run_id = cfg.run_id
    seen: list[bool] = []
    original = store.save_step

    def spy(rid, step, records, tensors=None):  # the trainer artifact is there during the run
        seen.append((store.run_dir(rid) / "artifacts" / "trainer.safetensors").exists())
        return original(rid, step, records, tensors)

    store.save_step = spy
    experiments.run(cfg, store=store, device="cpu", progress=False)
    assert seen[1:] and all(seen[1:])  # saved after each epoch, so present from the second step on
    artifacts = store.run_dir(run_id) / "artifacts"
    assert not (artifacts / "trainer.safetensors").exists() and (artifacts / "final.safetensors").exists()
    files = json.loads((store.run_dir(run_id) / "manifest.json").read_text())["files"]
    assert "artifacts/trainer.safetensors" not in files and "artifacts/final.safetensors" in files
    assert store.status(run_id) == "complete" and store.load_artifact(run_id, "final") is not None
    before = trainings()
    assert experiments.run(cfg, store=store, device="cpu", progress=False).reused
    assert trainings() == before
    assert store.drop_artifact(run_id, "trainer") is False  # nothing left to drop
