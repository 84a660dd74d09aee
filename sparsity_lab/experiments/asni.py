"""ASNI (Damadi et al. 2022; docs/methods.md §4): sigmoid-schedule pruning in one run, and the ASNI-II retrainings.

ASNI-I: after each epoch t, global magnitude pruning brings the zero count to round(s(t)·N/100),
s(t) = S_max·σ((t − τT)/κ); masked weights and their optimizer state stay zero. At the end it stores,
per layer, c⁻/c⁺ (means of the negative / positive survivors), the last threshold θ and binned
histograms of the surviving weights, so figures never need raw weights.

The other variants retrain under the final ASNI-I mask from a chosen initialisation (asni2 = the
learned two-level init) or train dense; each records test accuracy per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from sparsity_lab.config.configs import AsniConfig
from sparsity_lab.data import load_dataset
from sparsity_lab.engine.trainer import MaskedTrainer
from sparsity_lab.experiments.common import cpu_state, seeded_model, stored_state
from sparsity_lab.experiments.iterative import CONTROL_INIT_OFFSET
from sparsity_lab.experiments.records import Records
from sparsity_lab.experiments.state_codec import decode_state, encode_state
from sparsity_lab.masks import MaskSet, in_model_order
from sparsity_lab.rules.asni_schedule import asni_prune_count, asni_target_sparsity
from sparsity_lab.rules.prune import magnitude_prune
from sparsity_lab.store import ResultsStore


def level_values(weights: dict[str, torch.Tensor], masks: MaskSet) -> dict[str, tuple[float, float]]:
    """c⁻_ℓ, c⁺_ℓ: mean of the negative and of the positive surviving weights of each layer (ASNI-II step 1)."""
    levels = {}
    for name, mask in masks.items():
        w = weights[name][mask]
        neg, pos = w[w < 0], w[w > 0]
        levels[name] = (neg.mean().item() if neg.numel() else 0.0, pos.mean().item() if pos.numel() else 0.0)
    return levels


def _two_level_init(model: nn.Module, masks: MaskSet, signs: dict[str, torch.Tensor],
                    levels: dict[str, tuple[float, float]]) -> None:
    """Surviving weights become c⁺ or c⁻ by sign, pruned stay 0, biases 0, BN γ = 1 and β = 0 (ASNI-II step 2)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in params.items():
            if name in masks:
                c_minus, c_plus = levels[name]
                level = torch.where(signs[name] > 0, torch.tensor(c_plus), torch.tensor(c_minus)).to(param)
                param.copy_(level * masks[name])
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                module.weight.fill_(1.0)
                module.bias.fill_(0.0)
            if getattr(module, "bias", None) is not None and isinstance(module.bias, torch.Tensor):
                if not isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.bias.zero_()


