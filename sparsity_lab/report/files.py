"""What a figure notebook publishes for the report (``reports/<profile>/figures/``): the figure as PNG and PDF,
the tables behind it as CSV, and a JSON sidecar that the index page reads (:mod:`sparsity_lab.report.batch`).
Only the batch publishes (a notebook's ``publish`` parameter, or :meth:`sparsity_lab.report.notebook.FigureNotebook.publish`
on request); exploring writes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab import _roots
from sparsity_lab.store.meta import code_version_text

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"figure name {name!r} must be a plain file stem (letters, digits, _ . -)")
    return name


def resolve_output_dir(output_dir: str | Path | None, profile: str) -> Path:
    """The figure directory: ``output_dir`` if given, else ``<repository>/reports/<profile>/figures`` (the
    checkout holding the package, whatever the working directory; outside a checkout, the working directory)."""
    if output_dir:
        return Path(output_dir)
    return (_roots.repository_root() or Path.cwd()) / "reports" / profile / "figures"


def save_figure(fig: Figure, output_dir: str | Path, name: str, *, dpi: int = 150) -> list[Path]:
    """Write ``<output_dir>/<name>.png`` (``dpi``) and ``.pdf``; create the directory; return paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{_check_name(name)}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight")
    # The PNG's draw placed every axes; the PDF keeps those positions instead of solving the constrained
    # layout again (a third of a save's time on the larger figures). The figure's own engine comes back after.
    engine = fig.get_layout_engine()
    fig.set_layout_engine("none")
    try:
        fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    finally:
        fig.set_layout_engine(engine)
    return paths


def save_tables(tables: Mapping[str, pd.DataFrame], output_dir: str | Path, name: str) -> list[Path]:
    """Write each table as ``<output_dir>/<name>__<table>.csv`` (the numbers behind the figure)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, table in tables.items():
        slug = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").lower() or "table"
        path = out / f"{_check_name(name)}__{slug}.csv"
        table.to_csv(path, index=False)
        paths.append(path)
    return paths


def meta_path(output_dir: str | Path, name: str) -> Path:
    """Where :func:`write_meta` puts the sidecar: ``<output_dir>/<name>.meta.json``."""
    return Path(output_dir) / f"{_check_name(name)}.meta.json"


def write_meta(
    output_dir: str | Path,
    name: str,
    *,
    run_ids: Iterable[str] = (),
    caption: str | None = None,
    figures: Iterable[str | Path] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the JSON sidecar the report's index reads for notebook ``name``.

    Keys: ``name``, ``run_ids`` (sorted, unique), ``caption``, ``figures`` (file names relative to
    ``output_dir``), ``code_version``, ``written_at`` (UTC ISO time) and the items of ``extra``
    (which must be JSON-serialisable and may not override those keys).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "name": _check_name(name),
        "run_ids": sorted({str(r) for r in run_ids}),
        "caption": caption,
        "figures": [Path(f).name for f in figures],
        "code_version": code_version_text(),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    clash = set(meta) & set(extra or {})
    if clash:
        raise ValueError(f"write_meta: extra keys {sorted(clash)} would override reserved keys")
    meta.update(extra or {})
    path = meta_path(out, name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    tmp.replace(path)
    return path
