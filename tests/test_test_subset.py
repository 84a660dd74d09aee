"""`test_subset`: evaluate on a fixed subset of the test set, the same for every seed (docs/quick-retune.md)."""

from __future__ import annotations

import pytest
import torch

from sparsity_lab.config.configs import ConfigError, IterativeConfig
from sparsity_lab.data import load_dataset, num_test_examples
from sparsity_lab.experiments.iterative import load_run_data


def rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r.flatten().tolist()) for r in x}


def test_subset_is_fixed_and_drawn_from_the_test_set() -> None:
    full = load_dataset("digits")
    a = load_dataset("digits", test_subset=100, val_seed=0, train_subset=500)
    b = load_dataset("digits", test_subset=100, val_seed=7, train_subset=300, val_size=50)
    assert a.test_x.shape[0] == a.test_y.shape[0] == 100
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.test_y, b.test_y)  # independent of the run's seed
    assert rows(a.test_x) <= rows(full.test_x)
    assert len(rows(a.test_x)) == 100
    assert torch.equal(load_dataset("digits", test_subset=num_test_examples("digits")).test_y, full.test_y)


def test_bad_test_subset_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"test_subset=361 must be an integer in \[1, 360\]"):
        load_dataset("digits", test_subset=361)
    with pytest.raises(ConfigError, match=r"test_subset=361: allowed an integer in \[0, 360\]"):
        IterativeConfig(dataset="digits", test_subset=361).validate()
    with pytest.raises(ConfigError, match="test_subset=-1"):
        IterativeConfig(dataset="digits", test_subset=-1).validate()


def test_default_keeps_run_ids_and_runs_use_the_subset() -> None:
    assert "test_subset" not in IterativeConfig().canonical()
    assert IterativeConfig(model="cnn", iterations=30).run_id == "iterative_1768ade61b83"
    cfg = IterativeConfig(dataset="digits", test_subset=50, iterations=1)
    assert cfg.run_id != IterativeConfig(dataset="digits", iterations=1).run_id
    assert load_run_data(cfg, torch.device("cpu")).test_y.shape[0] == 50
    assert load_run_data(IterativeConfig(dataset="digits"), torch.device("cpu")).test_y.shape[0] == 360
