"""Runners that turn a config into stored results: ``run(config)`` dispatches on the config's kind.

``run`` is idempotent (a finished config returns its stored records without training) and
resumable (an interrupted run continues at the last completed pruning iteration / epoch). A lock
per run id keeps two processes from training the same run at once: the second waits, then reuses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sparsity_lab.config import AsniConfig, ExperimentConfig, IterativeConfig
from sparsity_lab.experiments.common import RunResult, resolve_device
from sparsity_lab.store import ResultsStore

#: Trainings started by this process (one per pruning iteration or ASNI run); tests use it to prove reuse.
TRAINING_COUNTER = {"iterations": 0}


def _iterative(cfg: IterativeConfig, store: ResultsStore, device: torch.device, progress: bool) -> int:
    from sparsity_lab.experiments.iterative import IterativeRun

    if cfg.is_control:
        run(cfg.control_parent(), store=store, device=device, progress=progress)
    return IterativeRun(cfg, store, device, progress).execute()


def _asni(cfg: AsniConfig, store: ResultsStore, device: torch.device, progress: bool) -> int:
    from sparsity_lab.experiments.asni import AsniRun

    if cfg.variant not in ("asni1", "dense"):
        run(cfg.schedule_parent(), store=store, device=device, progress=progress)
    return AsniRun(cfg, store, device, progress).execute()


RUNNERS: dict[str, Callable[..., int]] = {"iterative": _iterative, "asni": _asni}


def run(config: ExperimentConfig, *, store: ResultsStore | None = None, device: str | torch.device | None = None,
        progress: bool = True) -> RunResult:
    """Run (or resume, or reuse) one experiment and return its tidy records."""
    config.validate()
    store = store if store is not None else ResultsStore()
    run_id = config.run_id
    if store.is_complete(run_id):
        return RunResult(run_id, store.records(run_id), reused=True)
    store.prepare(config)
    with store.lock(run_id):
        if store.is_complete(run_id):  # another process finished it while we waited
            return RunResult(run_id, store.records(run_id), reused=True)
        trained = RUNNERS[config.kind](config, store, resolve_device(device), progress)
        TRAINING_COUNTER["iterations"] += trained
        store.mark_complete(run_id, {"trained_now": trained})
    return RunResult(run_id, store.records(run_id), reused=False)


__all__ = ["RUNNERS", "RunResult", "TRAINING_COUNTER", "run"]
