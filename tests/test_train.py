"""MaskedTrainer and TrainSettings (docs/methods.md §2-§4): the masked-step invariants, exact optimizer/clip
math against hand computations, schedules in closed form, determinism and resumability on CPU."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import random_masks
from torch import nn

from sparsity_lab.data import load_dataset
from sparsity_lab.engine.optim import lr_at
from sparsity_lab.engine.trainer import MaskedTrainer, TrainSettings
from sparsity_lab.models import create_model

FAST = TrainSettings(epochs=3, batch_size=128, lr=0.05)


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("synthetic:mnist:512", device="cpu")


def mlp(data, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("mlp", data.info)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------- settings
def test_defaults_are_the_sap_protocol():
    s = TrainSettings()
    assert (s.optimizer, s.lr, s.momentum, s.nesterov, s.weight_decay) == ("sgd", 0.1, 0.9, True, 5e-4)
    assert (s.epochs, s.batch_size, s.lr_schedule, s.grad_clip) == (200, 250, "cosine", 1.0)
    assert s.validate() is s
    assert all(TrainSettings.help().values()), "every field needs a one-line help"


@pytest.mark.parametrize("field, value, allowed", [
    ("optimizer", "rmsprop", "'sgd'"), ("lr_schedule", "linear", "'cosine'"), ("amp", "fp16", "'bf16'"),
    ("lr", 0.0, "> 0"), ("epochs", 0, ">= 1"), ("batch_size", 2.5, "integer"), ("momentum", 1.0, "[0, 1)"),
    ("weight_decay", -1e-4, ">= 0"), ("grad_clip", 0.0, "> 0 or None"), ("step_milestones", (5, 3), "increasing"),
    ("step_gamma", -0.1, "> 0"), ("eval_batch_size", 0, ">= 1"), ("betas", (0.9, 1.0), "[0, 1)"),
])
def test_validate_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(ValueError) as err:
        TrainSettings(**{field: value}).validate()
    msg = str(err.value)
    assert field in msg and repr(value) in msg and allowed in msg


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="nesterov"):
        TrainSettings(momentum=0.0).validate()
    TrainSettings(momentum=0.0, nesterov=False).validate()


def test_schedules_closed_forms():
    cos = TrainSettings(lr=0.2, epochs=10)
    assert [lr_at(e, cos) for e in (0, 5, 10)] == pytest.approx([0.2, 0.1, 0.0], abs=1e-12)
    assert lr_at(3, cos) == pytest.approx(0.1 * (1 + math.cos(math.pi * 3 / 10)))
    step = TrainSettings(lr=1.0, lr_schedule="step", step_milestones=(2, 4), step_gamma=0.5)
    assert [lr_at(e, step) for e in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert lr_at(7, TrainSettings(lr=0.3, lr_schedule="constant")) == 0.3


# ------------------------------------------------------------------------------------------- masked step
@pytest.mark.parametrize("settings", [
    TrainSettings(epochs=2, batch_size=128, lr=0.05),  # SGD + Nesterov + weight decay
    TrainSettings(epochs=2, batch_size=128, lr=0.05, nesterov=False, grad_clip=None),
    TrainSettings(epochs=2, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=1e-3),
    TrainSettings(epochs=2, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.1),
], ids=["sgd-nesterov", "sgd-noclip", "adam-l2", "adamw"])
def test_pruned_weights_and_optimizer_state_stay_exactly_zero(mnist, settings):
    model = mlp(mnist)
    masks = random_masks(model, 1)
    trainer = MaskedTrainer(model, masks, mnist, settings, seed=0)
    trainer.fit()
    params = dict(model.named_parameters())
    for name, m in masks.items():
        assert torch.count_nonzero(params[name][~m]) == 0
        assert torch.count_nonzero(params[name][m]) == m.sum()  # survivors were trained, not zeroed
        for value in trainer.optimizer.state[params[name]].values():
            if value.shape == m.shape:
                assert torch.count_nonzero(value[~m]) == 0


def test_one_step_matches_hand_computed_masked_clipped_update():
    """Full-batch SGD step: w1 = w0 - lr * clip(mask*g) (clip norm over surviving entries only), then x mask."""
    data = load_dataset("synthetic:mnist:64", device="cpu")
    model = mlp(data)
    masks = random_masks(model, 2)
    masks.apply_(model)
    start = copy.deepcopy(model)
    s = TrainSettings(epochs=1, batch_size=64, lr=0.5, momentum=0.0, nesterov=False, weight_decay=0.0,
                      lr_schedule="constant", grad_clip=0.05)
    trainer = MaskedTrainer(model, masks, data, s, seed=0)
    trainer.train_epoch()

    x, y = data.get_batch("train", torch.arange(64))
    F.cross_entropy(start(x), y).backward()
    grads = {n: p.grad * masks[n] if n in masks else p.grad for n, p in start.named_parameters()}
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))
    assert norm > s.grad_clip  # the clip is active, so its norm matters
    coef = s.grad_clip / (norm + 1e-6)
    for name, p in model.named_parameters():
        expected = start.get_parameter(name).double() - s.lr * coef * grads[name].double()
        torch.testing.assert_close(p.double(), expected, rtol=1e-5, atol=1e-6)


def test_set_masks_prunes_weights_and_optimizer_state(mnist):
    model = mlp(mnist)
    trainer = MaskedTrainer(model, None, mnist, FAST, seed=0)
    trainer.train_epoch()
    momentum = trainer.optimizer.state[model.fc1.weight]["momentum_buffer"]
    assert torch.count_nonzero(momentum) > 0.9 * momentum.numel()
    masks = random_masks(model, 3, keep=0.3)
    trainer.set_masks(masks)
    assert torch.count_nonzero(model.fc1.weight[~masks["fc1.weight"]]) == 0
    assert torch.count_nonzero(momentum[~masks["fc1.weight"]]) == 0
    trainer.train_epoch()
    assert torch.count_nonzero(model.fc1.weight[~masks["fc1.weight"]]) == 0


def test_bad_mask_names_and_shapes_are_rejected(mnist):
    model = mlp(mnist)
    with pytest.raises(ValueError, match="nope.weight"):
        MaskedTrainer(model, {"nope.weight": torch.ones(3, 3, dtype=torch.bool)}, mnist, FAST, seed=0)
    with pytest.raises(ValueError, match="fc1.weight"):
        MaskedTrainer(model, {"fc1.weight": torch.ones(3, 3, dtype=torch.bool)}, mnist, FAST, seed=0)


# ------------------------------------------------------------------------------------------- runs
def test_same_seed_bit_identical_and_other_seed_differs(mnist):
    def run(seed: int) -> dict[str, torch.Tensor]:
        model = mlp(mnist)
        MaskedTrainer(model, random_masks(model, 0), mnist, FAST, seed=seed).fit()
        return weights(model)

    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_resume_from_state_dict_is_bit_identical(mnist):
    model = mlp(mnist)
    masks = random_masks(model, 0)
    init = copy.deepcopy(model)
    full = MaskedTrainer(model, masks, mnist, FAST, seed=3)
    full.fit(epochs=1)
    saved = full.state_dict()
    full.fit()  # the remaining two epochs
    resumed_model = copy.deepcopy(init)
    resumed = MaskedTrainer(resumed_model, masks, mnist, FAST, seed=3)
    resumed.load_state_dict(saved)
    assert resumed.epoch == 1
    records = resumed.fit()
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(torch.equal(v, resumed_model.state_dict()[k]) for k, v in model.state_dict().items())


def test_fit_records_schedule_eval_and_early_stop(mnist):
    model = mlp(mnist)
    trainer = MaskedTrainer(model, random_masks(model, 0), mnist, FAST, seed=0)
    seen = []
    records = trainer.fit(eval_split="test", on_epoch_end=lambda t, r: seen.append(r["epoch"]) or r["epoch"] == 1)
    assert seen == [0, 1] and len(records) == 2 and trainer.epoch == 2
    assert [r["lr"] for r in records] == pytest.approx([lr_at(e, FAST) for e in (0, 1)])
    for r in records:
        assert {"loss", "accuracy", "lr", "seconds", "test_loss", "test_accuracy"} <= set(r)
        assert 0.0 <= r["accuracy"] <= 1.0 and r["seconds"] > 0
    assert records[1]["loss"] < records[0]["loss"]  # it learns
    assert trainer.fit() and trainer.epoch == FAST.epochs  # fit() runs only the remaining epochs
    assert trainer.fit() == []


def test_skip_epochs_moves_schedule(mnist):
    model = mlp(mnist)
    trainer = MaskedTrainer(model, None, mnist, FAST, seed=0)
    trainer.skip_epochs(2)
    assert trainer.train_epoch()["lr"] == pytest.approx(lr_at(2, FAST))


def test_evaluate_matches_manual_computation(mnist):
    model = mlp(mnist)
    trainer = MaskedTrainer(model, random_masks(model, 0), mnist, FAST, seed=0)
    trainer.train_epoch()
    result = trainer.evaluate("test")
    x, y = mnist.get_batch("test", torch.arange(mnist.num_examples("test")))
    with torch.no_grad():
        logits = model.eval()(x)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert result["accuracy"] == pytest.approx((logits.argmax(1) == y).double().mean().item())


def test_epoch_loss_is_mean_over_examples_of_the_pre_step_losses():
    """With lr -> tiny, the epoch loss equals the model's mean loss over the training set."""
    data = load_dataset("synthetic:mnist:300", device="cpu")  # 300 = 2 full batches + a short one
    model = mlp(data)
    start = copy.deepcopy(model)
    s = TrainSettings(epochs=1, batch_size=128, lr=1e-12, momentum=0.0, nesterov=False, weight_decay=0.0)
    record = MaskedTrainer(model, None, data, s, seed=0).train_epoch()
    x, y = data.get_batch("train", torch.arange(300))
    with torch.no_grad():
        logits = start(x)
    assert record["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert record["accuracy"] == pytest.approx((logits.argmax(1) == y).double().mean().item())


def test_batchnorm_conv_model_with_augmentation_trains_deterministically():
    data = load_dataset("synthetic:cifar10:96", device="cpu")

    def run() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = TinyConvBN()
        s = TrainSettings(epochs=2, batch_size=32, lr=0.05)
        MaskedTrainer(model, random_masks(model, 0), data, s, seed=5).fit()
        return weights(model)

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["bn.num_batches_tracked"]) == 2 * 3  # 96 / 32 steps per epoch, 2 epochs


def test_state_dict_is_a_snapshot(mnist):
    model = mlp(mnist)
    trainer = MaskedTrainer(model, None, mnist, FAST, seed=0)
    trainer.train_epoch()
    saved = trainer.state_dict()
    before = saved["model"]["fc1.weight"].clone()
    trainer.train_epoch()
    assert torch.equal(saved["model"]["fc1.weight"], before)
    assert saved["epoch"] == 1 and saved["scheduler"] == {"name": "cosine", "epoch": 1}


class TinyConvBN(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))


def test_engine_options_validate_and_cuda_only_graphs(mnist):
    from sparsity_lab.engine.trainer import EngineOptions

    with pytest.raises(ValueError, match="cuda_graphs"):
        EngineOptions(cuda_graphs="yes").validate()
    with pytest.raises(ValueError, match="needs a CUDA device"):
        MaskedTrainer(mlp(mnist), None, mnist, FAST, seed=0, options=EngineOptions(cuda_graphs="on"))
    trainer = MaskedTrainer(mlp(mnist), None, mnist, FAST, seed=0)  # "auto": no graphs on the CPU
    assert not trainer.graphs and not trainer.channels_last
