"""One trainer per run (issue 12): `MaskedTrainer.restart` equals a fresh trainer, augmentation drawn once
per epoch equals drawing per batch, and on CUDA the captured graph (and a compiled model) are reused by
every training of a run. The CUDA tests skip on the CPU; they ran on the device (benchmarks/README.md)."""

from __future__ import annotations

import pytest
import torch
from helpers import random_masks
from torch import nn

from sparsity_lab.data import load_dataset
from sparsity_lab.engine.trainer import EngineOptions, MaskedTrainer, TrainSettings
from sparsity_lab.models import create_model

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs on the device machine)")


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def two_trainings(data, settings: TrainSettings, *, reuse: bool, device: str = "cpu",
                  options: EngineOptions | None = None) -> tuple[dict, list[dict]]:
    """Train cnn_tiny twice from the same start (as two pruning iterations do: rewind, new mask, train), with
    one trainer restarted or with a fresh trainer each time; the final weights and every epoch record."""
    torch.manual_seed(0)
    model = create_model("cnn_tiny", data.info).to(device)
    start = weights(model)
    records, trainer = [], None
    for t in range(2):
        model.load_state_dict(start)  # in place: rewinding keeps parameter storage
        masks = random_masks(model, t)
        if trainer is None or not reuse:
            trainer = MaskedTrainer(model, masks, data, settings, seed=3, device=device, options=options)
        else:
            trainer.restart(masks)
        records += [{k: v for k, v in r.items() if k != "seconds"} for r in trainer.fit()]
    return weights(model), records


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_restart_equals_a_fresh_trainer_on_cpu(optimizer):
    data = load_dataset("synthetic:cifar10:64", device="cpu")
    settings = TrainSettings(epochs=2, batch_size=16, lr=0.01 if optimizer == "adam" else 0.05, optimizer=optimizer)
    fresh_w, fresh_r = two_trainings(data, settings, reuse=False)
    reused_w, reused_r = two_trainings(data, settings, reuse=True)
    assert equal(fresh_w, reused_w)
    assert fresh_r == reused_r


def test_epoch_draws_give_the_batches_drawn_one_by_one():
    data = load_dataset("synthetic:cifar10:70", device="cpu")  # 70 = 4 batches of 16 + a short one of 6
    indices_a = data.batch_indices("train", 16, shuffle=True, generator=data.epoch_generator(1, 2))
    gen = data.epoch_generator(1, 2)
    indices_b = data.batch_indices("train", 16, shuffle=True, generator=gen)
    drawn = data.epoch_draws(indices_b, gen)
    gen_a = data.epoch_generator(1, 2)
    data.batch_indices("train", 16, shuffle=True, generator=gen_a)  # same stream position as indices_a
    for idx_a, idx_b, draws in zip(indices_a, indices_b, drawn):
        xa, ya = data.get_batch("train", idx_a, augment=True, generator=gen_a)
        xb, yb = data.get_drawn_batch("train", idx_b, *draws)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert len(drawn) == 5 and drawn[-1][0].shape == (2, 6)


def test_up_front_draws_train_exactly_like_per_batch_draws(monkeypatch):
    data = load_dataset("synthetic:cifar10:64", device="cpu")
    settings = TrainSettings(epochs=2, batch_size=16, lr=0.05)
    up_front = two_trainings(data, settings, reuse=True)
    monkeypatch.setattr(MaskedTrainer, "draw_epoch_up_front", False)
    per_batch = two_trainings(data, settings, reuse=True)
    assert equal(up_front[0], per_batch[0]) and up_front[1] == per_batch[1]


def test_no_augmentation_datasets_draw_nothing():
    data = load_dataset("synthetic:mnist:40", device="cpu")
    indices = data.batch_indices("train", 16)
    assert data.epoch_draws(indices, torch.Generator()) == [(), (), ()]


# --------------------------------------------------------------------------------------------- CUDA
@CUDA
def test_graph_is_captured_once_per_run_and_matches_fresh_trainers(monkeypatch):
    from sparsity_lab.engine.steps import StepRunner

    data = load_dataset("synthetic:cifar10:512", device="cuda")
    settings = TrainSettings(epochs=2, batch_size=64, lr=0.05)
    fresh_w, fresh_r = two_trainings(data, settings, reuse=False, device="cuda")
    captures, real_capture = [], StepRunner._capture

    def counting(self, inputs):
        captures.append(1)
        return real_capture(self, inputs)

    monkeypatch.setattr(StepRunner, "_capture", counting)
    reused_w, reused_r = two_trainings(data, settings, reuse=True, device="cuda")
    assert len(captures) == 1, f"expected one capture for two trainings, got {len(captures)}"
    assert equal(fresh_w, reused_w), "restart + graph replay must be bit-identical to fresh trainers"
    assert fresh_r == reused_r


