"""Seed groups: the seeds of one iterative-pruning config trained together by the batched engine.

A *seed group* is a set of ``IterativeConfig``s equal except for ``seed`` (docs/methods.md §3 runs every
config for several seeds). ``run_seed_group`` trains the members that sit at the same pruning
iteration t with one ``BatchedTrainer`` (one vmapped model, each member with its own θ₀, mask m_t and
seed's batch order), writes the trained weights back into each member's model, and then does per
member exactly what ``IterativeRun`` does after training: both go through the one §3 loop of
``sparsity_lab.experiments.protocol`` (``step_together``: masks, rewind, train, then each member's ``finish_iteration``:
measure w_t ⊙ m_t, prune by the method's rule, measure w_t ⊙ m_{t+1}, save the step). The stored records equal
those of separate runs up to float round-off of the vmapped sums (the engine's tests: weights ~1e-8).

A member whose training diverges (engine/divergence.py) is stored as failed and leaves the group; the
others retrain that iteration without it and go on. ``run_seed_group`` raises ``SeedGroupFailed`` (naming
each failed member and its reason) after every other member is done.

Members run separately (``experiments.run``) instead when the group cannot share the engine; see
``BATCH_BLOCKERS``. Each member's ``wall_time`` record is its share (1/N) of the batched training time
plus its own measuring/pruning time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import torch
from filelock import Timeout
from tqdm.auto import tqdm

from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.base import has_conv
from sparsity_lab.engine.batched import BatchedTrainer
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.experiments import run
from sparsity_lab.experiments.common import RunResult, resolve_device
from sparsity_lab.experiments.iterative import Evaluate, IterativeRun, load_run_data
from sparsity_lab.experiments.protocol import step_together
from sparsity_lab.masks import MaskSet
from sparsity_lab.store import ResultsStore

log = logging.getLogger("sparsity_lab.seed_group")

#: (reason, predicate): a config for which a predicate holds is trained seed by seed, not batched.
BATCH_BLOCKERS: tuple[tuple[str, Callable[[IterativeConfig], bool]], ...] = (
    ("rank_weights is not 'last' (best-epoch selection snapshots each member's weights every epoch)",
     lambda c: c.rank_weights != "last"),
    ("rewind_epoch > 0 (late rewinding: each member's epoch-k weights and a resumed schedule)",
     lambda c: c.rewind_epoch > 0),
    ("a control method (it runs its parent config first and draws its own masks)", lambda c: c.is_control),
    ("val_size > 0 or train_subset > 0 (each seed draws its own data split; the batched engine shares one "
     "dataset)", lambda c: c.val_size > 0 or c.train_subset > 0),
)


class SeedGroupFailed(RuntimeError):
    """Some members of a seed group failed (their training diverged); ``failures``: run id -> reason."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        super().__init__("; ".join(f"run {rid} failed: {why}" for rid, why in self.failures.items()))


def batch_blockers(config: IterativeConfig) -> list[str]:
    """Why ``config``'s seeds cannot share the batched engine (empty list: they can)."""
    return [reason for reason, blocks in BATCH_BLOCKERS if blocks(config)]


def seed_free_key(config: object) -> str | None:
    """The canonical text of ``config`` with seed 0: equal for the members of one seed group
    (None for configs that are not iterative-pruning configs)."""
    return config_with(config, seed=0).canonical() if isinstance(config, IterativeConfig) else None


def check_seed_group(configs: Sequence[IterativeConfig]) -> list[IterativeConfig]:
    """The distinct configs of a seed group (by run id, first occurrence kept); ValueError if ``configs`` is
    empty, holds a non-iterative config, or two configs differ in anything but ``seed``."""
    if not configs:
        raise ValueError("run_seed_group needs at least one config")
    for c in configs:
        if not isinstance(c, IterativeConfig):
            raise ValueError(f"run_seed_group: {c!r} is a {type(c).__name__}; allowed IterativeConfig only")
    key = seed_free_key(configs[0])
    for c in configs[1:]:
        if seed_free_key(c) != key:
            raise ValueError(f"run_seed_group: configs must differ only in seed; {c.canonical()} differs from "
                             f"{configs[0].canonical()} in more than the seed")
    return list({c.run_id: c for c in configs}.values())


