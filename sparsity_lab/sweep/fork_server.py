"""How sweep workers are started: from a fork server that has already imported the package.

A spawned worker imports torch and sparsity_lab itself (about 5 s on the GPU machines), one more fixed
cost per sweep on top of the parent's own imports. Python's ``forkserver`` start method keeps one
server process that imports :data:`PRELOAD` once and forks each worker from it in milliseconds. The
server never initialises CUDA and runs no work, so forking it is as safe as PyTorch's default fork-started
DataLoader workers (importing torch and pyarrow leaves a helper thread each; glibc and jemalloc handle
fork around those).
``warm()`` starts that server at once, so its imports run while the calling process is still importing
(``python -m sparsity_lab sweep`` calls it before loading the CLI when ``expects_workers``), and the
workers are ready when the first job is.

Workers forked from the server inherit *its* environment and working directory, which were the parent's
when it started: ``snapshot()`` captures the parent's current ones and the worker applies them first
(``apply``), so ``--compile``, ``SPARSITY_LAB_*`` variables and relative paths behave as with ``spawn``.
``SPARSITY_LAB_WORKER_START=spawn`` (or a platform without ``forkserver``) uses plain spawn.

This module imports nothing heavy: it runs before torch is imported.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

#: Modules the fork server imports once (what a worker needs to run an experiment). ``torch._dynamo``: torch's
#: optimizers import it the first time one is built (``torch._disable_dynamo``), about 1 s in every worker
#: otherwise; importing it starts no thread.
PRELOAD = ["sparsity_lab.experiments", "sparsity_lab.sweep.pool", "torch._dynamo"]
START_ENV = "SPARSITY_LAB_WORKER_START"
METHODS = ("forkserver", "spawn")


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """``$name`` (``default`` when unset) if it is one of ``choices``; else a ValueError naming both."""
    wanted = os.environ.get(name, default)
    if wanted not in choices:
        raise ValueError(f"${name}={wanted!r} is not allowed: choose one of {', '.join(choices)}")
    return wanted


def method() -> str:
    """'forkserver' where the platform has it (Linux, macOS), unless $SPARSITY_LAB_WORKER_START says 'spawn'."""
    wanted = env_choice(START_ENV, METHODS, "forkserver")
    return wanted if wanted in multiprocessing.get_all_start_methods() else "spawn"


def context() -> Any:
    """The multiprocessing context sweep workers are started with (fork server preloading :data:`PRELOAD`)."""
    ctx = multiprocessing.get_context(method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm() -> None:
    """Start the fork server now (it imports :data:`PRELOAD` in the background); a no-op with 'spawn' and in
    a worker process (which may import the parent's main module while it starts)."""
    if multiprocessing.parent_process() is not None:
        return
    try:
        ctx = context()
    except ValueError:
        return  # reported where the workers are started
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def expects_workers(argv: list[str]) -> bool:
    """Whether ``sparsity-lab sweep`` with ``argv`` will start worker processes (more than one slot), judged
    without importing torch: ``--devices`` and ``--workers-per-device``, else the GPUs the NVIDIA driver
    lists (``/proc/driver/nvidia/gpus``, narrowed by ``CUDA_VISIBLE_DEVICES``). A wrong guess only costs
    speed: a fork server started for nothing, or workers spawned without one."""
    def value(flag: str) -> str | None:
        for i, arg in enumerate(argv):
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return None

    try:
        per_device = int(value("--workers-per-device") or 1)
    except ValueError:
        return False
    devices = value("--devices")
    if devices is not None:
        return len([d for d in devices.split(",") if d]) * per_device > 1
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        gpus = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        gpus = 0
    if visible is not None:
        gpus = min(gpus, len([d for d in visible.split(",") if d.strip()]))
    return max(gpus, 1) * per_device > 1


def snapshot() -> dict[str, Any]:
    """The parent's environment and working directory, for a worker to apply before anything else."""
    return {"environ": dict(os.environ), "cwd": os.getcwd()}


def apply(state: dict[str, Any]) -> None:
    """Make this worker's environment and working directory the parent's (see the module docstring)."""
    os.environ.clear()
    os.environ.update(state["environ"])
    os.chdir(state["cwd"])
