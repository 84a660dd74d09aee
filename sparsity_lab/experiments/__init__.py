"""Runners that turn a config into stored results: ``run(config)`` dispatches on the config's kind.

``run`` is idempotent (a finished config returns its stored records without training) and
resumable (an interrupted run continues at the last completed pruning iteration / epoch). A lock
per run id keeps two processes from training the same run at once: the second waits, then reuses.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

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
    from sparsity_lab.config import ASNI_ONESHOT_VARIANTS
    from sparsity_lab.experiments.asni import AsniRun

    for parent in cfg.dependencies():
        run(parent, store=store, device=device, progress=progress)
    if cfg.variant in ASNI_ONESHOT_VARIANTS:
        from sparsity_lab.experiments.asni_oneshot import prune_dense_once

        return prune_dense_once(cfg, store)
    return AsniRun(cfg, store, device, progress).execute()


RUNNERS: dict[str, Callable[..., int]] = {"iterative": _iterative, "asni": _asni}

#: Artifacts each kind keeps only to resume an interrupted run; dropped once the run is complete (an ASNI
#: run's "trainer" holds the weights and optimizer state of its last epoch: for ResNet-18 with momentum,
#: ~90 MB per run that no figure reads).
RESUME_ONLY_ARTIFACTS: dict[str, tuple[str, ...]] = {"iterative": (), "asni": ("trainer",)}

#: CPU threads a run uses (env SPARSITY_LAB_CPU_THREADS, default 1). The models of the quick profile are
#: small; with two or more intra-op threads, any other busy process on the machine (a notebook kernel, a
#: second sweep worker) turns OpenMP's spin-waits into ~10x slower steps (measured on the 2-core CPU:
#: 217 s with 2 threads vs 17 s with 1 for the same 3-iteration FashionMNIST mlp run under load).
CPU_THREADS_ENV = "SPARSITY_LAB_CPU_THREADS"


@contextlib.contextmanager
def cpu_threads(device: torch.device) -> Iterator[None]:
    """Use ``$SPARSITY_LAB_CPU_THREADS`` (default 1) intra-op threads while training on the CPU."""
    if device.type != "cpu":
        yield
        return
    wanted = int(os.environ.get(CPU_THREADS_ENV, "1"))
    if wanted < 1:
        raise ValueError(f"{CPU_THREADS_ENV}={wanted}: allowed an integer >= 1")
    before = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
        resolved = resolve_device(device)
        with cpu_threads(resolved):
            trained = RUNNERS[config.kind](config, store, resolved, progress)
        TRAINING_COUNTER["iterations"] += trained
        store.mark_complete(run_id, {"trained_now": trained})
        for name in RESUME_ONLY_ARTIFACTS[config.kind]:
            store.drop_artifact(run_id, name)
    return RunResult(run_id, store.records(run_id), reused=False)


__all__ = ["RESUME_ONLY_ARTIFACTS", "RUNNERS", "RunResult", "TRAINING_COUNTER", "run"]
