"""Tests of costs.py: the run-time estimate behind ``report --plan`` and the sweep's longest-jobs-first order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.sweep import costs


def test_iterative_run_costs_its_trainings_epochs_at_the_measured_speed() -> None:
    config = IterativeConfig(dataset="fashionmnist", model="cnn", iterations=3, train=TrainSettings(epochs=10))
    assert costs.training_epochs(config) == 4 * 10 and costs.trainings(config) == 4  # docs/methods.md §3
    speed = costs.SECONDS_PER_EPOCH[("cnn", "mnist")][0]  # FashionMNIST has MNIST's shape and size
    assert costs.seconds_per_epoch("cnn", "fashionmnist") == speed
    assert costs.estimate_seconds(config) == pytest.approx(40 * speed + 4 * costs.PER_TRAINING_SECONDS)
    half = IterativeConfig(dataset="fashionmnist", model="cnn", iterations=3, train=TrainSettings(epochs=10),
                           train_subset=30_000)
    assert costs.estimate_seconds(half) == pytest.approx(20 * speed + 4 * costs.PER_TRAINING_SECONDS)


def test_asni_one_training_and_one_shot_variants_cost_nothing_to_train() -> None:
    asni = AsniConfig(train=TrainSettings(epochs=50))
    assert costs.training_epochs(asni) == 50 and costs.trainings(asni) == 1
    assert costs.seconds_per_epoch("lenet300_100", "mnist") == costs.SECONDS_PER_EPOCH[("lenet300_100", "mnist")][0]
    oneshot = AsniConfig(variant="oneshot_global")
    assert costs.training_epochs(oneshot) == 0 and costs.estimate_seconds(oneshot) == 0.0


def test_unknown_pairs_get_the_default_and_jobs_sum_their_members() -> None:
    assert costs.seconds_per_epoch("wresnet28x8", "cifar10") == costs.DEFAULT_SECONDS_PER_EPOCH
    assert costs.seconds_per_epoch(None, None) == costs.DEFAULT_SECONDS_PER_EPOCH
    a = IterativeConfig(model="mlp", iterations=1, train=TrainSettings(epochs=2))
    b = IterativeConfig(model="mlp", iterations=5, train=TrainSettings(epochs=2))
    assert costs.estimate_job_seconds([a, b]) == pytest.approx(costs.estimate_seconds(a) + costs.estimate_seconds(b))
    assert costs.estimate_seconds(b) > costs.estimate_seconds(a)


def test_every_speed_cites_a_results_file_that_exists() -> None:
    root = Path(__file__).resolve().parents[1]
    for (model, dataset), (seconds, source) in costs.SECONDS_PER_EPOCH.items():
        assert seconds > 0, (model, dataset)
        path = source.split(" ")[0]
        assert path.startswith("benchmarks/results/") and (root / path).is_file(), source
    assert costs.DEVICE in costs.describe_source()


def test_costs_imports_nothing_heavy() -> None:
    """sweep.py imports costs: it must not pull in pipeline, the figures or pandas."""
    tree = ast.parse(Path(costs.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith(("sparsity_lab.report.pipeline", "sparsity_lab.figures", "pandas", "torch")) for m in names)
