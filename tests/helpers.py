"""Small helpers shared by the engine tests."""

from __future__ import annotations

import torch
from torch import nn

from sparsity_lab.masks import MaskSet


def random_masks(model: nn.Module, seed: int, keep: float = 0.5) -> MaskSet:
    """A seeded random mask keeping about ``keep`` of every prunable weight."""
    g = torch.Generator().manual_seed(seed)
    masks = MaskSet.for_model(model)
    for name in masks:
        masks[name] = torch.rand(masks[name].shape, generator=g) < keep
    return masks
