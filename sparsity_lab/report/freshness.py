"""When the report batch may reuse a notebook's previous output instead of executing it again.

A figure notebook is a pure function of its inputs: the notebook file, the profile and the ``-p`` overrides,
the package's source, the libraries that draw and render it, and the stored runs it reads (a complete run
never changes: its manifest lists every file's sha256). :func:`inputs_key` hashes all of them into one
digest, which the batch stores in the notebook's ``index.json`` entry. On the next run the batch computes
the key again before executing: when it equals the previous entry's, that entry ran (``ok`` or ``claims
failed``) and every file it lists is still there, the notebook is **up to date** (its files hash as that run wrote them) and its card, HTML and
figures are kept as they are (``report --force``, ``make figures FORCE=1``: execute anyway). Anything else
(an edited notebook or module, another parameter, a run added, removed, recomputed or repaired, a new
matplotlib) executes it as before. The same idea as ``make``'s, with content hashes instead of timestamps.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from sparsity_lab.store.manifest import MANIFEST

__all__ = ["RENDER_LIBRARIES", "code_digest", "inputs_key", "is_up_to_date", "keep_up_to_date", "notebook_keys",
           "split_up_to_date", "stamp_inputs"]

#: The libraries whose version can change what a figure notebook draws or how its report renders.
RENDER_LIBRARIES = ("matplotlib", "seaborn", "pandas", "numpy", "torch", "papermill", "nbconvert", "nbformat",
                    "ipykernel", "jupyter-server-mathjax")
#: Statuses whose outputs are complete: a failed notebook, or one whose runs were missing, always runs again.
REUSABLE_STATUSES = ("ok", "claims failed")


def _package_sources() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _versions() -> dict[str, str]:
    out = {"python": sys.version}
    for name in RENDER_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def code_digest() -> str:
    """sha256 over the package's source files and the versions of :data:`RENDER_LIBRARIES` (and Python)."""
    h = hashlib.sha256(json.dumps(_versions(), sort_keys=True).encode())
    root = Path(__file__).resolve().parents[1]
    for source in _package_sources():
        data = source.read_bytes()
        h.update(f"{source.relative_to(root).as_posix()}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def _run_state(store: Any, run_id: str) -> str:
    """The run's manifest digest when it is complete (its files' sha256 are in it), else its status."""
    if not store.is_complete(run_id):
        return f"not complete: {store.status(run_id)}"
    manifest = store.run_dir(run_id) / MANIFEST
    try:
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    except OSError:
        return "complete, no manifest"


def inputs_key(notebook: Path, profile: str, overrides: Mapping[str, Any], run_ids: Iterable[str],
               store: Any, code: str | None = None) -> str:
    """sha256 over everything a figure notebook's output depends on (module docstring); ``code``: a
    :func:`code_digest` computed once for several notebooks."""
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    add("notebook", notebook.read_bytes())
    add("profile", profile.encode())
    add("overrides", json.dumps(dict(overrides), sort_keys=True, default=str).encode())
    add("code", (code or code_digest()).encode())
    for run_id in sorted(set(run_ids)):
        add(run_id, _run_state(store, run_id).encode())
    return h.hexdigest()


def is_up_to_date(entry: Mapping[str, Any] | None, key: str, profile_dir: Path) -> bool:
    """Whether the previous index ``entry`` of a notebook was made from inputs with this ``key`` and its
    executed notebook, HTML and every figure file it lists are still in ``profile_dir``."""
    if not entry or not isinstance(key, str) or entry.get("inputs") != key:
        return False
    if entry.get("status") not in REUSABLE_STATUSES:
        return False
    files = output_files(entry)
    return _all_present(profile_dir, files) and entry.get("outputs") == outputs_digest(profile_dir, files)


def _all_present(profile_dir: Path, files: list[Any]) -> bool:
    return all(isinstance(f, str) and (profile_dir / f).is_file() for f in files)


def output_files(entry: Mapping[str, Any]) -> list[Any]:
    """The files a notebook's run wrote, relative to the profile's folder: executed notebook, HTML, figures."""
    return [entry.get("ipynb"), entry.get("html"), *entry.get("figures", [])]


def outputs_digest(profile_dir: Path, files: Iterable[str]) -> str:
    """sha256 over the output files' names and bytes: a kept notebook's files are exactly those its run wrote
    (not, say, the half-written notebook of a later run that was interrupted)."""
    h = hashlib.sha256()
    for name in files:
        data = (profile_dir / name).read_bytes()
        h.update(f"{name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def split_up_to_date(runnable: list[Path], planned: list[Any], profile_dir: Path, profile: str,
                     overrides: Mapping[str, Any], store: Any, force: bool = False
                     ) -> tuple[list[Path], list[Any], dict[str, str]]:
    """(notebooks to execute, the reused outcomes of those up to date, the key of every notebook).

    ``planned``: ``pipeline.plan``'s (spec, params, runs) per notebook, for the run ids each reads. A reused
    outcome is the previous index entry as it was (status, claims, wall time), with ``reused`` set."""
    from sparsity_lab.report.notebook_run import NotebookOutcome
    from sparsity_lab.report.schedule import previous_entries

    keys = notebook_keys(runnable, planned, profile, overrides, store)
    previous = {e.get("name"): e for e in previous_entries(profile_dir)}
    to_run, reused = [], []
    for nb in runnable:
        entry = previous.get(nb.stem)
        if force or not is_up_to_date(entry, keys[nb.stem], profile_dir):
            to_run.append(nb)
            continue
        card = NotebookOutcome.from_entry(entry, profile_dir)
        card.reused = True
        reused.append(card)
    return to_run, reused, keys


def notebook_keys(notebooks: list[Path], planned: list[Any], profile: str, overrides: Mapping[str, Any],
                  store: Any) -> dict[str, str]:
    """Notebook stem → :func:`inputs_key`, the code digest computed once; ``planned`` gives each one's run ids."""
    runs_of = {Path(spec.notebook).stem: [run.run_id for run in runs] for spec, _, runs in planned}
    code = code_digest()
    return {nb.stem: inputs_key(nb, profile, overrides, runs_of.get(nb.stem, []), store, code) for nb in notebooks}


def keep_up_to_date(runnable: list[Path], planned: list[Any], profile_dir: Path, profile: str,
                    overrides: Mapping[str, Any], *, force: bool = False) -> tuple[list[Path], list[Any]]:
    """The batch's step before executing: (notebooks to execute, kept outcomes of those up to date), saying
    which are kept. ``overrides``: the ``-p`` parameters plus the kernel's name."""
    from sparsity_lab.store import ResultsStore

    to_run, reused, _ = split_up_to_date(runnable, planned, profile_dir, profile, overrides, ResultsStore(), force)
    if reused:
        print(f"up to date, kept as they are (notebook, parameters, package code, libraries and runs unchanged "
              f"since their last run; --force executes them): {', '.join(c.name for c in reused)}", flush=True)
    return to_run, reused


def stamp_inputs(done: list[Any], notebooks: list[Path], planned: list[Any], profile_dir: Path, profile: str,
                 overrides: Mapping[str, Any]) -> None:
    """Set ``inputs`` on each outcome that ran to the key of what it was made from, computed after the batch
    (the runs it trained are stored by then), so the next batch can keep it; None for the others."""
    from sparsity_lab.store import ResultsStore

    good = {o.name for o in done if o.status in REUSABLE_STATUSES}
    keys = notebook_keys([nb for nb in notebooks if nb.stem in good], planned, profile, overrides, ResultsStore())
    for o in done:
        files = output_files({"ipynb": o.ipynb, "html": o.html, "figures": o.figures})
        ok = o.name in keys and _all_present(profile_dir, files)
        o.inputs = keys[o.name] if ok else None
        o.outputs = outputs_digest(profile_dir, files) if ok else None
