"""Runners that turn a config into stored results: ``run(config)`` dispatches on the config's kind.

``run`` is idempotent (a finished config returns its stored records without training) and
resumable (an interrupted run continues at the last completed pruning iteration / epoch; a damaged
one recomputes exactly what fails verification). A lock per run id keeps two processes from training
the same run at once: the second waits, then reuses. Training that diverges (non-finite loss or
weights) raises ``TrainingDiverged`` after the run is stored as failed with the reason; running the
config again retries it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from sparsity_lab.config.configs import AsniConfig, ExperimentConfig, IterativeConfig
from sparsity_lab.data import ensure_available
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.errors import env_int
from sparsity_lab.experiments.common import RunResult, resolve_device
from sparsity_lab.store import ResultsStore


def _iterative(cfg: IterativeConfig, store: ResultsStore, device: torch.device, progress: bool) -> int:
    from sparsity_lab.experiments.iterative import IterativeRun

    return IterativeRun(cfg, store, device, progress).execute()


def _asni(cfg: AsniConfig, store: ResultsStore, device: torch.device, progress: bool) -> int:
    from sparsity_lab.config.configs import ASNI_ONESHOT_VARIANTS
    from sparsity_lab.experiments.asni import AsniRun

    if cfg.variant in ASNI_ONESHOT_VARIANTS:
        from sparsity_lab.experiments.asni_oneshot import prune_dense_once

        return prune_dense_once(cfg, store)
    return AsniRun(cfg, store, device, progress).execute()


RUNNERS: dict[str, Callable[..., int]] = {"iterative": _iterative, "asni": _asni}

#: Artifacts each kind keeps only to resume an interrupted run; dropped once the run is complete (an ASNI
#: run's "trainer" holds the weights and optimizer state of its last epoch: for ResNet-18 with momentum,
#: ~90 MB per run that no figure reads). An iterative run's "init" (θ₀, 6 MB for the cnn) is read by no other
#: run and is recreated identically from the seed (``seeded_model``) if a step must ever be recomputed; its
#: "rewind" / "reference" weights cannot be recreated without retraining, so they stay.
RESUME_ONLY_ARTIFACTS: dict[str, tuple[str, ...]] = {"iterative": ("init",), "asni": ("trainer",)}

#: CPU threads a run uses (env SPARSITY_LAB_CPU_THREADS, default 1). The models of the quick profile are
#: small; with two or more intra-op threads, any other busy process on the machine (a notebook kernel, a
#: second sweep worker) turns OpenMP's spin-waits into ~10x slower steps (measured on the 2-core CPU:
#: 217 s with 2 threads vs 17 s with 1 for the same 3-iteration FashionMNIST mlp run under load).
CPU_THREADS_ENV = "SPARSITY_LAB_CPU_THREADS"


def cpu_thread_count() -> int:
    """``$SPARSITY_LAB_CPU_THREADS`` (default 1); ``errors.EnvVarError`` unless an integer in [1, 1024]."""
    return env_int(CPU_THREADS_ENV, 1, low=1, high=1024)


@contextlib.contextmanager
def cpu_threads(device: torch.device) -> Iterator[None]:
    """Use ``$SPARSITY_LAB_CPU_THREADS`` (default 1) intra-op threads while training on the CPU."""
    if device.type != "cpu":
        yield
        return
    wanted = cpu_thread_count()
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
        return RunResult(run_id, store.reusable_records(run_id), reused=True)
    resolved = resolve_device(device)  # bad devices, env vars and data fail before the run directory exists
    cpu_thread_count()
    ensure_available(config.dataset)
    store.prepare(config, device=resolved)
    with store.lock(run_id):
        if store.is_complete(run_id):  # another process finished it while we waited
            return RunResult(run_id, store.reusable_records(run_id), reused=True)
        store.clear_failed(run_id)  # a failed run is retried
        for parent in config.dependencies():  # their stored results are this run's inputs
            run(parent, store=store, device=resolved, progress=progress)
        try:
            with cpu_threads(resolved):
                trained = RUNNERS[config.kind](config, store, resolved, progress)
        except TrainingDiverged as err:
            store.mark_failed(run_id, str(err))
            raise
        store.mark_complete(run_id, {"trained_now": trained})
        for name in RESUME_ONLY_ARTIFACTS[config.kind]:
            store.drop_artifact(run_id, name)
    return RunResult(run_id, store.records(run_id), reused=False)


__all__ = ["RESUME_ONLY_ARTIFACTS", "RUNNERS", "RunResult", "TrainingDiverged", "run"]
