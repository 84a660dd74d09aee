"""What `MaskedTrainer` and `BatchedTrainer` share: device/AMP/memory-format decisions, mask checks,
the per-epoch LR and batch order, the evaluation loop and `fit` (docs/methods.md §2-§3)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .divergence import EXPLODED_FACTOR, TrainingDiverged
from .optim import build_optimizer, lr_at, set_lr
from .settings import EngineOptions, TrainSettings
from .steps import StepRunner

AMP_DTYPES: dict[str, Callable[[torch.device], torch.dtype | None]] = {
    "auto": lambda device: torch.bfloat16 if device.type == "cuda" else None,
    "bf16": lambda device: torch.bfloat16,
    "off": lambda device: None,
}


def autocast_factory(amp: str, device: torch.device, cache: bool = True) -> Callable[[], AbstractContextManager]:
    """Context-manager factory: bf16 autocast when `amp` resolves to bf16 on `device`, else a no-op."""
    dtype = AMP_DTYPES[amp](device)
    return partial(torch.autocast, device.type, dtype=dtype or torch.float32, enabled=dtype is not None,
                   cache_enabled=cache)


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def check_masks(masks: Mapping[str, Tensor], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """ValueError naming the first mask whose name is not a model parameter or whose shape differs."""
    for name, mask in masks.items():
        if name not in shapes:
            raise ValueError(f"mask {name!r} names no parameter of the model; parameters: {', '.join(shapes)}")
        if tuple(mask.shape) != tuple(shapes[name]):
            raise ValueError(f"mask {name!r} has shape {tuple(mask.shape)} but the parameter has shape "
                             f"{tuple(shapes[name])}")


@torch.no_grad()
def zero_masked_state(optimizer: torch.optim.Optimizer, pairs: list[tuple[Tensor, Tensor]]) -> None:
    """Multiply every optimizer state tensor shaped like its parameter by the mask (momentum, Adam moments)."""
    for param, mask in pairs:
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, Tensor) and value.shape == param.shape:
                value.mul_(mask)


class EngineBase:
    """Settings, device, optimizer/step wiring, epoch bookkeeping and `fit` for the trainers."""

    def __init__(self, data: Any, settings: TrainSettings, *, device: str | torch.device | None,
                 progress: bool, options: EngineOptions | None, augment: bool) -> None:
        self.settings = settings.validate()
        self.options = (options or EngineOptions()).validate()
        self.device = torch.device(device) if device is not None else torch.device(data.device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.data = data.to(self.device)
        self.progress = progress
        self.augment = augment
        self.epoch = 0
        if self.device.type == "cuda" and self.options.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        self.graphs = self.options.graphs_on(self.device)
        self.autocast = autocast_factory(settings.amp, self.device, cache=not self.graphs)

    @property
    def augmenting(self) -> bool:
        """Whether training batches draw random augmentation (drawn per epoch on the CPU, applied in the step)."""
        return self.augment and self.data.info.augment != "none"

    def _build(self, params: list[Tensor], forward_loss: Callable, clip: Callable | None,
               state_tensors: Callable[[], list[Tensor]], units: tuple[int, ...], make_batch: Callable) -> None:
        self.optimizer = build_optimizer(params, self.settings, device=self.device,
                                         impl=self.options.optimizer_impl, graph_safe=self.graphs)
        self.runner = StepRunner(params=params, optimizer=self.optimizer, forward_loss=forward_loss, clip=clip,
                                 state_tensors=state_tensors, autocast=self.autocast, units=units,
                                 device=self.device, cuda_graphs=self.graphs, make_batch=make_batch)

    def skip_epochs(self, n: int) -> None:
        """Advance the epoch counter by n without training (late rewinding: resume the LR schedule and
        batch-order stream at epoch k after loading the epoch-k weights)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"skip_epochs(n={n!r}): n must be an integer >= 0")
        self.epoch += n

    def _check_finite(self) -> None:
        """Raise ``TrainingDiverged`` if this epoch's loss or any weight became non-finite, or the mean loss
        exploded (engine/divergence.py)."""
        limit = EXPLODED_FACTOR * math.log(max(2, self.data.info.num_classes))
        found = self.runner.divergences(self.epoch, self.data.num_examples("train"), limit)
        if found:
            raise TrainingDiverged(found)

    def _begin_epoch(self) -> tuple[float, float]:
        lr = lr_at(self.epoch, self.settings)
        set_lr(self.optimizer, lr)
        self.runner.begin_epoch()
        return lr, time.perf_counter()

    def _epoch_indices(self, seed: int) -> tuple[list[Tensor], torch.Generator]:
        """This epoch's batch order for `seed` and the generator that continues into augmentation."""
        gen = self.data.epoch_generator(seed, self.epoch)
        return self.data.batch_indices("train", self.settings.batch_size, shuffle=True, generator=gen), gen

    def _optimizer_state(self) -> dict:
        state = copy.deepcopy(self.optimizer.state_dict())  # a snapshot, not views of the live state
        for group in state["param_groups"]:
            if isinstance(group["lr"], Tensor):
                group["lr"] = float(group["lr"])
        return state

    def _load_optimizer_state(self, state: dict) -> None:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state)
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr  # keep our LR object (a device tensor when CUDA graphs are on)
        self.runner.invalidate()

    def _eval_batches(self, split: str):
        for idx in self.data.batch_indices(split, self.settings.eval_batch_size):
            yield self.data.get_batch(split, idx, augment=False)

    def train_epoch(self) -> Any:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def evaluate(self, split: str = "test") -> Any:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def fit(self, epochs: int | None = None, on_epoch_end: Callable[[Any, Any], bool | None] | None = None,
            eval_split: str | None = None) -> list:
        """Train `epochs` more epochs (default: the rest of settings.epochs); return the epoch records.

        eval_split ("test"/"val") adds `<split>_loss` / `<split>_accuracy` to each record.
        on_epoch_end(trainer, record) runs after each epoch (e.g. to prune with set_masks); returning True
        stops training early.
        """
        todo = self.settings.epochs - self.epoch if epochs is None else epochs
        records = []
        bar = tqdm(range(max(todo, 0)), disable=not self.progress, desc=type(self).__name__, leave=False)
        for _ in bar:
            record = self.train_epoch()
            if eval_split is not None:
                self._add_eval(record, eval_split)
            records.append(record)
            bar.set_postfix(self._postfix(record))
            if on_epoch_end is not None and on_epoch_end(self, record):
                break
        bar.close()
        return records

    def _add_eval(self, record: Any, split: str) -> None:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def _postfix(self, record: Any) -> dict:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError
