"""ASNI sigmoid sparsity schedule (docs/methods.md §4)."""

from __future__ import annotations

import math

import pytest
import torch

from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.asni_schedule import asni_epoch_fraction, asni_prune_count, asni_target_sparsity
from sparsity_lab.rules.prune import magnitude_prune

LENET = {"s_max": 98.0, "kappa": 5.0, "total_epochs": 50}


def test_target_sparsity_known_values():
    assert asni_target_sparsity(48, **LENET) == pytest.approx(97.02, abs=0.01)
    assert asni_target_sparsity(25, **LENET) == pytest.approx(49.0)  # s(τ·T) = S_max / 2
    assert asni_target_sparsity(0, **LENET) / 98.0 == pytest.approx(1 / (1 + math.exp(5)))  # ≈ 0.7 % of S_max
    values = [asni_target_sparsity(t, **LENET) for t in range(50)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert asni_target_sparsity(10, s_max=90, kappa=2, total_epochs=20, tau=0.25) == pytest.approx(
        90 / (1 + math.exp(-(10 - 5) / 2)))


def test_epoch_fraction():
    assert asni_epoch_fraction(50.0, 0.0) == pytest.approx(50.0)
    assert asni_epoch_fraction(75.0, 50.0) == pytest.approx(50.0)
    assert asni_epoch_fraction(97.02, 96.0) == pytest.approx(100 * 1.02 / 4.0)
    with pytest.raises(ValueError, match="s_prev"):
        asni_epoch_fraction(100.0, 100.0)


@pytest.mark.parametrize("n", [1_000, 10_007])
def test_realised_sparsity_tracks_schedule_within_one_weight(n):
    w = torch.randn(n, generator=torch.Generator().manual_seed(0))
    masks = MaskSet({"w": torch.ones(n, dtype=torch.bool)})
    s_prev = 0.0
    for t in range(LENET["total_epochs"]):
        w = w + 0.01 * torch.randn(n)  # the network trains between prunings
        zeros = n - masks.num_remaining()
        c = asni_prune_count(t, n_total=n, n_zero_now=zeros, **LENET)
        s_t = asni_target_sparsity(t, **LENET)
        assert c == pytest.approx(asni_epoch_fraction(s_t, s_prev) / 100 * (n - zeros), abs=1.0)
        masks = magnitude_prune({"w": w}, masks, "global", {"all": c})
        assert abs((n - masks.num_remaining()) - s_t * n / 100) <= 1.0
        s_prev = s_t


def test_prune_count_never_negative_and_keeps_one():
    assert asni_prune_count(0, n_total=100, n_zero_now=50, **LENET) == 0
    assert asni_prune_count(1000, n_total=10, n_zero_now=0, s_max=100.0, kappa=1.0, total_epochs=10) == 9


@pytest.mark.parametrize("bad,msg", [({"s_max": 101}, "s_max"), ({"kappa": 0}, "kappa"),
                                     ({"total_epochs": 0}, "total_epochs"), ({"tau": 1.5}, "tau")])
def test_schedule_validation(bad, msg):
    with pytest.raises(ValueError, match=msg):
        asni_target_sparsity(3, **{**LENET, **bad})
