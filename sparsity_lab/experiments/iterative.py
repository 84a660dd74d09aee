"""Iterative pruning with rewinding from a config into the store (docs/methods.md §3): any registered rule and
the random controls.

The loop itself is ``sparsity_lab.experiments.protocol.IterativeProtocol``; this runner says how to train (a
``MaskedTrainer`` per iteration, optional best-epoch selection and late rewinding), what to measure
(accuracy, loss, remaining, compression, speedup and the sparsity measures) and where records go: each
completed iteration is one atomic store step holding its tidy records and m_{t+1}, so an interrupted run
resumes at the last completed iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.data import DeviceData, load_dataset
from sparsity_lab.data.device_data import epoch_generator
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.engine.trainer import MaskedTrainer
from sparsity_lab.experiments.common import (
    WeightSelector,
    cpu_state,
    mask_tensors,
    masks_from_tensors,
    seeded_model,
    stored_state,
)
from sparsity_lab.experiments.protocol import IterativeProtocol
from sparsity_lab.experiments.records import Records
from sparsity_lab.masks import MaskSet
from sparsity_lab.measures.flops import layer_macs, speedup_from_macs
from sparsity_lab.measures.sparsity import SCOPES, compression_ratio, measure_weights
from sparsity_lab.rules.prune import get_rule, prune
from sparsity_lab.store import ResultsStore
from sparsity_lab.store.record_groups import own_pq_pairs

CONTROL_INIT_OFFSET = 1_000_003  # seed offset of the random re-initialisation control
RULE_BATCHES_OFFSET = 1_000_000  # data-dependent rules draw their batches from epoch_generator(seed, this + t)

#: evaluate(split) -> {"loss", "accuracy"} of the run's model as it is now (MaskedTrainer.evaluate)
Evaluate = Callable[[str], dict[str, float]]


def load_run_data(cfg: IterativeConfig, device: torch.device) -> DeviceData:
    """The run's data: its validation split and training subset are drawn with the run's seed; the test
    subset (if any) is the same for every seed (data.loading.TEST_SUBSET_SEED)."""
    return load_dataset(cfg.dataset, device=device, val_size=cfg.val_size, val_seed=cfg.seed,
                        train_subset=cfg.train_subset or None, test_subset=cfg.test_subset or None)


class IterativeRun(IterativeProtocol):
    """One seed of one iterative-pruning config, resumable from the store (the §3 loop's store-backed user).

    ``execute()`` runs the missing iterations one ``step`` at a time (``IterativeProtocol``). The seed-group
    runner (seed_group.py) trains several runs at once with the batched engine through
    ``protocol.step_together`` and does everything else exactly as here. ``data`` may be passed in when it
    is the same for every seed (no validation split, no subset).
    """

    def __init__(self, cfg: IterativeConfig, store: ResultsStore, device: torch.device, progress: bool,
                 data: DeviceData | None = None) -> None:
        self.cfg, self.store, self.device, self.progress = cfg, store, device, progress
        self.run_id = cfg.run_id
        self.data = data if data is not None else load_run_data(cfg, device)
        model = seeded_model(cfg.model, self.data.info, self._init_seed(), device)
        rule = get_rule(cfg.control_base if cfg.is_control else cfg.method)
        super().__init__(model, rule.name, rule.hyper_from_config(cfg), cfg.scope, cfg.iterations,
                         prunes=not cfg.is_control)
        self.init_state = self._artifact("init", lambda: cpu_state(self.model))
        # Dense MACs per layer depend on the architecture only: one hooked forward pass per run.
        self.macs = layer_macs(self.model, torch.zeros((1, *self.data.info.input_shape), device=device))
        self.pq_pairs = own_pq_pairs(cfg.p, cfg.q)  # bundles tell these from the grid by the same function
        self.rewind_state: dict[str, torch.Tensor] | None = None  # late rewinding: weights after k epochs
        self._trainer: MaskedTrainer | None = None  # built by the first training, restarted by the others

    def _init_seed(self) -> int:
        return self.cfg.seed + (CONTROL_INIT_OFFSET if self.cfg.method == "random_reinit" else 0)

    def _artifact(self, name: str, make) -> dict[str, torch.Tensor]:
        stored = stored_state(self.store.load_artifact(self.run_id, name), self.model)
        if stored is None:
            stored = make()
            self.store.save_artifact(self.run_id, name, stored, rebuildable=True)  # θ₀ comes from the seed
        return stored

    def _on_device(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in state.items()}

    # -- masks -------------------------------------------------------------------------------
    def _control_masks(self, t: int) -> MaskSet:
        """Masks of a control at iteration t: the parent's m_t, or a random mask with its per-layer counts."""
        parent = self.cfg.control_parent()
        base = (MaskSet.for_model(self.model) if t == 0 else
                masks_from_tensors(self.store.load_step_tensors(parent.run_id, t - 1), self.device, self.model))
        if self.cfg.method == "random_reinit":
            return base
        generator = torch.Generator().manual_seed(self.cfg.seed * 10_007 + t)
        return prune("random", self.model, base, scope="layer", target=base, generator=generator).masks

    def iteration_masks(self, t: int, masks: MaskSet) -> MaskSet:
        """m_t: the mask carried from the previous iteration, or the control's own mask."""
        return self._control_masks(t) if self.cfg.is_control else masks

    # -- protocol hooks --------------------------------------------------------------------------
    def begin(self) -> tuple[int, MaskSet]:
        """Resume point: the first missing iteration and its mask m_t; loads the stored One Shot
        reference and late-rewind weights."""
        done = self.store.completed_steps(self.run_id)
        load = self.store.load_artifact
        reference = stored_state(load(self.run_id, "reference"), self.model) if "reference" in self.rule.inputs else None
        self.reference = None if reference is None else self._on_device(reference)
        self.rewind_state = stored_state(load(self.run_id, "rewind"), self.model) if self.cfg.rewind_epoch else None
        if not done:
            return 0, MaskSet.for_model(self.model)
        return len(done), masks_from_tensors(self.store.load_step_tensors(self.run_id, done[-1]), self.device,
                                             self.model)

    def start_state(self, t: int) -> dict[str, torch.Tensor]:
        """θ₀, or the late-rewind point for t > 0."""
        return self.rewind_state if (t > 0 and self.rewind_state is not None) else self.init_state

    def rewind(self, t: int, masks: MaskSet) -> None:
        """Step 2 of docs/methods.md §3: all parameters back to θ₀ (or the late-rewind point for t > 0), times m_t."""
        self.model.load_state_dict(self._on_device(self.start_state(t)))
        masks.apply_(self.model)

    def trainer(self, masks: MaskSet) -> MaskedTrainer:
        """This run's MaskedTrainer restarted under ``masks`` (fresh optimizer state and LR schedule, epoch 0).

        One trainer per run: its compiled model and captured CUDA graph are reused by all T + 1 trainings
        (``MaskedTrainer.restart``); the model was rewound in place before (``rewind``)."""
        if self._trainer is None:
            self._trainer = MaskedTrainer(self.model, masks, self.data, self.cfg.train, seed=self.cfg.seed,
                                          device=self.device, progress=False)
        else:
            self._trainer.restart(masks)
        return self._trainer

    def train(self, t: int, masks: MaskSet) -> Evaluate:
        """Train E epochs under m_t on its own (step 3); keeps the weights pruning ranks; returns evaluate."""
        cfg = self.cfg
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
        return trainer.evaluate

    def measure(self, rec: Records, t: int, stage: str, masks: MaskSet, evaluate: Evaluate) -> None:
        evaluation = evaluate("test")
        rec.add(t, stage, "accuracy", evaluation["accuracy"])
        rec.add(t, stage, "loss", evaluation["loss"])
        rec.add(t, stage, "remaining", masks.remaining_fraction())
        rec.add(t, stage, "compression", compression_ratio(self.model, masks))
        rec.add(t, stage, "speedup", speedup_from_macs(self.macs, masks))
        weights = {name: p.detach() for name, p in masks.parameters(self.model).items()}
        rec.extend(t, stage, measure_weights(weights, masks, scopes=SCOPES, pq_pairs=self.pq_pairs,
                                             grid=self.cfg.pq_grid))

    def keep_reference(self) -> dict[str, torch.Tensor]:
        """One Shot's reference (the model trained at t = 0), stored so a resumed run ranks the same."""
        reference = cpu_state(self.model)
        self.store.save_artifact(self.run_id, "reference", reference)
        return self._on_device(reference)

    def rule_init(self, t: int) -> dict[str, torch.Tensor]:
        """Data-dependent rules score the state iteration t + 1 starts from."""
        return self._on_device(self.start_state(t + 1))

    def data_batches(self, t: int, count: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], Callable]:
        """The first ``count`` batches (train.batch_size, no augmentation) of a shuffle seeded by (seed, t)."""
        generator = epoch_generator(self.cfg.seed, RULE_BATCHES_OFFSET + t)
        batches = self.data.batches("train", self.cfg.train.batch_size, shuffle=True, generator=generator)
        return [b for _, b in zip(range(count), batches)], F.cross_entropy

    def save(self, t: int, rec: Records, masks: MaskSet, next_masks: MaskSet) -> None:
        """One atomic store step (records + m_{t+1}); at t = T also the final ticket w_T ⊙ m_T (docs/figures.md 9)."""
        if t == self.cfg.iterations:
            self.store.save_final(self.run_id, cpu_state(self.model), {k: v.cpu() for k, v in masks.items()})
        self.store.save_step(self.run_id, t, rec.frame(), mask_tensors(next_masks))

    def execute(self) -> int:  # type: ignore[override]
        """Run the missing iterations with a progress bar; return how many were trained now."""
        cfg = self.cfg
        start = len(self.store.completed_steps(self.run_id))
        bar = tqdm(total=cfg.iterations + 1, initial=start, disable=not self.progress,
                   desc=f"{cfg.method} {cfg.model} seed {cfg.seed}")

        def tick(t: int, masks: MaskSet) -> None:
            bar.update()
            bar.set_postfix(remaining=f"{masks.remaining_fraction():.3%}")

        trained = super().execute(on_step=tick)
        bar.close()
        return trained
