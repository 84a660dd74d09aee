"""`MaskedTrainer`: masked training and evaluation of one model (docs/methods.md §2-§4).

Per step: forward (bf16 autocast on CUDA, channels_last for conv models) -> cross-entropy -> backward
-> gradients x mask -> clip to global norm -> optimizer step (fused on CUDA) -> weights x mask, so
pruned weights and their optimizer state stay exactly zero. The epoch's batch order comes from
`data.epoch_generator(seed, epoch)`; the LR is set per epoch from the schedule (engine/optim.py).
Loss and accuracy are accumulated on the device and read once per epoch. CUDA graphs and torch.compile
are switchable (EngineOptions / TrainSettings.compile).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparsity_lab.engine.base import EngineBase, check_masks, has_conv, zero_masked_state
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.engine.settings import EngineOptions, TrainSettings
from sparsity_lab.masks import MaskSet

__all__ = ["EngineOptions", "MaskedTrainer", "TrainSettings", "TrainingDiverged"]


def _pass_through(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return x, y


class MaskedTrainer(EngineBase):
    """Train one model under a fixed (but replaceable) mask.

    model is moved to `device` (default: the data's device) in place; `masks` maps parameter names to bool
    tensors (a MaskSet) or is None for dense training. `augment` applies the dataset's augmentation policy
    (a no-op for datasets without one).
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, Tensor] | None, data: Any, settings: TrainSettings,
                 *, seed: int, device: str | torch.device | None = None, progress: bool = False,
                 options: EngineOptions | None = None, augment: bool = True) -> None:
        super().__init__(data, settings, device=device, progress=progress, options=options, augment=augment)
        self.seed = int(seed)
        self.model = model.to(self.device)
        self.channels_last = self.options.channels_last_on(self.device, has_conv(model))
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # Compiled once per trainer (= once per run: restart keeps it) for the training batch shape only;
        # a final short batch and evaluation run the eager module (no recompilation per shape or mode).
        steps = self.settings.epochs * math.ceil(self.data.num_examples("train") / self.settings.batch_size)
        on = settings.compile or self.options.compile_on(self.device, has_conv(model), steps)
        self._compiled = self.options.compiled(model, self.graphs) if on else None
        self._named = dict(model.named_parameters())
        params = [p for p in self._named.values() if p.requires_grad]
        clip = None
        if settings.grad_clip is not None:
            def clip(ps: list[Tensor], max_norm: float = settings.grad_clip) -> None:
                torch.nn.utils.clip_grad_norm_(ps, max_norm)
        make_batch = (self._gather_drawn if self.draw_epoch_up_front else _pass_through) if self.augmenting \
            else self._gather
        self._build(params, self._forward_loss, clip, self._state_tensors, units=(), make_batch=make_batch)
        self.masks: Mapping[str, Tensor] | None = None
        self.set_masks(masks)

    #: Draw the epoch's augmentation up front (one host-to-device copy per epoch) and build each augmented
    #: batch inside the step, so it is captured in the CUDA graph. The same random numbers in the same order
    #: as drawing per batch; False (the old per-batch path, a host sync per step) only for
    #: benchmarks/bench_engine.py, which times both.
    draw_epoch_up_front: bool = True

    # ------------------------------------------------------------------ internals
    def _gather(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        return self.data.get_batch("train", idx, augment=False)

    def _gather_drawn(self, idx: Tensor, *draws: Tensor) -> tuple[Tensor, Tensor]:
        return self.data.get_drawn_batch("train", idx, *draws)

    def _input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _forward(self, x: Tensor) -> Tensor:
        full = self._compiled is not None and self.model.training and x.shape[0] == self.settings.batch_size
        return (self._compiled if full else self.model)(x)

    def _forward_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits = self._forward(self._input(x))
        loss = F.cross_entropy(logits.float(), y)
        return loss, loss, (logits.argmax(-1) == y).sum()

    def _state_tensors(self) -> list[Tensor]:
        return [*self.model.parameters(), *self.model.buffers()]

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def set_masks(self, masks: Mapping[str, Tensor] | None) -> None:
        """Install new masks: weights x mask, optimizer state x mask; None trains densely from now on."""
        if masks is not None:
            check_masks(masks, {k: tuple(p.shape) for k, p in self._named.items()})
            masks = masks.to(self.device) if hasattr(masks, "to") else {k: m.to(self.device) for k, m in masks.items()}
        pairs = [] if masks is None else [
            (self._named[k], torch.zeros_like(self._named[k]).copy_(m)) for k, m in masks.items()
        ]
        self.runner.set_masks(pairs)
        zero_masked_state(self.optimizer, pairs)
        self.masks = masks

    @torch.no_grad()
    def restart(self, masks: Mapping[str, Tensor] | None) -> None:
        """Start a new training of the same model under `masks`: epoch 0, a fresh optimizer (every state
        tensor zeroed in place, which is exactly the state a new optimizer starts from: SGD's first step
        sets buf = g, Adam's moments and step are 0), the LR schedule from its start.

        The compiled model and the captured CUDA graph are kept (masks change values, not shapes), so
        compilation and capture are paid once per run, not once per pruning iteration (docs/methods.md §3
        step 3 trains T + 1 times). Load the start weights into the model in place first (rewinding)."""
        if self.graphs:
            for state in self.optimizer.state.values():
                for value in state.values():
                    if isinstance(value, Tensor):
                        value.zero_()
        else:
            self.optimizer.state.clear()
        self.epoch = 0
        self.set_masks(masks)

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training split; returns {epoch, loss, accuracy, lr, seconds}.

        Raises ``TrainingDiverged`` ("training diverged at epoch e, step s: loss = nan") if the loss or a
        weight became non-finite (checked on the device, read once per epoch: engine/divergence.py)."""
        self.model.train()
        lr, start = self._begin_epoch()
        indices, gen = self._epoch_indices(self.seed)
        if self.augmenting and self.draw_epoch_up_front:  # draws made now; crop/flip run inside the step
            for idx, draws in zip(indices, self.data.epoch_draws(indices, gen)):
                self.runner.step(idx, *draws)
        elif self.augmenting:  # per-batch draws from the CPU generator: the batch is built outside the step
            for idx in indices:
                self.runner.step(*self.data.get_batch("train", idx, augment=True, generator=gen))
        else:  # the gather runs inside the step (and inside the CUDA graph when enabled)
            for idx in indices:
                self.runner.step(idx)
        loss, acc = self.runner.end_epoch(self.data.num_examples("train"))
        self._check_finite()
        record = {"epoch": self.epoch, "loss": loss, "accuracy": acc, "lr": lr, "seconds": time.perf_counter() - start}
        self.epoch += 1
        return record

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> dict[str, float]:
        """Mean cross-entropy and accuracy on `split` in eval mode (BatchNorm uses running statistics)."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        with torch.inference_mode(), self.autocast():
            for x, y in self._eval_batches(split):
                logits = self._forward(self._input(x)).float()
                loss_sum += F.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(-1) == y).sum()
        n = self.data.num_examples(split)
        return {"loss": loss_sum.item() / n, "accuracy": correct.item() / n}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (copies, not views of the live tensors): model, optimizer, schedule
        position, epoch counter, masks, seed."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self._optimizer_state(),
            "scheduler": {"name": self.settings.lr_schedule, "epoch": self.epoch},
            "epoch": self.epoch,
            "masks": None if self.masks is None else {k: m.detach().cpu().clone() for k, m in self.masks.items()},
            "seed": self.seed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict()` (in place, so the model object and a CUDA-graph capture stay usable)."""
        self.model.load_state_dict(state["model"])
        self._load_optimizer_state(state["optimizer"])
        self.epoch = int(state["epoch"])
        masks = state.get("masks")
        self.set_masks(None if masks is None else
                       MaskSet({k: m.to(self.device) for k, m in masks.items()}).in_model_order(self.model))

    def _add_eval(self, record: dict, split: str) -> None:
        for key, value in self.evaluate(split).items():
            record[f"{split}_{key}"] = value

    def _postfix(self, record: dict) -> dict:
        return {"loss": f"{record['loss']:.3f}", "acc": f"{record['accuracy']:.3f}"}
