"""Checks the command line runs before it creates anything: flag values, devices,
environment variables, the results root; and an argparse parser whose errors are one line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from sparsity_lab.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` parser whose usage errors are one line (``prog: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count_arg(low: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers >= ``low``; others give one line naming the value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: an integer >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def check_results_root(root: str | None) -> str | None:
    """``root`` (or ``$SPARSITY_LAB_RESULTS``) must be a directory or not exist yet; UserError otherwise."""
    from sparsity_lab.store.results import ENV_VAR

    chosen, source = (root, "--results") if root is not None else (os.environ.get(ENV_VAR) or None, ENV_VAR)
    if chosen is not None:
        path = Path(chosen).expanduser()
        if path.exists() and not path.is_dir():
            raise UserError(f"results store {source}={chosen!r} is not a directory: allowed a directory "
                            "(created if missing)")
    return root


def preflight_devices(devices: Sequence[str] | None) -> None:
    """Every device must exist here and ``$SPARSITY_LAB_CPU_THREADS`` be valid, before any run starts."""
    from sparsity_lab.experiments import cpu_thread_count
    from sparsity_lab.experiments.common import resolve_device

    for device in devices or [None]:
        resolve_device(device)
    cpu_thread_count()



def preflight_data(datasets: Sequence[str]) -> None:
    """The data root (``$SPARSITY_LAB_DATA``) must be a readable directory or not exist yet (cheap: no loading)."""
    from sparsity_lab.data import data_root
    from sparsity_lab.data.info import SYNTHETIC_PREFIX, canonical_name
    from sparsity_lab.data.preflight import check_root

    for key in {canonical_name(d) for d in datasets} - {"digits"}:
        if not key.startswith(SYNTHETIC_PREFIX):
            check_root(data_root(), key)
