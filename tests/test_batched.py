"""BatchedTrainer (torch.func) against separate MaskedTrainer runs: same math per member (docs/methods.md §2-§3).

Tolerances (CPU, float32): vmapped matrix products and convolutions may sum in a different order than the
separate runs, so parameters agree to max |diff| < 1e-5 after an epoch (observed ~1e-8), losses to 1e-5
relative; pruned weights are exactly zero in both.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import random_masks
from torch import nn

from sparsity_lab.data import load_dataset
from sparsity_lab.engine.batched import BatchedTrainer, clip_per_member_
from sparsity_lab.engine.trainer import MaskedTrainer, TrainSettings
from sparsity_lab.masks import MaskSet
from sparsity_lab.models import create_model

SEEDS = [11, 12, 13]
WEIGHT_TOL = 1e-5


class TinyConvBN(nn.Module):
    """Conv-BN-ReLU-pool-linear: exercises stacked BatchNorm running statistics under vmap."""

    def __init__(self, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))


def members(build, n: int = 3) -> tuple[list[nn.Module], list[MaskSet]]:
    models = []
    for i in range(n):
        torch.manual_seed(100 + i)
        models.append(build())
    return models, [random_masks(m, i, keep=0.3 + 0.2 * i) for i, m in enumerate(models)]


def compare(data, build, settings: TrainSettings, epochs: int = 1) -> None:
    models, masks = members(build)
    separate = []
    for model, m, seed in zip(models, masks, SEEDS):
        trainer = MaskedTrainer(copy.deepcopy(model), m, data, settings, seed=seed)
        records = trainer.fit(epochs=epochs)
        separate.append((trainer, records))
    batched = BatchedTrainer([copy.deepcopy(m) for m in models], masks, data, settings, seeds=SEEDS)
    batched_records = batched.fit(epochs=epochs)
    trained = batched.unstack()
    evaluation = batched.evaluate("test")
    for i, ((trainer, records), model) in enumerate(zip(separate, trained)):
        ref = trainer.model.state_dict()
        for name, value in model.state_dict().items():
            diff = (value.double() - ref[name].double()).abs().max().item()
            assert diff < WEIGHT_TOL, f"member {i} {name}: max |diff| {diff}"
        for name, m in masks[i].items():
            assert torch.count_nonzero(model.get_parameter(name)[~m]) == 0
        assert batched_records[-1][i]["loss"] == pytest.approx(records[-1]["loss"], rel=1e-5)
        assert batched_records[-1][i]["accuracy"] == pytest.approx(records[-1]["accuracy"], abs=1e-9)
        ev = trainer.evaluate("test")
        assert evaluation[i]["loss"] == pytest.approx(ev["loss"], rel=1e-5)
        assert evaluation[i]["accuracy"] == pytest.approx(ev["accuracy"], abs=1e-9)


def test_mlp_sgd_members_match_separate_runs():
    data = load_dataset("synthetic:mnist:300", device="cpu")  # 2 full batches and a short one
    compare(data, lambda: create_model("mlp", data.info), TrainSettings(epochs=2, batch_size=128, lr=0.05))


def test_adam_members_match_separate_runs():
    data = load_dataset("synthetic:mnist:256", device="cpu")
    s = TrainSettings(epochs=1, batch_size=64, optimizer="adam", lr=1e-3, weight_decay=1e-4, grad_clip=0.5)
    compare(data, lambda: create_model("mlp", data.info), s)


def test_batchnorm_and_augmentation_members_match_separate_runs():
    data = load_dataset("synthetic:cifar10:96", device="cpu")  # CIFAR-shaped: random crop + flip per member
    assert data.info.augment == "crop_flip"
    compare(data, TinyConvBN, TrainSettings(epochs=2, batch_size=32, lr=0.05))


def test_clip_per_member_equals_torch_clip_on_each_member():
    torch.manual_seed(0)
    stacked = [torch.randn(4, 5, 3, requires_grad=True), torch.randn(4, 7, requires_grad=True)]
    for p in stacked:
        p.grad = torch.randn_like(p) * torch.tensor([0.01, 1.0, 10.0, 0.1]).view(4, *([1] * (p.dim() - 1)))
    singles = [[p.grad[i].clone().requires_grad_() for p in stacked] for i in range(4)]
    norms = clip_per_member_(stacked, 1.0)
    for i, params in enumerate(singles):
        leaves = [torch.zeros_like(g, requires_grad=True) for g in params]
        for leaf, g in zip(leaves, params):
            leaf.grad = g.detach().clone()
        total = torch.nn.utils.clip_grad_norm_(leaves, 1.0)
        assert norms[i].item() == pytest.approx(total.item(), rel=1e-6)
        for leaf, p in zip(leaves, stacked):
            torch.testing.assert_close(p.grad[i], leaf.grad)
    assert norms[0] < 1.0 and norms[2] > 1.0  # one member unclipped, one clipped


def test_set_masks_resume_and_errors():
    data = load_dataset("synthetic:mnist:256", device="cpu")
    models, masks = members(lambda: create_model("mlp", data.info))
    s = TrainSettings(epochs=2, batch_size=128, lr=0.05)
    trainer = BatchedTrainer([copy.deepcopy(m) for m in models], None, data, s, seeds=SEEDS)
    trainer.train_epoch()
    trainer.set_masks(masks)  # prune after an epoch: weights and momentum of pruned entries -> 0
    w = trainer.params["fc1.weight"]
    for i, m in enumerate(masks):
        assert torch.count_nonzero(w[i][~m["fc1.weight"]]) == 0
        assert torch.count_nonzero(trainer.optimizer.state[w]["momentum_buffer"][i][~m["fc1.weight"]]) == 0
    saved = trainer.state_dict()
    trainer.train_epoch()
    other = BatchedTrainer([copy.deepcopy(m) for m in models], None, data, s, seeds=SEEDS)
    other.load_state_dict(saved)
    other.train_epoch()
    assert all(torch.equal(trainer.params[k], other.params[k]) for k in trainer.params)
    with pytest.raises(ValueError, match="3 mask sets"):
        trainer.set_masks(masks[:2])
    with pytest.raises(ValueError, match="same architecture"):
        BatchedTrainer([models[0], TinyConvBN()], None, data, s, seeds=[0, 1])
    with pytest.raises(ValueError, match="one seed per model"):
        BatchedTrainer(models, None, data, s, seeds=[0])
