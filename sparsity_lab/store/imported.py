"""Runs imported from a results bundle (store/bundle.py): their ``imported.json`` and what it implies.

An imported run is complete and read-only: its directory holds only the files the bundle carried
(``manifest.json`` lists exactly those), and ``imported.json`` says where it came from and which of
the original run's files were left out (``dropped``, e.g. the masks of every step). Reading a
dropped file is an error that says so, never an empty result; writing to an imported run is
refused (delete its directory to retrain it from scratch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsity_lab.store.atomic import read_json

IMPORTED_FILE = "imported.json"


def read_imported(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``imported.json`` (bundle, bundle_sha256, created, code_version, imported, tensors, dropped)
    or None for a run trained in this store."""
    path = run_dir / IMPORTED_FILE
    return read_json(path) if path.exists() else None


def dropped_message(run_dir: Path, info: dict[str, Any], rel: str) -> str:
    """Why ``rel`` of the imported run in ``run_dir`` cannot be read, and what to do."""
    return (f"run {run_dir.name} was imported from bundle {info.get('bundle')!r} without {rel} "
            f"(bundle tensors: {info.get('tensors')!r}); an imported run is read-only: delete {run_dir} "
            "to retrain it from scratch, or import a bundle exported with --tensors all")


def read_only_message(run_dir: Path, info: dict[str, Any]) -> str:
    return (f"run {run_dir.name} was imported from bundle {info.get('bundle')!r} and is read-only; "
            f"delete {run_dir} to retrain it from scratch")
