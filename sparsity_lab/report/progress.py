"""What the report batch's bar says while notebooks run (README "Reading the reports"): for each notebook being
executed, how many of the runs its plan holds (``pipeline.plan``) the results store has so far, and how long the
training left should take.

The estimate is the cost model's (:func:`sparsity_lab.sweep.costs.estimate_seconds`, seconds on the GPU it was
measured on, ``costs.DEVICE``) summed over the runs not stored yet. Once this batch has trained a run, it is scaled
by a factor measured here: the batch's wall time so far over the estimate of the runs it trained, which also
covers other devices (a CPU, another GPU) and the notebooks running side by side. On a CPU before that, no
estimate: the cost model's GPU seconds say nothing about a CPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sparsity_lab.sweep.costs import DEVICE, estimate_seconds

__all__ = ["BatchProgress", "duration", "post_every"]


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """``under 1 min``, ``about 12 min``, ``about 2 h 05 min``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under 1 min"
    return f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60:02d} min"


class BatchProgress:
    """The runs of each notebook of a batch and the store they land in; :meth:`text` is the bar's postfix.

    ``runs``: per notebook stem, its runs' configs by run id (a run shared by two notebooks counts once in the
    estimate). ``on_cpu``: the notebooks train on a CPU. ``clock``: seconds (for tests)."""

    def __init__(self, runs: Mapping[str, Mapping[str, Any]], store: Any, *, on_cpu: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runs = {name: dict(configs) for name, configs in runs.items()}
        self.configs = {rid: cfg for configs in self.runs.values() for rid, cfg in configs.items()}
        self.store, self.on_cpu, self.clock = store, on_cpu, clock
        self.started = clock()
        self.stored: set[str] = set()
        self.poll()
        self.at_start = set(self.stored)  # not trained by this batch

    def poll(self) -> None:
        """Ask the store about the runs not seen complete yet (a complete run stays complete)."""
        self.stored.update(rid for rid in self.configs if rid not in self.stored and self.store.is_complete(rid))

    def text(self, running: Sequence[str], done: Collection[str] = ()) -> str:
        """``01_sap_trajectories 3/12 runs stored · 9 runs to train, about 4 min (...)``: the ``running`` notebooks'
        stored runs, then the estimate for the runs of the notebooks not ``done``."""
        self.poll()
        parts = []
        for name in running:
            have = self.runs.get(name, {})
            parts.append(f"{name} {sum(r in self.stored for r in have)}/{len(have)} runs stored" if have
                         else f"{name} (no runs)")
        return " · ".join([*parts, self.estimate(done)])

    def estimate(self, done: Collection[str] = ()) -> str:
        """How long the training of the runs still missing should take (module docstring)."""
        left = {rid for name, configs in self.runs.items() if name not in done for rid in configs} - self.stored
        if not left:
            return "no training left"
        seconds = sum(estimate_seconds(self.configs[rid]) for rid in left)
        trained = sum(estimate_seconds(self.configs[rid]) for rid in self.stored - self.at_start)
        if trained > 0:
            factor = (self.clock() - self.started) / trained
            return (f"{_runs(len(left))} to train, {duration(seconds * factor)} "
                    f"(cost model × {factor:.3g} measured in this batch)")
        if self.on_cpu:
            return f"{_runs(len(left))} to train · CPU: no estimate until one is trained"
        return f"{_runs(len(left))} to train, {duration(seconds)} on one {DEVICE} (cost model)"


def post_every(seconds: float, post: Callable[[], None]) -> Callable[[], None]:
    """Call ``post`` now and every ``seconds`` on a daemon thread until the returned function is called."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                post()
            except Exception:  # a store being written may not answer once; the next poll will
                pass
            if stop.wait(seconds):
                return

    thread = threading.Thread(target=loop, name="report-progress", daemon=True)
    thread.start()

    def cancel() -> None:
        stop.set()
        thread.join(timeout=seconds + 5)

    return cancel
