"""One results store and one data root for every entry point (CLI, report, notebooks, explorer).

When ``$SPARSITY_LAB_RESULTS`` / ``$SPARSITY_LAB_DATA`` are unset and the package runs from a source
checkout, they default to ``<repository>/results`` and ``<repository>/data`` (not the working
directory: a notebook opened with plain ``jupyter lab`` or VS Code runs in ``notebooks/``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repository_root", "use_repository_roots"]


def repository_root() -> Path | None:
    """The checkout holding this package (a ``pyproject.toml`` naming sparsity_lab beside it), else None."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    try:
        return root if 'name = "sparsity_lab"' in pyproject.read_text() else None
    except OSError:
        return None


def use_repository_roots() -> None:
    """Set the two environment variables to the repository's folders where they are unset."""
    root = repository_root()
    if root is None:
        return
    os.environ.setdefault("SPARSITY_LAB_RESULTS", str(root / "results"))
    os.environ.setdefault("SPARSITY_LAB_DATA", str(root / "data"))
