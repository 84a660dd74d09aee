"""Iterative pruning with rewinding: SAP, Lottery Ticket, One Shot and the random controls (METHODS.md §3).

For t = 0 … T per seed: reset all parameters to the rewind point, apply m_t, train E epochs (w_t),
measure w_t ⊙ m_t, compute m_{t+1} by the method's rule, evaluate and measure the pruned,
not-retrained model w_t ⊙ m_{t+1}. Each completed iteration is one atomic store step holding
its tidy records and m_{t+1}, so an interrupted run resumes at the last completed iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from sparsity_lab.config import IterativeConfig
from sparsity_lab.data import DeviceData, load_dataset
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.experiments.common import (
    Records,
    WeightSelector,
    cpu_state,
    mask_tensors,
    masks_from_tensors,
    seeded_model,
)
from sparsity_lab.flops import layer_macs, speedup_from_macs
from sparsity_lab.masks import MaskSet
from sparsity_lab.measures import SCOPES, compression_ratio, measure_weights
from sparsity_lab.pruning import prune
from sparsity_lab.store import ResultsStore
from sparsity_lab.train import MaskedTrainer

CONTROL_INIT_OFFSET = 1_000_003  # seed offset of the random re-initialisation control

#: evaluate(split) -> {"loss", "accuracy"} of the run's model as it is now (MaskedTrainer.evaluate)
Evaluate = Callable[[str], dict[str, float]]


def load_run_data(cfg: IterativeConfig, device: torch.device) -> DeviceData:
    """The run's data: its validation split and training subset are drawn with the run's seed."""
    return load_dataset(cfg.dataset, device=device, val_size=cfg.val_size, val_seed=cfg.seed,
                        train_subset=cfg.train_subset or None)


def _rule_arguments(cfg: IterativeConfig, method: str, iteration: int, reference: dict | None) -> dict[str, Any]:
    """Hyperparameters of the pruning rule ``method`` (registry in pruning.py) for this iteration."""
    by_method: dict[str, dict[str, Any]] = {
        "sap": {"p": cfg.p, "q": cfg.q, "eta_r": cfg.eta_r, "gamma": cfg.gamma, "beta": cfg.beta},
        "lt": {"fraction": cfg.prune_fraction, "layer_rates": dict(cfg.layer_rates) or None},
        "oneshot": {"fraction": cfg.prune_fraction, "iteration": iteration + 1, "reference": reference},
    }
    return by_method[method]


class IterativeRun:
    """One seed of one iterative-pruning config, resumable from the store.

    ``execute()`` runs the missing iterations one ``step`` at a time. The pieces of a step are public so
    the seed-group runner (seed_group.py) can train several seeds at once with the batched engine and do
    everything else exactly as here: ``begin`` (resume point), ``iteration_masks``, ``rewind``,
    ``train_iteration`` (separate training) and ``finish_iteration`` (measure, prune, measure, save).
    ``data`` may be passed in when it is the same for every seed (no validation split, no subset).
    """

    def __init__(self, cfg: IterativeConfig, store: ResultsStore, device: torch.device, progress: bool,
                 data: DeviceData | None = None) -> None:
        self.cfg, self.store, self.device, self.progress = cfg, store, device, progress
        self.run_id = cfg.run_id
        self.data = data if data is not None else load_run_data(cfg, device)
        self.model = seeded_model(cfg.model, self.data.info, self._init_seed(), device)
        self.init_state = self._artifact("init", lambda: cpu_state(self.model))
        # Dense MACs per layer depend on the architecture only: one hooked forward pass per run.
        self.macs = layer_macs(self.model, torch.zeros((1, *self.data.info.input_shape), device=device))
        self.pq_pairs = tuple(dict.fromkeys([(0.5, 1.0), (cfg.p, cfg.q)]))
        self.reference: dict[str, torch.Tensor] | None = None  # One Shot: the dense model trained at t = 0
        self.rewind_state: dict[str, torch.Tensor] | None = None  # late rewinding: weights after k epochs

    def _init_seed(self) -> int:
        return self.cfg.seed + (CONTROL_INIT_OFFSET if self.cfg.method == "random_reinit" else 0)

    def _artifact(self, name: str, make) -> dict[str, torch.Tensor]:
        stored = self.store.load_artifact(self.run_id, name)
        if stored is None:
            stored = make()
            self.store.save_artifact(self.run_id, name, stored, rebuildable=True)  # θ₀ comes from the seed
        return stored

    # -- masks -------------------------------------------------------------------------------
    def _start(self) -> tuple[int, MaskSet]:
        done = self.store.completed_steps(self.run_id)
        if not done:
            return 0, MaskSet.for_model(self.model)
        return len(done), masks_from_tensors(self.store.load_step_tensors(self.run_id, done[-1]), self.device)

    def _control_masks(self, t: int) -> MaskSet:
        """Masks of a control at iteration t: the parent's m_t, or a random mask with its per-layer counts."""
        parent = self.cfg.control_parent()
        base = (MaskSet.for_model(self.model) if t == 0 else
                masks_from_tensors(self.store.load_step_tensors(parent.run_id, t - 1), self.device))
        if self.cfg.method == "random_reinit":
            return base
        generator = torch.Generator().manual_seed(self.cfg.seed * 10_007 + t)
        return prune("random", self.model, base, scope="layer", target=base, generator=generator).masks

    def iteration_masks(self, t: int, masks: MaskSet) -> MaskSet:
        """m_t: the mask carried from the previous iteration, or the control's own mask."""
        return self._control_masks(t) if self.cfg.is_control else masks

    # -- one iteration -------------------------------------------------------------------------
    def begin(self) -> tuple[int, MaskSet]:
        """Resume point: the first missing iteration and its mask m_t; loads the stored One Shot
        reference and late-rewind weights."""
        cfg = self.cfg
        start, masks = self._start()
        self.reference = self.store.load_artifact(self.run_id, "reference") if cfg.method == "oneshot" else None
        self.rewind_state = self.store.load_artifact(self.run_id, "rewind") if cfg.rewind_epoch else None
        return start, masks

    def rewind(self, t: int, masks: MaskSet) -> None:
        """Step 2 of METHODS.md §3: all parameters back to θ₀ (or the late-rewind point for t > 0), times m_t."""
        state = self.rewind_state if (t > 0 and self.rewind_state is not None) else self.init_state
        self.model.load_state_dict({k: v.to(self.device) for k, v in state.items()})
        masks.apply_(self.model)

    def trainer(self, masks: MaskSet) -> MaskedTrainer:
        """A fresh MaskedTrainer (fresh optimizer and LR schedule) of this run's model under ``masks``."""
        return MaskedTrainer(self.model, masks, self.data, self.cfg.train, seed=self.cfg.seed, device=self.device,
                             progress=False)

    def train_iteration(self, t: int, masks: MaskSet) -> MaskedTrainer:
        """Rewind, then train E epochs under m_t on its own (step 3); keeps the weights pruning ranks."""
        cfg = self.cfg
        self.rewind(t, masks)
        trainer = self.trainer(masks)
        selector = WeightSelector(cfg.rank_weights)
        start_epoch = cfg.rewind_epoch if (t > 0 and cfg.rewind_epoch) else 0
        trainer.skip_epochs(start_epoch)
        for epoch in range(start_epoch, cfg.train.epochs):
            try:
                trainer.train_epoch()
            except TrainingDiverged as err:
                raise err.within(f"pruning iteration {t}") from None
            if selector.split is not None:
                selector.observe(self.model, trainer.evaluate(selector.split)["accuracy"])
            if t == 0 and cfg.rewind_epoch and epoch + 1 == cfg.rewind_epoch:
                self.rewind_state = cpu_state(self.model)
                self.store.save_artifact(self.run_id, "rewind", self.rewind_state)
        selector.restore_into(self.model)
        return trainer

    def _measure(self, rec: Records, t: int, stage: str, masks: MaskSet, evaluate: Evaluate) -> None:
        evaluation = evaluate("test")
        rec.add(t, stage, "accuracy", evaluation["accuracy"])
        rec.add(t, stage, "loss", evaluation["loss"])
        rec.add(t, stage, "remaining", masks.remaining_fraction())
        rec.add(t, stage, "compression", compression_ratio(self.model, masks))
        rec.add(t, stage, "speedup", speedup_from_macs(self.macs, masks))
        weights = {name: p.detach() for name, p in masks.parameters(self.model).items()}
        rec.extend(t, stage, measure_weights(weights, masks, scopes=SCOPES, pq_pairs=self.pq_pairs,
                                             grid=self.cfg.pq_grid))

    def finish_iteration(self, t: int, masks: MaskSet, evaluate: Evaluate, began: float) -> MaskSet:
        """Steps 4-5 on the trained model w_t: measure w_t ⊙ m_t, compute m_{t+1} by the method's rule,
        measure the pruned model w_t ⊙ m_{t+1}, save the step (records + m_{t+1}); return m_{t+1}.

        ``evaluate(split)`` evaluates ``self.model`` as it is now; ``began`` is the iteration's start
        (``time.perf_counter()``) for the wall-time record.
        """
        cfg = self.cfg
        rec = Records()
        self._measure(rec, t, "retrained", masks, evaluate)
        next_masks = masks
        if t < cfg.iterations and not cfg.is_control:
            if cfg.method == "oneshot" and self.reference is None:
                self.reference = cpu_state(self.model)
                self.store.save_artifact(self.run_id, "reference", self.reference)
            ref = None if self.reference is None else {k: v.to(self.device) for k, v in self.reference.items()}
            outcome = prune(cfg.method, self.model, masks, scope=cfg.scope,
                            **_rule_arguments(cfg, cfg.method, t, ref))
            next_masks = outcome.masks
            rec.extend(t, "pruned", outcome.records)
            next_masks.apply_(self.model)
            self._measure(rec, t, "pruned", next_masks, evaluate)
        if t == cfg.iterations:  # the final ticket w_T ⊙ m_T, for weight histograms (FIGURES.md 9)
            final = {f"model.{k}": v for k, v in cpu_state(self.model).items()}
            self.store.save_artifact(self.run_id, "final", {**final, **mask_tensors(masks)})
        rec.add(t, "retrained", "wall_time", time.perf_counter() - began)
        self.store.save_step(self.run_id, t, rec.frame(), mask_tensors(next_masks))
        return next_masks

    def step(self, t: int, masks: MaskSet) -> MaskSet:
        """One whole iteration t trained on its own; returns m_{t+1}."""
        began = time.perf_counter()
        masks = self.iteration_masks(t, masks)
        trainer = self.train_iteration(t, masks)
        return self.finish_iteration(t, masks, trainer.evaluate, began)

    def execute(self) -> int:
        """Run the missing iterations; return how many were trained now."""
        cfg = self.cfg
        start, masks = self.begin()
        bar = tqdm(range(start, cfg.iterations + 1), desc=f"{cfg.method} {cfg.model} seed {cfg.seed}",
                   disable=not self.progress, initial=start, total=cfg.iterations + 1)
        for t in bar:
            masks = self.step(t, masks)
            bar.set_postfix(remaining=f"{masks.remaining_fraction():.3%}")
        return max(0, cfg.iterations + 1 - start)
