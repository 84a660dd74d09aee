"""One results store and one data root for every entry point (CLI, report, notebooks, explorer, library).

``$SPARSITY_LAB_RESULTS`` / ``$SPARSITY_LAB_DATA`` when set; otherwise, inside a source checkout,
``<repository>/results`` and ``<repository>/data`` whatever the working directory (a notebook opened with
plain ``jupyter lab`` or VS Code runs in ``notebooks/``; README "Set-up"). The checkout is the one holding
this package, else the nearest one above the working directory (the package installed elsewhere); outside
any checkout the defaults are ``./results`` and ``./data``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "RESULTS_ENV", "data_root", "repository_root", "results_root", "use_repository_roots"]

RESULTS_ENV = "SPARSITY_LAB_RESULTS"
DATA_ENV = "SPARSITY_LAB_DATA"


def _is_checkout(folder: Path) -> bool:
    try:
        return 'name = "sparsity_lab"' in (folder / "pyproject.toml").read_text()
    except OSError:
        return False


def repository_root() -> Path | None:
    """The checkout holding this package, else the nearest checkout containing the working directory, else None."""
    here = Path(__file__).resolve().parents[1]
    if _is_checkout(here):
        return here
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the working directory was removed
        return None
    return next((d for d in (cwd, *cwd.parents) if _is_checkout(d)), None)


def _root(env: str, folder: str) -> Path:
    chosen = os.environ.get(env)
    if chosen:
        return Path(chosen).expanduser()
    repo = repository_root()
    return repo / folder if repo is not None else Path(folder)


def results_root() -> Path:
    """``$SPARSITY_LAB_RESULTS``, else ``<repository>/results``, else ``./results``."""
    return _root(RESULTS_ENV, "results")


def data_root() -> Path:
    """``$SPARSITY_LAB_DATA``, else ``<repository>/data``, else ``./data``."""
    return _root(DATA_ENV, "data")


def use_repository_roots() -> None:
    """Set the two environment variables to the repository's folders where they are unset (so kernels and
    worker processes started from here inherit them)."""
    if repository_root() is None:
        return
    os.environ.setdefault(RESULTS_ENV, str(results_root().absolute()))
    os.environ.setdefault(DATA_ENV, str(data_root().absolute()))
