"""Registries of optimizers and learning-rate schedules (docs/methods.md §3, §4).

The schedule is a pure function of the epoch: the LR of epoch e (0-based) is `lr * factor(e)`, set once at
the start of the epoch, so a resumed run needs only its epoch counter. "cosine" is the SAP reference's
`CosineAnnealingLR(T_max=epochs)` stepped once per epoch: factor(e) = (1 + cos(pi * e / E)) / 2, which
starts at 1 and would reach 0 at e = E (the last trained epoch, E - 1, uses (1 + cos(pi (E-1)/E)) / 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .settings import TrainSettings

OptimizerBuilder = Callable[[Iterable[torch.Tensor], "TrainSettings", dict], torch.optim.Optimizer]


def _sgd(params: Iterable[torch.Tensor], s: TrainSettings, impl: dict) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=impl.pop("lr", s.lr), momentum=s.momentum, nesterov=s.nesterov and s.momentum > 0,
        weight_decay=s.weight_decay, **impl,
    )


def _adam(params: Iterable[torch.Tensor], s: TrainSettings, impl: dict) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=impl.pop("lr", s.lr), betas=s.betas, weight_decay=s.weight_decay, **impl)


def _adamw(params: Iterable[torch.Tensor], s: TrainSettings, impl: dict) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=impl.pop("lr", s.lr), betas=s.betas, weight_decay=s.weight_decay, **impl)


OPTIMIZERS: dict[str, OptimizerBuilder] = {"sgd": _sgd, "adam": _adam, "adamw": _adamw}


def _cosine(epoch: int, s: TrainSettings) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(epoch, s.epochs) / s.epochs))


def _step(epoch: int, s: TrainSettings) -> float:
    return s.step_gamma ** sum(1 for m in s.step_milestones if epoch >= m)


def _constant(epoch: int, s: TrainSettings) -> float:
    return 1.0


SCHEDULES: dict[str, Callable[[int, TrainSettings], float]] = {
    "cosine": _cosine,
    "step": _step,
    "constant": _constant,
}


def lr_at(epoch: int, settings: TrainSettings) -> float:
    """Learning rate used during epoch `epoch` (0-based)."""
    return settings.lr * SCHEDULES[settings.lr_schedule](epoch, settings)


def build_optimizer(
    params: Iterable[torch.Tensor], settings: TrainSettings, *, device: torch.device, impl: str = "auto",
    graph_safe: bool = False,
) -> torch.optim.Optimizer:
    """Build `settings.optimizer` over `params`.

    impl: 'fused' | 'foreach' | 'loop' | 'auto' (fused on CUDA, foreach elsewhere). `graph_safe` makes the
    optimizer replayable inside a CUDA graph: fused kernels, a device-tensor LR and capturable state.
    """
    if impl == "auto":
        impl = "fused" if device.type == "cuda" else "foreach"
    kwargs: dict = {"fused": True} if impl == "fused" else {"foreach": impl == "foreach"}
    if graph_safe:
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got device={device}")
        kwargs = {"fused": True, "lr": torch.tensor(settings.lr, device=device)}
        if settings.optimizer in ("adam", "adamw"):
            kwargs["capturable"] = True
    return OPTIMIZERS[settings.optimizer](params, settings, kwargs)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's LR in place (a tensor LR is filled, keeping CUDA-graph pointers valid)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
