"""Runs in child processes for the kill, resume and locking tests, forked from the package's fork server.

Each child is a real process (its own PID, its own store handles, killable with SIGKILL, its environment the
test's plus the overrides given), started the way sweep workers are (``sparsity_lab.sweep.fork_server``): the
server has imported the package and torch once, so a child starts in milliseconds instead of paying about
3 s of interpreter start-up and imports, which these tests did several times each.

A child writes what it has to say (``REUSED``/``TRAINED n``, or its traceback) to ``out``; ``exitcode`` is 0,
1 (an exception, traceback in ``out``) or -9 (killed).
"""

from __future__ import annotations

import os
import signal
import traceback
from pathlib import Path
from typing import Any

from sparsity_lab.sweep import fork_server


def start_run(config: dict[str, Any], out: Path, *, env: dict[str, str], kill_at_epoch: int = -1) -> Any:
    """Start ``experiments.run`` of the config dict ``config`` in a child whose environment is this process's plus
    ``env``; with ``kill_at_epoch`` >= 1 the child SIGKILLs itself as its ``kill_at_epoch``-th training epoch
    starts. Returns the started ``multiprocessing.Process``."""
    state = fork_server.snapshot()
    state["environ"].update(env)
    child = fork_server.context().Process(target=_run, args=(state, config, str(out), kill_at_epoch))
    child.start()
    return child


def finish(child: Any, out: Path, timeout: float = 300.0) -> tuple[int, str]:
    """Wait for ``child``; (exit code, what it wrote to ``out``)."""
    child.join(timeout)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise AssertionError(f"child {child.pid} still running after {timeout} s")
    return child.exitcode, (out.read_text() if out.is_file() else "")


def _run(state: dict[str, Any], config: dict[str, Any], out: str, kill_at_epoch: int) -> None:
    fork_server.apply(state)
    try:
        from sparsity_lab import experiments
        from sparsity_lab.config.configs import config_from_dict
        from sparsity_lab.engine.trainer import MaskedTrainer

        if kill_at_epoch >= 1:
            calls = {"n": 0}
            original = MaskedTrainer.train_epoch

            def counting(self: Any) -> Any:
                calls["n"] += 1
                if calls["n"] == kill_at_epoch:
                    os.kill(os.getpid(), signal.SIGKILL)
                return original(self)

            MaskedTrainer.train_epoch = counting
        result = experiments.run(config_from_dict(config), device="cpu", progress=False)
        trained = experiments.ResultsStore().summary(result.run_id)["summary"]["trained_now"]
        Path(out).write_text(f"{'REUSED' if result.reused else 'TRAINED'} {trained}\n")
    except BaseException:
        Path(out).write_text(traceback.format_exc())
        raise SystemExit(1) from None