@CUDA
def test_graph_recaptures_when_a_parameter_gets_new_storage():
    data = load_dataset("synthetic:cifar10:256", device="cuda")
    torch.manual_seed(0)
    model = create_model("cnn_tiny", data.info).cuda()
    trainer = MaskedTrainer(model, random_masks(model, 0), data, TrainSettings(epochs=3, batch_size=64), seed=0)
    trainer.train_epoch()
    first = trainer.runner._graph
    with torch.no_grad():
        model.classifier.weight.data = model.classifier.weight.data.clone()  # new storage
    trainer.train_epoch()
    assert trainer.runner._graph is not first


@CUDA
def test_up_front_draws_inside_the_graph_equal_eager_per_batch_draws(monkeypatch):
    data = load_dataset("synthetic:cifar10:512", device="cuda")
    settings = TrainSettings(epochs=2, batch_size=64, lr=0.05)
    graphed = two_trainings(data, settings, reuse=True, device="cuda")
    monkeypatch.setattr(MaskedTrainer, "draw_epoch_up_front", False)
    eager = two_trainings(data, settings, reuse=True, device="cuda", options=EngineOptions(cuda_graphs="off"))
    assert equal(graphed[0], eager[0]) and graphed[1] == eager[1]


@CUDA
def test_compiled_step_is_reused_close_to_eager_and_keeps_pruned_weights_zero():
    """torch.compile + CUDA graph: one compilation for all trainings of a run; loss/accuracy within a stated
    tolerance of the eager engine (compiled kernels fuse and reorder float ops); masks exact."""
    from torch._dynamo.utils import counters

    data = load_dataset("synthetic:cifar10:512", device="cuda")
    eager_w, eager_r = two_trainings(data, TrainSettings(epochs=2, batch_size=64, lr=0.05), reuse=True,
                                     device="cuda")
    counters.clear()
    compiled = TrainSettings(epochs=2, batch_size=64, lr=0.05, compile=True)
    torch.manual_seed(0)
    model = create_model("cnn_tiny", data.info).cuda()
    start = weights(model)
    trainer, records = None, []
    for t in range(3):
        model.load_state_dict(start)
        masks = random_masks(model, t)
        if trainer is None:
            trainer = MaskedTrainer(model, masks, data, compiled, seed=3)
        else:
            trainer.restart(masks)
        records += trainer.fit()
        for name, mask in masks.items():
            assert torch.count_nonzero(dict(model.named_parameters())[name][~mask.cuda()]) == 0
        if t == 0:
            graphs_after_first = counters["stats"]["unique_graphs"]
    assert counters["stats"]["unique_graphs"] == graphs_after_first, "restart recompiled the model"
    for a, b in zip(eager_r, records[: len(eager_r)]):
        assert abs(a["loss"] - b["loss"]) < 0.05 and abs(a["accuracy"] - b["accuracy"]) < 0.05


# --------------------------------------------------------------------------------------------- compile policy
@pytest.mark.parametrize("device, conv, steps, value, expected", [
    ("cuda", True, 40_000, "auto", True),    # the paper's 200 CIFAR epochs of cnn/resnet18
    ("cuda", True, 2_400, "auto", False),    # a 10-epoch FashionMNIST training: compilation would not pay off
    ("cuda", False, 40_000, "auto", False),  # fully connected models gain nothing from compile
    ("cpu", True, 40_000, "auto", False),
    ("cpu", False, 10, "on", True),
    ("cuda", True, 40_000, "off", False),
])
def test_auto_compile_policy(device, conv, steps, value, expected):
    assert EngineOptions(compile=value).compile_on(torch.device(device), conv, steps) is expected


def test_compile_default_comes_from_the_environment_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("SPARSITY_LAB_COMPILE", "off")
    assert EngineOptions().compile == "off"
    monkeypatch.setenv("SPARSITY_LAB_COMPILE", "yes")
    with pytest.raises(ValueError, match=r"compile='yes'.*SPARSITY_LAB_COMPILE.*'auto', 'on', 'off'"):
        EngineOptions().validate()


def test_compile_modes_with_their_own_cuda_graphs_are_refused_inside_the_engine_graph():
    with pytest.raises(ValueError, match="reduce-overhead"):
        EngineOptions(compile_mode="reduce-overhead").compiled(nn.Linear(2, 2), graphs=True)


def test_cli_refuses_a_bad_compile_setting_in_one_line(monkeypatch, capsys, tmp_path):
    from sparsity_lab.cli import main as cli

    monkeypatch.setenv("SPARSITY_LAB_COMPILE", "fast")
    assert cli.main(["--results", str(tmp_path / "r"), "ls"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SPARSITY_LAB_COMPILE='fast'" in err and "auto, on, off" in err
    assert not (tmp_path / "r").exists()