class AsniRun:
    """One ASNI config (one seed, one variant), resumable per epoch."""

    def __init__(self, cfg: AsniConfig, store: ResultsStore, device: torch.device, progress: bool) -> None:
        self.cfg, self.store, self.device, self.progress = cfg, store, device, progress
        self.run_id = cfg.run_id
        self.data = load_dataset(cfg.dataset, device=device, train_subset=cfg.train_subset or None)
        self.model = seeded_model(cfg.model, self.data.info, cfg.seed, device)

    # -- the initial state of each variant ------------------------------------------------------
    def _variant_start(self) -> MaskSet:
        cfg = self.cfg
        if cfg.variant in ("asni1", "dense"):
            return MaskSet.for_model(self.model)
        parent = cfg.schedule_parent()
        final = self.store.load_final(parent.run_id)
        init = stored_state(self.store.load_artifact(parent.run_id, "init"), self.model)
        if final is None or init is None:
            raise RuntimeError(f"ASNI variant {cfg.variant!r} needs the finished asni1 run {parent.run_id}")
        weights, final_masks = final
        masks = MaskSet({k: v.to(self.device) for k, v in final_masks.items()}).in_model_order(self.model)
        trained = {k: v.to(self.device) for k, v in in_model_order(weights, self.model).items()}
        initial = {k: v.to(self.device) for k, v in init.items()}
        starts: dict[str, Callable[[], None]] = {
            "asni2": lambda: _two_level_init(self.model, masks, trained, level_values(trained, masks)),
            "mask_init": lambda: self.model.load_state_dict(initial),
            "mask_random_init": lambda: self.model.load_state_dict(
                seeded_model(cfg.model, self.data.info, cfg.seed + CONTROL_INIT_OFFSET, self.device).state_dict()),
            "random_signs": lambda: _two_level_init(self.model, masks, self._random_signs(masks),
                                                    level_values(trained, masks)),
            "std_levels": lambda: _two_level_init(self.model, masks, trained, {
                k: (-initial[k].std().item(), initial[k].std().item()) for k in masks}),
        }
        starts[cfg.variant]()
        masks.apply_(self.model)
        return masks

    def _random_signs(self, masks: MaskSet) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.cfg.seed + 7)
        return {k: (torch.rand(m.shape, generator=generator) - 0.5).to(self.device) for k, m in masks.items()}

    # -- the epoch loop -------------------------------------------------------------------------
    def execute(self) -> int:
        cfg = self.cfg
        done = len(self.store.completed_steps(self.run_id))  # first: repairs what fails verification
        if self.store.load_artifact(self.run_id, "init") is None:  # θ₀ comes from the seed: rebuildable
            self.store.save_artifact(self.run_id, "init", cpu_state(self.model), rebuildable=True)
        if done > cfg.train.epochs and self.store.load_artifact(self.run_id, "final") is not None:
            return 0  # every step and the final weights verify (e.g. only config.json or θ₀ was repaired)
        masks = self._variant_start()
        trainer = MaskedTrainer(self.model, masks, self.data, cfg.train, seed=cfg.seed, device=self.device)
        resume_epoch = -1
        saved = self.store.load_artifact(self.run_id, "trainer") if done else None  # resume-only, see below
        state = decode_state(saved, self.device) if saved is not None else None
        # Resume from the saved trainer state only if it is not ahead of the verified steps; otherwise
        # replay from the start (deterministic) without rewriting the steps already stored.
        if state is not None and int(state["epoch"]) <= done - 1:
            trainer.load_state_dict(state["trainer"])
            masks = MaskSet({k: v.bool() for k, v in state["masks"].items()}).in_model_order(self.model)
            trainer.set_masks(masks)
            resume_epoch = int(state["epoch"])
        total = sum(m.numel() for m in masks.values())
        trained = 0
        for t in tqdm(range(resume_epoch + 1, cfg.train.epochs), desc=f"ASNI {cfg.variant} seed {cfg.seed}",
                      disable=not self.progress):
            stats = trainer.train_epoch()
            trained += 1
            rec = Records()
            if cfg.variant == "asni1":
                masks, threshold = self._prune_step(t, masks, total)
                trainer.set_masks(masks)
                rec.add(t, "epoch", "target_sparsity", asni_target_sparsity(
                    t, s_max=cfg.s_max, kappa=cfg.kappa, total_epochs=cfg.train.epochs, tau=cfg.tau))
                rec.add(t, "epoch", "threshold", threshold)
            self._epoch_records(rec, t, stats, masks, trainer)
            if t >= done:  # epochs below `done` are a deterministic replay of stored steps
                self.store.save_step(self.run_id, t, rec.frame())
            self.store.save_artifact(self.run_id, "trainer", encode_state(  # lost: replay from epoch 0
                {"trainer": trainer.state_dict(), "masks": dict(masks), "epoch": t}), rebuildable=True)
        self._final(masks)
        return trained

    def _prune_step(self, t: int, masks: MaskSet, total: int) -> tuple[MaskSet, float]:
        cfg = self.cfg
        zeros = total - masks.num_remaining()
        count = asni_prune_count(t, n_total=total, n_zero_now=zeros, s_max=cfg.s_max, kappa=cfg.kappa,
                                 total_epochs=cfg.train.epochs, tau=cfg.tau)
        weights = {k: p.detach() for k, p in masks.parameters(self.model).items()}
        new = magnitude_prune(weights, masks, "global", {"all": count}) if count > 0 else masks
        removed = [weights[k][masks[k] & ~new[k]].abs() for k in masks]
        removed = torch.cat(removed) if removed else torch.empty(0)
        threshold = removed.max().item() if removed.numel() else math.nan
        new.apply_(self.model)
        return new, threshold

    def _epoch_records(self, rec: Records, t: int, stats: dict, masks: MaskSet, trainer: MaskedTrainer) -> None:
        evaluation = trainer.evaluate("test")
        rec.add(t, "epoch", "accuracy", evaluation["accuracy"])
        rec.add(t, "epoch", "loss", evaluation["loss"])
        rec.add(t, "epoch", "train_loss", stats["loss"])
        rec.add(t, "epoch", "sparsity", 100.0 * (1.0 - masks.remaining_fraction()), scope="global")
        for name, remaining in masks.remaining_per_layer().items():
            rec.add(t, "epoch", "sparsity", 100.0 * (1.0 - remaining), scope="layer", group=name)

    def _final(self, masks: MaskSet) -> None:
        """Store c±, the surviving-weight histograms per layer and the storage the learned init needs."""
        weights = {k: p.detach() for k, p in masks.parameters(self.model).items()}
        self.store.save_final(self.run_id, cpu_state(self.model), {k: v.cpu() for k, v in masks.items()})
        rec = Records()
        t = self.cfg.train.epochs - 1
        levels = level_values(weights, masks)
        for name, (c_minus, c_plus) in levels.items():
            rec.add(t, "final", "c_minus", c_minus, scope="layer", group=name)
            rec.add(t, "final", "c_plus", c_plus, scope="layer", group=name)
            survivors = weights[name][masks[name]].float().cpu()
            rec.add(t, "final", "surviving", survivors.numel(), scope="layer", group=name)
            if survivors.numel():
                lo, hi = survivors.min().item(), survivors.max().item()
                counts = torch.histc(survivors, bins=self.cfg.histogram_bins, min=lo, max=hi)
                edges = torch.linspace(lo, hi, self.cfg.histogram_bins + 1)
                for i, count in enumerate(counts.tolist()):
                    rec.add(t, "final", "histogram", count, scope="layer", group=name,
                            bin_left=edges[i].item(), bin_right=edges[i + 1].item())
        dense = sum(p.numel() for p in self.model.parameters())
        rec.add(t, "final", "dense_parameters", dense)
        rec.add(t, "final", "nonzero_weights", masks.num_remaining())
        rec.add(t, "final", "learned_levels", 2 * len(levels))
        self.store.save_step(self.run_id, self.cfg.train.epochs, rec.frame())