def forms_seed_group(configs: Sequence[object]) -> bool:
    """True when ``configs`` are >= 2 distinct iterative configs equal but for the seed, and batchable."""
    keys = {seed_free_key(c) for c in configs}
    distinct = {c.run_id for c in configs}
    return (len(distinct) >= 2 and len(keys) == 1 and None not in keys
            and not batch_blockers(configs[0]))  # type: ignore[arg-type]


def model_has_conv(config: IterativeConfig) -> bool:
    """Whether ``config.model`` on ``config.dataset`` has convolutions (built on the meta device: no memory)."""
    from sparsity_lab.data import dataset_info
    from sparsity_lab.models import create_model

    with torch.device("meta"):
        return has_conv(create_model(config.model, dataset_info(config.dataset)))


def should_batch(configs: Sequence[object], device: str | torch.device) -> bool:
    """The automatic policy: batch a seed group on CUDA when the model has no convolutions.

    Fully connected models gain roughly 8-100x on an H100 trained as one vmapped ensemble; under vmap
    convolutions become grouped convolutions and lose to separate runs (measured by the engine's author),
    and on CPU there is nothing to gain.
    """
    return (forms_seed_group(configs) and torch.device(device).type == "cuda"
            and not model_has_conv(configs[0]))  # type: ignore[arg-type]


def run_seed_group(configs: Sequence[IterativeConfig], *, store: ResultsStore | None = None,
                   device: str | torch.device | None = None, progress: bool = True) -> list[RunResult]:
    """Run (or resume, or reuse) the seeds of one config together; one ``RunResult`` per input config.

    Complete members are reused. The others are prepared and locked in run-id order; a member whose lock
    another process holds is left out and run alone afterwards by ``experiments.run`` (which waits for
    the lock, then reuses or resumes it). Locked members resume from their stored steps; those at the same
    next iteration train together, the lowest iteration first, so a lagging member catches up and joins.
    """
    group = check_seed_group(configs)
    for c in group:
        c.validate()
    store = store if store is not None else ResultsStore()
    dev = resolve_device(device)
    results: dict[str, RunResult] = {}
    failures: dict[str, str] = {}

    def alone_run(c: IterativeConfig) -> None:
        try:
            results[c.run_id] = run(c, store=store, device=dev, progress=progress)
        except TrainingDiverged as err:  # stored as failed by run(); the other members go on
            failures[c.run_id] = str(err)

    if batch_blockers(group[0]):
        log.info("seed group %s runs seed by seed: %s", group[0].canonical(), "; ".join(batch_blockers(group[0])))
        for c in group:
            alone_run(c)
        return _results(configs, results, failures)
    todo = []
    for c in group:
        if store.is_complete(c.run_id):
            results[c.run_id] = RunResult(c.run_id, store.reusable_records(c.run_id), reused=True)
        else:
            store.prepare(c, device=dev)
            todo.append(c)
    alone: list[IterativeConfig] = []
    with ExitStack() as locks:
        members = []
        for c in sorted(todo, key=lambda c: c.run_id):
            try:
                locks.enter_context(store.lock(c.run_id, timeout=0))
            except Timeout:
                log.info("run %s is locked by another process: it runs after the group", c.run_id)
                alone.append(c)
                continue
            if store.is_complete(c.run_id):  # finished by another process before we took the lock
                results[c.run_id] = RunResult(c.run_id, store.reusable_records(c.run_id), reused=True)
            else:
                members.append(c)
        if members:
            failures.update(_GroupTraining(members, store, dev, progress).run())
        for c in members:
            if c.run_id not in failures:
                results[c.run_id] = RunResult(c.run_id, store.records(c.run_id), reused=False)
    for c in alone:
        alone_run(c)
    return _results(configs, results, failures)


def _results(configs: Sequence[IterativeConfig], results: dict[str, RunResult],
             failures: dict[str, str]) -> list[RunResult]:
    if failures:
        raise SeedGroupFailed(failures)
    return [results[c.run_id] for c in configs]


