"""The data root checked before anything is read or created.

A data root that is a file or unreadable is named in one line; a root that did not exist and into
which nothing could be downloaded is removed again (it only holds our lock files), so a failed
first use leaves no empty ``data/`` behind and says that the root does not exist.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .info import DatasetUnavailableError


def check_root(root: Path, key: str) -> None:
    """DatasetUnavailableError unless ``root`` is a readable directory or does not exist yet."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DatasetUnavailableError(f"data root {str(root)!r} (dataset {key!r}) is not a directory: allowed a "
                                      "directory; set SPARSITY_LAB_DATA (or pass root=) to the folder with the data")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DatasetUnavailableError(f"data root {str(root)!r} (dataset {key!r}) is not readable (permission "
                                      "denied): allowed a readable directory; fix its permissions or set "
                                      "SPARSITY_LAB_DATA to another folder")


def permission_error(err: PermissionError, root: Path, key: str) -> DatasetUnavailableError:
    """One line for a file under the data root that cannot be read or written."""
    where = err.filename or str(root)
    return DatasetUnavailableError(f"dataset {key!r}: permission denied on {str(where)!r} under data root "
                                   f"{str(root)!r}; fix its permissions or set SPARSITY_LAB_DATA to another folder")


def missing_root_error(err: DatasetUnavailableError, root: Path, key: str, hint: str) -> DatasetUnavailableError:
    """Remove ``root`` if it holds nothing but lock files (we created it), and say it does not exist."""
    leftovers = [p for p in root.rglob("*") if p.is_file() and p.suffix != ".lock"] if root.exists() else []
    if not leftovers:
        shutil.rmtree(root, ignore_errors=True)
    cause = err.__cause__
    why = f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}" if cause else str(err)
    return DatasetUnavailableError(f"data root {str(root)!r} does not exist and dataset {key!r} could not be "
                                   f"downloaded into it ({why}). To fix: {hint}")
