"""Runs as cluster jobs through submitit: SLURM job arrays, or submitit's local executor (subprocess jobs).

``submit_runs(configs, executor="slurm", options=load_options())`` submits the runs a sweep or a batch of
figures needs and returns a handle; ``wait(handle)`` blocks until they have finished and returns one
``SweepOutcome`` per config, like ``sweep.run_many``. Jobs requeue themselves when preempted or near their
time limit and resume from the store (``task.RunTask``); each submission leaves a jobs file that
``sparsity-lab jobs`` reads (``jobs_file``, ``monitor``). README: "On a cluster".
"""

from __future__ import annotations

from typing import Any

from sparsity_lab.sweep.cluster.options import EXECUTORS, ClusterOptions, load_options

__all__ = ["EXECUTORS", "ClusterOptions", "Submission", "load_options", "submit_runs", "wait"]


def __getattr__(name: str) -> Any:
    """``submit_runs``, ``wait``, ``Submission`` load submitit and torch only when used (fast CLI start)."""
    if name in ("Submission", "submit_runs", "wait"):
        from sparsity_lab.sweep.cluster import submit

        return getattr(submit, name)
    raise AttributeError(name)
