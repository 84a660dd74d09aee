"""Pieces every runner shares: devices, seeded model construction, tidy records, weight selection."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from sparsity_lab.errors import UserError
from sparsity_lab.masks import MASK_PREFIX, MaskSet, in_model_order, split_weights_and_masks
from sparsity_lab.models import create_model
from sparsity_lab.store.errors import StoreError


@dataclass
class RunResult:
    """What ``experiments.run`` returns: the run id, its tidy records and whether it was reused."""

    run_id: str
    records: pd.DataFrame
    reused: bool


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else CPU; a device this machine lacks is a ``UserError``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    allowed = "cpu" + (f", cuda, cuda:0 .. cuda:{n_cuda - 1}" if n_cuda else " (no CUDA device here)")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"device {str(device)!r} is not a torch device: allowed {allowed}") from None
    if resolved.type == "cpu" or (resolved.type == "cuda" and (resolved.index or 0) < n_cuda):
        return resolved
    if resolved.type == "mps" and torch.backends.mps.is_available():
        return resolved
    raise UserError(f"device {str(device)!r} is not available on this machine: allowed {allowed}")


def seeded_model(name: str, info: Any, seed: int, device: torch.device) -> nn.Module:
    """The model of ``name`` initialised from ``seed`` alone (same θ₀ on CPU and GPU)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(name, info)
    return model.to(device)


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of every parameter and buffer (what artifacts store)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def mask_tensors(masks: MaskSet) -> dict[str, torch.Tensor]:
    return {f"{MASK_PREFIX}{k}": v.to("cpu", torch.uint8).contiguous() for k, v in masks.items()}


def masks_from_tensors(tensors: Mapping[str, torch.Tensor], device: torch.device, model: nn.Module) -> MaskSet:
    """The ``mask.<name>`` tensors of a stored step or artifact as a MaskSet in ``model``'s parameter order."""
    _, masks = split_weights_and_masks(tensors)
    if not masks:
        raise StoreError(f"the stored tensors hold no masks (keys: {sorted(tensors)[:5]}); a pruning step stores "
                         f"one '{MASK_PREFIX}<parameter>' tensor per prunable parameter")
    return MaskSet({k: v.to(device) for k, v in masks.items()}).in_model_order(model)


def stored_state(tensors: Mapping[str, torch.Tensor] | None, model: nn.Module) -> dict[str, torch.Tensor] | None:
    """A state dict read back from the store (θ₀, rewind point, One Shot reference, final weights) in
    ``model``'s order; None stays None."""
    return None if tensors is None else in_model_order(tensors, model)


class WeightSelector:
    """Keeps the weights that pruning ranks: the last epoch, or the best on validation / test (docs/methods.md §3)."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.best_accuracy = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def split(self) -> str | None:
        return {"best_val": "val", "best_test": "test"}.get(self.rule)

    def observe(self, model: nn.Module, accuracy: float) -> None:
        if accuracy > self.best_accuracy:
            self.best_accuracy = accuracy
            self.best_state = copy.deepcopy(model.state_dict())

    def restore_into(self, model: nn.Module) -> None:
        if self.split is not None and self.best_state is not None:
            model.load_state_dict(self.best_state)
