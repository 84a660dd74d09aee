"""Estimated training time of a run: ``report --plan``'s GPU-hours and the sweep's longest-jobs-first order.

A run trains ``training_epochs(config)`` epochs in ``trainings(config)`` separate trainings (docs/methods.md
§3: T + 1 trainings of E epochs for an iterative run; §4: one training of T epochs for ASNI). Its estimate is

    seconds = epochs · s_epoch(model, dataset) · (train_subset / training examples) + trainings · PER_TRAINING_SECONDS

with ``s_epoch`` from :data:`SECONDS_PER_EPOCH`, measured with the engine (CUDA graphs on, batch 250) on
:data:`DEVICE`. The estimate is for that device only; the sweep uses it just to rank jobs, for which the
relative cost of two runs is what matters. Update the table after new measurements (cite the JSON).
It imports only the engine's settings (for the auto-compile threshold): ``sweep`` imports it, and must not pull in
the report or the figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sparsity_lab.engine.settings import AUTO_COMPILE_MIN_STEPS

#: The device the speeds below were measured on.
DEVICE = "NVIDIA H100 80GB HBM3"
_ENGINE_JSON = "benchmarks/results/engine-nvidia-h100-80gb-hbm3.json"
_CNN_JSON = "benchmarks/results/engine-h100-cnn-issue12.json"
_RESNET_JSON = "benchmarks/results/engine-h100-resnet18-issue12.json"

#: Seconds per training epoch of one run on :data:`DEVICE`, per (model, dataset): (seconds, source).
#: Data of the same shape share a speed (see :data:`SAME_SHAPE`), so mnist covers fashionmnist.
SECONDS_PER_EPOCH: dict[tuple[str, str], tuple[float, str]] = {
    ("cnn", "cifar10"): (0.337, f"{_CNN_JSON} (cnn engine+graphs, CIFAR-shaped 50,000 x 3x32x32)"),
    ("resnet18", "cifar10"): (1.05, f"{_RESNET_JSON} (resnet18 engine+graphs, CIFAR-shaped)"),
    ("mlp", "mnist"): (0.0495, f"{_ENGINE_JSON} (mlp engine+graphs, MNIST-shaped 60,000 x 1x28x28)"),
    ("lenet300_100", "mnist"): (0.0511, f"{_ENGINE_JSON} (lenet300_100 engine+graphs, MNIST-shaped)"),
    # the CIFAR-shaped cnn scaled by images x pixels, 60,000·28² / (50,000·32²) = 0.92; whole FashionMNIST
    # runs (evaluation and pruning included) took 0.34 s per epoch on an H200 at E = 10
    # (benchmarks/results/sweep-scaling-2xh200-E10.json)
    ("cnn", "mnist"): (0.31, f"{_CNN_JSON} (cnn, CIFAR-shaped 0.337 s scaled by images x pixels, 0.92)"),
    # figure 12's gpu runs: the dense model's wall time over E at E = 6 and 12 (6.82 s, 13.55 s)
    ("resnet18", "mnist"): (1.13, "benchmarks/results/resnet18-fashionmnist-dense-epochs-h100.json (resnet18 "
                                  "engine+graphs, FashionMNIST 60,000 x 1x28x28, batch 250)"),
}
#: Seconds per epoch when the engine compiles the model (EngineOptions.compile 'auto' does for conv models
#: on CUDA when one training runs >= AUTO_COMPILE_MIN_STEPS steps, e.g. the paper's 200 CIFAR epochs).
COMPILED_SECONDS_PER_EPOCH: dict[tuple[str, str], tuple[float, str]] = {
    ("cnn", "cifar10"): (0.226, f"{_CNN_JSON} (cnn engine+compile+graphs)"),
    ("resnet18", "cifar10"): (0.867, f"{_RESNET_JSON} (resnet18 engine+compile+graphs)"),
}
#: Datasets with another's shape and size (same speed).
SAME_SHAPE = {"fashionmnist": "mnist", "cifar100": "cifar10"}
#: Used for a (model, dataset) without an entry.
DEFAULT_SECONDS_PER_EPOCH = 0.15
#: Fixed cost of one training besides its epochs (evaluation passes, CUDA-graph capture, pruning, PQI
#: measures, store writes): the intercept of docs/figures.md "Profiles" (FashionMNIST cnn, 1.1 / 1.8 /
#: 3.4 s per pruning iteration at E = 3 / 5 / 10 on one H200: 0.33 s per epoch + 0.11 s).
PER_TRAINING_SECONDS = 0.11


def describe_source() -> str:
    """One line saying where the speeds come from (printed under ``report --plan``'s table)."""
    return (f"speeds measured on one {DEVICE} with the engine (sparsity_lab/sweep/costs.py SECONDS_PER_EPOCH, from "
            f"benchmarks/results/), compiled speeds for trainings of >= {AUTO_COMPILE_MIN_STEPS} steps, plus "
            f"{PER_TRAINING_SECONDS} s per training")


def training_epochs(config: Any) -> int:
    """Epochs one run trains: (T + 1) · E for an iterative run (docs/methods.md §3), T for ASNI (§4),
    none for a run that only prunes stored weights (ASNI's one-shot variants)."""
    if str(getattr(config, "variant", "")).startswith("oneshot_"):
        return 0
    epochs = int(config.train.epochs)
    return (int(config.iterations) + 1) * epochs if config.kind == "iterative" else epochs


def trainings(config: Any) -> int:
    """Separate trainings of one run: T + 1 for an iterative run, one for ASNI, none for one-shot variants."""
    if training_epochs(config) == 0:
        return 0
    return int(config.iterations) + 1 if config.kind == "iterative" else 1


def seconds_per_epoch(model: str | None, dataset: str | None, compiled: bool = False) -> float:
    """Measured seconds per epoch of ``model`` on ``dataset`` (or a same-shape dataset), else the default;
    ``compiled``: the torch.compile speed where one was measured."""
    key = str(dataset or "").lower()
    for name in (key, SAME_SHAPE.get(key)):
        if compiled and (model, name) in COMPILED_SECONDS_PER_EPOCH:
            return COMPILED_SECONDS_PER_EPOCH[(model, name)][0]
        if (model, name) in SECONDS_PER_EPOCH:
            return SECONDS_PER_EPOCH[(model, name)][0]
    return DEFAULT_SECONDS_PER_EPOCH


def _auto_compiled(config: Any) -> bool:
    """Whether the engine's 'auto' compile applies: one training runs >= AUTO_COMPILE_MIN_STEPS steps."""
    try:
        from sparsity_lab.data.info import train_size

        examples = train_size(config.dataset) * _subset_fraction(config)
        return int(config.train.epochs) * math.ceil(examples / int(config.train.batch_size)) >= AUTO_COMPILE_MIN_STEPS
    except (ValueError, KeyError, AttributeError, TypeError):
        return False


def _subset_fraction(config: Any) -> float:
    subset = getattr(config, "train_subset", 0) or 0
    if not subset:
        return 1.0
    try:
        from sparsity_lab.data.info import train_size

        return min(1.0, subset / train_size(config.dataset))
    except (ValueError, KeyError, AttributeError):
        return 1.0


def estimate_seconds(config: Any) -> float:
    """Estimated seconds one run trains on :data:`DEVICE` (module docstring); configs without a model or
    dataset (test doubles) get the default speed."""
    speed = seconds_per_epoch(getattr(config, "model", None), getattr(config, "dataset", None),
                              compiled=_auto_compiled(config))
    return training_epochs(config) * speed * _subset_fraction(config) + trainings(config) * PER_TRAINING_SECONDS


def estimate_job_seconds(configs: Iterable[Any]) -> float:
    """Estimated seconds of one sweep job: the sum over its configs. For a batched seed group this is an upper
    bound (one vmapped ensemble of N fully connected models took 1.5-2x one model's time on the H100,
    benchmarks/README.md), so a group is ranked early, which is the safe side for longest-jobs-first."""
    return sum(estimate_seconds(c) for c in configs)
