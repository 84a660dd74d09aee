"""`BatchedTrainer`: N models of one architecture trained at once with torch.func (docs/methods.md §2-§3).

The members' parameters and buffers are stacked along a new leading dimension (`stack_module_state`),
the forward pass is `vmap(functional_call)` over members, and backpropagating the *sum* of the members'
mean losses gives every member exactly its own gradient (the members share no parameters). Each member
keeps its own batch order (its seed, through `data.epoch_generator`), its own augmentation draws, its own
mask and its own gradient-clipping norm (the global L2 norm over that member's parameters only). SGD,
Adam and AdamW are elementwise, so one optimizer over the stacked [N, ...] leaves does each member's
separate-run update. BatchNorm is supported: running statistics are stacked buffers updated per member
inside vmap, and evaluation uses each member's own running statistics.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from sparsity_lab.engine.base import AMP_DTYPES, EngineBase, check_masks, zero_masked_state
from sparsity_lab.engine.settings import EngineOptions, TrainSettings

__all__ = ["BatchedTrainer", "clip_per_member_"]


@torch.no_grad()
def clip_per_member_(params: list[Tensor], max_norm: float) -> Tensor:
    """Clip stacked gradients [N, ...] so each member's global L2 norm is <= max_norm; return the N norms.

    Same formula as torch.nn.utils.clip_grad_norm_ per member: coef = min(1, max_norm / (norm + 1e-6)).
    """
    grads = [p.grad for p in params if p.grad is not None]
    n = grads[0].shape[0]
    rows = [g[i] for g in grads for i in range(n)]  # contiguous per-member views: one multi-tensor norm launch
    norms = torch.stack(torch._foreach_norm(rows)).view(len(grads), n)
    total = torch.linalg.vector_norm(norms, dim=0)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(n, *([1] * (g.dim() - 1))).to(g.dtype))
    return total


def _pass_through(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return x, y


def _batch_norm_in_fp32(module: nn.Module) -> None:
    """Run every BatchNorm of `module` on float32 input (output cast back to the input dtype).

    Under vmap with stacked weights, CUDA's bf16 batch-norm backward rejects the float32 running statistics
    ("Expected running_mean to have type BFloat16"), so the batched engine normalises in float32 on CUDA
    with autocast; the convolutions and matrix products stay in bf16.
    """
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            inner = m.forward
            m.forward = lambda x, inner=inner: inner(x.float()).to(x.dtype)


class BatchedTrainer(EngineBase):
    """Train `models` (same architecture) together; member i uses masks[i] and seeds[i]."""

    def __init__(self, models: Sequence[nn.Module], masks: Sequence[Mapping[str, Tensor] | None] | None, data: Any,
                 settings: TrainSettings, *, seeds: Sequence[int], device: str | torch.device | None = None,
                 progress: bool = False, options: EngineOptions | None = None, augment: bool = True) -> None:
        super().__init__(data, settings, device=device, progress=progress, options=options, augment=augment)
        if len(models) == 0 or len(seeds) != len(models):
            raise ValueError(f"BatchedTrainer needs >= 1 model and one seed per model, got {len(models)} models "
                             f"and {len(seeds)} seeds")
        names = [tuple((k, tuple(p.shape)) for k, p in m.named_parameters()) for m in models]
        if any(n != names[0] for n in names[1:]):
            raise ValueError("BatchedTrainer: all models must have the same architecture (parameter names/shapes)")
        self.models = [m.to(self.device) for m in models]
        self.seeds = [int(s) for s in seeds]
        self.n = len(models)
        params, buffers = stack_module_state(self.models)
        self.params: dict[str, Tensor] = params
        self.buffers: dict[str, Tensor] = buffers
        self._base = copy.deepcopy(self.models[0]).to("meta")
        if self.device.type == "cuda" and AMP_DTYPES[settings.amp](self.device) is not None:
            _batch_norm_in_fp32(self._base)
        self._shapes = {k: tuple(p.shape[1:]) for k, p in params.items()}
        if settings.compile:
            self._vtrain = torch.compile(vmap(self._call), mode=self.options.compile_mode)
        else:
            self._vtrain = vmap(self._call)
        self._veval = vmap(self._call, in_dims=(0, 0, None))
        clip = None
        if settings.grad_clip is not None:
            def clip(ps: list[Tensor], max_norm: float = settings.grad_clip) -> None:
                clip_per_member_(ps, max_norm)
        plist = [p for p in params.values() if p.requires_grad]
        make_batch = _pass_through if self.augmenting else self._gather
        self._build(plist, self._forward_loss, clip, self._state_tensors, units=(self.n,), make_batch=make_batch)
        self.masks: list[Mapping[str, Tensor] | None] = [None] * self.n
        self.set_masks(masks if masks is not None else [None] * self.n)

    # ------------------------------------------------------------------ internals
    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self._base, (params, buffers), (x,))

    def _forward_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits = self._vtrain(self.params, self.buffers, x)  # [N, B, C]
        n, b, c = logits.shape
        per = F.cross_entropy(logits.float().reshape(n * b, c), y.reshape(n * b), reduction="none")
        per = per.view(n, b).mean(1)
        return per.sum(), per, (logits.argmax(-1) == y).sum(1)

    def _state_tensors(self) -> list[Tensor]:
        return [*self.params.values(), *self.buffers.values()]

    def _gather(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Member batches from the concatenated member indices: x [N, B, ...], y [N, B] (one gather)."""
        x, y = self.data.get_batch("train", idx, augment=False)
        return x.view(self.n, -1, *x.shape[1:]), y.view(self.n, -1)

    def _augmented(self, idxs: list[Tensor], gens: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        """Member batches with each member's own augmentation draws (its own generator, as a separate run)."""
        pairs = [self.data.get_batch("train", i, augment=True, generator=g) for i, g in zip(idxs, gens)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def set_masks(self, masks: Sequence[Mapping[str, Tensor] | None]) -> None:
        """Install one mask set per member (None = dense member); weights and optimizer state x mask."""
        if len(masks) != self.n:
            raise ValueError(f"set_masks needs {self.n} mask sets (one per member), got {len(masks)}")
        names: list[str] = []
        for m in masks:
            if m is not None:
                check_masks(m, self._shapes)
                names += [k for k in m if k not in names]
        pairs = []
        for name in names:
            stacked = torch.ones_like(self.params[name])
            for i, m in enumerate(masks):
                if m is not None and name in m:
                    stacked[i].copy_(m[name].to(self.device))
            pairs.append((self.params[name], stacked))
        self.runner.set_masks(pairs)
        zero_masked_state(self.optimizer, pairs)
        self.masks = list(masks)

    def train_epoch(self) -> list[dict[str, float]]:
        """One pass over the training split for every member; one record per member."""
        self._base.train()
        lr, start = self._begin_epoch()
        orders = [self._epoch_indices(seed) for seed in self.seeds]
        gens = [g for _, g in orders]
        for idxs in zip(*(ind for ind, _ in orders)):
            if self.augmenting:
                self.runner.step(*self._augmented(list(idxs), gens))
            else:
                self.runner.step(torch.cat(idxs))
        losses, accs = self.runner.end_epoch(self.data.num_examples("train"))
        self._check_finite()  # TrainingDiverged naming the diverged members (engine/divergence.py)
        seconds = time.perf_counter() - start
        records = [{"epoch": self.epoch, "member": i, "seed": s, "loss": losses[i], "accuracy": accs[i], "lr": lr,
                    "seconds": seconds / self.n} for i, s in enumerate(self.seeds)]
        self.epoch += 1
        return records

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> list[dict[str, float]]:
        """Each member's mean loss and accuracy on `split` (eval mode, its own running statistics)."""
        self._base.eval()
        loss_sum = torch.zeros(self.n, device=self.device)
        correct = torch.zeros(self.n, device=self.device, dtype=torch.int64)
        with torch.inference_mode(), self.autocast():
            for x, y in self._eval_batches(split):
                logits = self._veval(self.params, self.buffers, x).float()  # [N, B, C]
                n, b, c = logits.shape
                per = F.cross_entropy(logits.reshape(n * b, c), y.repeat(n), reduction="none")
                loss_sum += per.view(n, b).sum(1)
                correct += (logits.argmax(-1) == y).sum(1)
        total = self.data.num_examples(split)
        return [{"loss": l / total, "accuracy": c / total} for l, c in zip(loss_sum.tolist(), correct.tolist())]

    @torch.no_grad()
    def unstack(self) -> list[nn.Module]:
        """Copy the trained parameters and buffers back into the member modules and return them."""
        for i, model in enumerate(self.models):
            for name, p in model.named_parameters():
                p.copy_(self.params[name][i])
            for name, b in model.named_buffers():
                if name in self.buffers:
                    b.copy_(self.buffers[name][i])
        return self.models

    def state_dict(self) -> dict[str, Any]:
        """Stacked parameters/buffers, optimizer, schedule position, epoch counter, masks and seeds."""
        return {
            "params": {k: v.detach().clone() for k, v in self.params.items()},
            "buffers": {k: v.clone() for k, v in self.buffers.items()},
            "optimizer": self._optimizer_state(),
            "scheduler": {"name": self.settings.lr_schedule, "epoch": self.epoch},
            "epoch": self.epoch,
            "masks": [None if m is None else {k: v.detach().cpu().clone() for k, v in m.items()} for m in self.masks],
            "seeds": list(self.seeds),
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict()` in place."""
        for group in ("params", "buffers"):
            own = getattr(self, group)
            if set(own) != set(state[group]):
                raise ValueError(f"load_state_dict: {group} names differ from this trainer's")
            for k, v in state[group].items():
                own[k].copy_(v)
        self._load_optimizer_state(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.set_masks(state["masks"])

    def _add_eval(self, records: list[dict], split: str) -> None:
        for record, result in zip(records, self.evaluate(split)):
            for key, value in result.items():
                record[f"{split}_{key}"] = value

    def _postfix(self, records: list[dict]) -> dict:
        return {"loss": f"{sum(r['loss'] for r in records) / len(records):.3f}"}
