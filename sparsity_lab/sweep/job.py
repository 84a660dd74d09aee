"""Running one job of ``sweep.run_many`` (in the parent or in a worker of ``sweep_pool``).

A job is one config or a ``SeedGroupJob`` (configs equal but for the seed, run together by the group
runner, see ``sweep``'s module docstring). Every job yields one ``(status, error, seconds)`` outcome per
member config; an exception becomes a "failed" outcome, so one failed run never stops a sweep.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from sparsity_lab.errors import one_line
from sparsity_lab.store import ResultsStore

log = logging.getLogger("sparsity_lab.sweep.runner")  # the sweep's logger: worker errors read as sweep errors

Runner = Callable[..., Any]
GroupRunner = Callable[..., list[Any]]
Recorder = Callable[[Any, str, str | None, float, str | None], None]
_TRACEBACK_FRAMES = 4


def _expected(err: BaseException) -> bool:
    """Whether ``err`` is a failure of the run, not a bug: its training diverged, a bad input (``UserError``)
    or a store that cannot take it (``StoreError``, e.g. read-only); these are reported in one line, as by
    ``sparsity-lab run``, never with a traceback."""
    from sparsity_lab.engine.divergence import TrainingDiverged
    from sparsity_lab.errors import UserError
    from sparsity_lab.store import StoreError

    return isinstance(err, (TrainingDiverged, UserError, StoreError)) or bool(getattr(err, "failures", None))


def _error_summary(err: BaseException) -> str:
    """``Type: message`` and the innermost frames of the traceback (only ``Type: message``, on one line, for
    an expected failure (``_expected``): training that diverged is a result of the config, not a bug)."""
    if _expected(err):
        return f"{type(err).__name__}: {one_line(err)}"
    frames = traceback.format_tb(err.__traceback__)[-_TRACEBACK_FRAMES:]
    head = "".join(traceback.format_exception_only(type(err), err)).strip()
    return head + "\n" + "".join(frames).rstrip()


def _run_one(runner: Runner, config: Any, store: ResultsStore | str, device: str) -> tuple[str, str | None, float]:
    """Run one config; any exception becomes a "failed" outcome with a traceback summary."""
    t0 = time.perf_counter()
    try:
        store = store if isinstance(store, ResultsStore) else ResultsStore(store)
        result = runner(config, store=store, device=device, progress=False)
        status = "reused" if getattr(result, "reused", False) else "done"
        return status, None, time.perf_counter() - t0
    except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
        if not _expected(err):  # a bug: the whole traceback (run_many reports every failure in one line)
            log.error("run %s failed on %s:\n%s", config.run_id, device, traceback.format_exc())
        return "failed", _error_summary(err), time.perf_counter() - t0


def _resolve_runner(runner: Runner | None) -> Runner:
    if runner is not None:
        return runner
    from sparsity_lab.experiments import run

    return run


@dataclasses.dataclass(frozen=True)
class SeedGroupJob:
    """Configs equal but for the seed, run as one job by the group runner (one outcome per member)."""

    configs: tuple[Any, ...]


def _members(job: Any) -> list[Any]:
    return list(job.configs) if isinstance(job, SeedGroupJob) else [job]


def _resolve_group_runner(group_runner: GroupRunner | None) -> GroupRunner:
    if group_runner is not None:
        return group_runner
    from sparsity_lab.experiments import seed_group

    return seed_group.run_seed_group


Outcome = tuple[str, str | None, float]


def _run_group(group_runner: GroupRunner, configs: Sequence[Any], store: ResultsStore | str,
               device: str) -> list[Outcome]:
    """Run one seed group; every member gets the group's wall time. If the group runner raises, members it
    completed before the error are "done", the others "failed" with the error."""
    t0 = time.perf_counter()
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    try:
        results = group_runner(list(configs), store=store, device=device, progress=False)
        seconds = time.perf_counter() - t0
        return [("reused" if getattr(r, "reused", False) else "done", None, seconds) for r in results]
    except Exception as err:  # noqa: BLE001 - one failed group must not stop the sweep
        if not _expected(err):
            log.error("seed group %s failed on %s:\n%s", [c.run_id for c in configs], device, traceback.format_exc())
        error, seconds = _error_summary(err), time.perf_counter() - t0
        own = getattr(err, "failures", {})  # SeedGroupFailed: each failed member's own reason
        return [("done", None, seconds) if store.is_complete(c.run_id) else
                ("failed", f"TrainingDiverged: {own[c.run_id]}" if c.run_id in own else error, seconds)
                for c in configs]


def _run_job(job: Any, runner: Runner, group_runner: GroupRunner | None, store: ResultsStore | str,
             device: str) -> list[Outcome]:
    """One outcome per member of ``job`` (a config or a ``SeedGroupJob``)."""
    if isinstance(job, SeedGroupJob):
        return _run_group(_resolve_group_runner(group_runner), job.configs, store, device)
    return [_run_one(runner, job, store, device)]
