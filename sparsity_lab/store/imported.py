"""Runs imported from a results bundle (store/bundle.py): their ``imported.json`` and what it implies.

An imported run is complete and read-only: its directory holds only the files the bundle carried
(``manifest.json`` lists exactly those), and ``imported.json`` says where it came from, which of
the original run's files were left out (``dropped``, e.g. the masks of every step) and how many of its
record rows, per record group (``dropped_records``, e.g. the layer PQI over the (p, q) grid; a bundle
exported for a profile ships only what its figures read, store/record_groups.py). Reading a dropped
file is an error that says so, never an empty result; so is reusing a run that lacks records in
``experiments.run`` (it would return fewer records than its config makes; figures read through
``load_results``, which returns the rows present). Writing to an imported run is refused (delete its
directory to retrain it from scratch).
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


def partial_records_message(run_dir: Path, info: dict[str, Any]) -> str | None:
    """Why the imported run in ``run_dir`` cannot stand for a full run of its config (rows of some record
    groups were left out by the bundle), or None when it holds every record its run made."""
    dropped = {k: v for k, v in (info.get("dropped_records") or {}).items() if v}
    if not dropped:
        return None
    shown = ", ".join(f"{n} {group} rows" for group, n in sorted(dropped.items()))
    return (f"run {run_dir.name} was imported from bundle {info.get('bundle')!r} with only the records the "
            f"figures read (left out: {shown}), so it is not a complete run of its config; load_results and the "
            f"figures read what it holds; to get every record delete {run_dir} and run the config again, or "
            "import a bundle exported with --records all")