class _GroupTraining:
    """The locked, incomplete members of a seed group trained iteration by iteration."""

    def __init__(self, members: list[IterativeConfig], store: ResultsStore, device: torch.device,
                 progress: bool) -> None:
        data = load_run_data(members[0], device)  # seed-independent: no val split or subset (BATCH_BLOCKERS)
        self.store, self.device, self.progress = store, device, progress
        self.runs = [IterativeRun(c, store, device, progress=False, data=data) for c in members]
        self.trained = [0] * len(members)
        self.failures: dict[str, str] = {}

    def run(self) -> dict[str, str]:
        """Train every member to T; each is marked complete as soon as its last iteration is stored, or
        failed (and left out) when its training diverges. Returns the failures: run id -> reason."""
        T = self.runs[0].cfg.iterations
        position: dict[int, tuple[int, MaskSet]] = {i: r.begin() for i, r in enumerate(self.runs)}
        cfg = self.runs[0].cfg
        bar = tqdm(total=sum(T + 1 - t for t, _ in position.values()), disable=not self.progress,
                   desc=f"{cfg.method} {cfg.model} seeds {[r.cfg.seed for r in self.runs]}")
        for i, (t, _) in list(position.items()):
            if t > T:
                self._complete(i, position)
        while position:
            t = min(t for t, _ in position.values())
            cohort = [i for i, (ti, _) in position.items() if ti == t]
            try:
                next_masks = self._iteration(t, cohort, [position[i][1] for i in cohort])
            except TrainingDiverged as err:  # drop the diverged members; the others retrain iteration t
                self._fail(t, cohort, err, position)
                continue
            for i, masks in zip(cohort, next_masks):
                position[i] = (t + 1, masks)
                self.trained[i] += 1
                if t == T:
                    self._complete(i, position)
            bar.update(len(cohort))
        bar.close()
        return self.failures

    def _fail(self, t: int, cohort: list[int], err: TrainingDiverged, position: dict[int, tuple[int, MaskSet]]) -> None:
        by_member = {d.member: d for d in err.divergences}
        for k, i in enumerate(cohort):
            if len(cohort) > 1 and k not in by_member:
                continue
            own = err if len(cohort) == 1 else TrainingDiverged([dataclasses.replace(by_member[k], member=None)],
                                                               context=f"pruning iteration {t}")
            run_id = self.runs[i].run_id
            self.store.mark_failed(run_id, str(own))
            self.failures[run_id] = str(own)
            log.error("run %s failed: %s", run_id, own)
            position.pop(i)

    def _complete(self, i: int, position: dict[int, tuple[int, MaskSet]]) -> None:
        self.store.mark_complete(self.runs[i].run_id, {"trained_now": self.trained[i], "seed_group": True})
        position.pop(i)

    def _iteration(self, t: int, cohort: list[int], masks: list[MaskSet]) -> list[MaskSet]:
        """Iteration t of the members in ``cohort`` through ``protocol.step_together`` (the §3 loop), their
        training done together by the batched engine; returns their m_{t+1}. A lone member trains as a
        separate run."""
        runs = [self.runs[i] for i in cohort]
        if len(runs) == 1:
            return [runs[0].step(t, masks[0])]
        return step_together(runs, t, masks, self._train_together)

    def _train_together(self, t: int, runs: Sequence[IterativeRun], masks: Sequence[MaskSet]) -> list[Evaluate]:
        """Step 3 for the cohort: E epochs of one BatchedTrainer, weights written back into each member."""
        for r in runs:
            r.model.train()  # stack_module_state needs one mode; a member evaluated last iteration is in eval
        cfg = runs[0].cfg
        engine = BatchedTrainer([r.model for r in runs], list(masks), runs[0].data, cfg.train,
                                seeds=[r.cfg.seed for r in runs], device=self.device)
        for _ in range(cfg.train.epochs):
            engine.train_epoch()  # TrainingDiverged names the diverged members (indices into `runs`)
        engine.unstack()
        return [r.trainer(m).evaluate for r, m in zip(runs, masks)]

__all__ = ["BATCH_BLOCKERS", "SeedGroupFailed", "batch_blockers", "check_seed_group", "forms_seed_group", "model_has_conv",
           "run_seed_group", "seed_free_key", "should_batch"]
