"""Iterative pruning with rewinding: SAP, Lottery Ticket, One Shot and the random controls (METHODS.md §3).

For t = 0 … T per seed: reset all parameters to the rewind point, apply m_t, train E epochs (w_t),
measure w_t ⊙ m_t, compute m_{t+1} by the method's rule, evaluate and measure the pruned,
not-retrained model w_t ⊙ m_{t+1}. Each completed iteration is one atomic store step holding
its tidy records and m_{t+1}, so an interrupted run resumes at the last completed iteration.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from tqdm.auto import tqdm

from sparsity_lab.config import IterativeConfig
from sparsity_lab.data import load_dataset
from sparsity_lab.experiments.common import (
    Records,
    WeightSelector,
    cpu_state,
    mask_tensors,
    masks_from_tensors,
    seeded_model,
)
from sparsity_lab.flops import theoretical_speedup
from sparsity_lab.masks import MaskSet
from sparsity_lab.measures import SCOPES, compression_ratio, measure_weights
from sparsity_lab.pruning import prune
from sparsity_lab.store import ResultsStore
from sparsity_lab.train import MaskedTrainer

CONTROL_INIT_OFFSET = 1_000_003  # seed offset of the random re-initialisation control


def _rule_arguments(cfg: IterativeConfig, method: str, iteration: int, reference: dict | None) -> dict[str, Any]:
    """Hyperparameters of the pruning rule ``method`` (registry in pruning.py) for this iteration."""
    by_method: dict[str, dict[str, Any]] = {
        "sap": {"p": cfg.p, "q": cfg.q, "eta_r": cfg.eta_r, "gamma": cfg.gamma, "beta": cfg.beta},
        "lt": {"fraction": cfg.prune_fraction, "layer_rates": dict(cfg.layer_rates) or None},
        "oneshot": {"fraction": cfg.prune_fraction, "iteration": iteration + 1, "reference": reference},
    }
    return by_method[method]


class IterativeRun:
    """One seed of one iterative-pruning config, resumable from the store."""

    def __init__(self, cfg: IterativeConfig, store: ResultsStore, device: torch.device, progress: bool) -> None:
        self.cfg, self.store, self.device, self.progress = cfg, store, device, progress
        self.run_id = cfg.run_id
        self.data = load_dataset(cfg.dataset, device=device, val_size=cfg.val_size, val_seed=cfg.seed,
                                 train_subset=cfg.train_subset or None)
        self.model = seeded_model(cfg.model, self.data.info, self._init_seed(), device)
        self.example = torch.zeros((1, *self.data.info.input_shape), device=device)
        self.init_state = self._artifact("init", lambda: cpu_state(self.model))
        self.pq_pairs = tuple(dict.fromkeys([(0.5, 1.0), (cfg.p, cfg.q)]))

    def _init_seed(self) -> int:
        return self.cfg.seed + (CONTROL_INIT_OFFSET if self.cfg.method == "random_reinit" else 0)

    def _artifact(self, name: str, make) -> dict[str, torch.Tensor]:
        stored = self.store.load_artifact(self.run_id, name)
        if stored is None:
            stored = make()
            self.store.save_artifact(self.run_id, name, stored)
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

    # -- one iteration -------------------------------------------------------------------------
    def _rewind(self, masks: MaskSet, rewind_state: dict[str, torch.Tensor] | None) -> None:
        state = rewind_state if rewind_state is not None else self.init_state
        self.model.load_state_dict({k: v.to(self.device) for k, v in state.items()})
        masks.apply_(self.model)

    def _train(self, t: int, masks: MaskSet, rewind_state: dict | None) -> tuple[MaskedTrainer, dict | None]:
        cfg = self.cfg
        self._rewind(masks, rewind_state if t > 0 else None)
        trainer = MaskedTrainer(self.model, masks, self.data, cfg.train, seed=cfg.seed, device=self.device,
                                progress=False)
        selector = WeightSelector(cfg.rank_weights)
        new_rewind: dict | None = None
        start_epoch = cfg.rewind_epoch if (t > 0 and cfg.rewind_epoch) else 0
        trainer.skip_epochs(start_epoch)
        for epoch in range(start_epoch, cfg.train.epochs):
            trainer.train_epoch()
            if selector.split is not None:
                selector.observe(self.model, trainer.evaluate(selector.split)["accuracy"])
            if t == 0 and cfg.rewind_epoch and epoch + 1 == cfg.rewind_epoch:
                new_rewind = cpu_state(self.model)
        selector.restore_into(self.model)
        return trainer, new_rewind

    def _measure(self, rec: Records, t: int, stage: str, masks: MaskSet, trainer: MaskedTrainer) -> None:
        evaluation = trainer.evaluate("test")
        rec.add(t, stage, "accuracy", evaluation["accuracy"])
        rec.add(t, stage, "loss", evaluation["loss"])
        rec.add(t, stage, "remaining", masks.remaining_fraction())
        rec.add(t, stage, "compression", compression_ratio(self.model, masks))
        rec.add(t, stage, "speedup", theoretical_speedup(self.model, masks, self.example))
        weights = {name: p.detach() for name, p in masks.parameters(self.model).items()}
        rec.extend(t, stage, measure_weights(weights, masks, scopes=SCOPES, pq_pairs=self.pq_pairs,
                                             grid=self.cfg.pq_grid))

    def execute(self) -> int:
        """Run the missing iterations; return how many were trained now."""
        cfg = self.cfg
        start, masks = self._start()
        reference = self.store.load_artifact(self.run_id, "reference") if cfg.method == "oneshot" else None
        rewind_state = self.store.load_artifact(self.run_id, "rewind") if cfg.rewind_epoch else None
        trained = 0
        bar = tqdm(range(start, cfg.iterations + 1), desc=f"{cfg.method} {cfg.model} seed {cfg.seed}",
                   disable=not self.progress, initial=start, total=cfg.iterations + 1)
        for t in bar:
            began = time.perf_counter()
            if cfg.is_control:
                masks = self._control_masks(t)
            rec = Records()
            trainer, new_rewind = self._train(t, masks, rewind_state)
            trained += 1
            if new_rewind is not None:
                self.store.save_artifact(self.run_id, "rewind", new_rewind)
                rewind_state = new_rewind
            self._measure(rec, t, "retrained", masks, trainer)
            next_masks = masks
            if t < cfg.iterations and not cfg.is_control:
                if cfg.method == "oneshot" and reference is None:
                    reference = cpu_state(self.model)
                    self.store.save_artifact(self.run_id, "reference", reference)
                ref = None if reference is None else {k: v.to(self.device) for k, v in reference.items()}
                outcome = prune(cfg.method, self.model, masks, scope=cfg.scope,
                                **_rule_arguments(cfg, cfg.method, t, ref))
                next_masks = outcome.masks
                rec.extend(t, "pruned", outcome.records)
                next_masks.apply_(self.model)
                self._measure(rec, t, "pruned", next_masks, trainer)
            rec.add(t, "retrained", "wall_time", time.perf_counter() - began)
            self.store.save_step(self.run_id, t, rec.frame(), mask_tensors(next_masks))
            masks = next_masks
            bar.set_postfix(remaining=f"{masks.remaining_fraction():.3%}")
        return trained
