"""Shared plotting and publishing helpers used by every figure (docs/figures.md preamble).

* :func:`set_style`: seaborn theme readable at report size.
* :func:`line_with_band` / :func:`band_stats`: mean ± std over seeds from a tidy frame.
* :func:`annotate_phases` / :func:`detect_phases`: the three PQI phases (docs/methods.md §3).
* :func:`caption` / :func:`add_caption` / :func:`code_version`: what every figure must state
  (profile, dataset, model, T, E, seeds, scope, which weights were ranked, code version).
* :func:`save_figure`, :func:`save_tables`, :func:`write_meta`: files a notebook leaves for the
  report (``reports/<profile>/figures/``), read back by :mod:`sparsity_lab.report.batch`.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.figures._bands import band_stats, line_with_band
from sparsity_lab.figures._phases import Phases, annotate_phases, detect_phases

__all__ = [
    "Phases", "add_caption", "annotate_phases", "band_stats", "caption", "code_version",
    "detect_phases", "line_with_band", "meta_path", "resolve_output_dir", "save_figure",
    "save_tables", "set_style", "write_meta",
]

#: Okabe & Ito's colour-blind-safe palette.
OKABE_ITO = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "purple": "#CC79A7",
             "sky": "#56B4E9", "orange": "#E69F00", "yellow": "#F0E442", "black": "#000000", "grey": "#999999"}
#: One fixed colour per method (legend label), the same in every figure.
METHOD_COLOURS = {
    "SAP (p=0.5, q=1)": OKABE_ITO["blue"], "SAP (p=1, q=2)": OKABE_ITO["vermillion"],
    "LT (P=0.2)": OKABE_ITO["green"], "OS (P=0.2)": OKABE_ITO["purple"],
    "Random ticket (LT masks)": OKABE_ITO["sky"], "SNIP (P=0.2)": OKABE_ITO["orange"],
    "ASNI-II (2L-level init)": OKABE_ITO["blue"], "ASNI-I (during its schedule)": OKABE_ITO["orange"],
    "mask + original init": OKABE_ITO["green"], "mask + random init": OKABE_ITO["sky"],
    "2L levels, random signs": OKABE_ITO["purple"], "±std(θ₀) levels": OKABE_ITO["grey"],
    "dense": OKABE_ITO["black"],
}
#: Line style per method where it is not solid: controls are dashed.
METHOD_LINESTYLES = {"Random ticket (LT masks)": "--", "mask + random init": "--"}


def method_palette(labels: Sequence[str]) -> dict[str, str]:
    """``METHOD_COLOURS`` for known methods; others take the unused Okabe-Ito colours in order."""
    used = {METHOD_COLOURS[label] for label in labels if label in METHOD_COLOURS}
    spare = iter([c for c in OKABE_ITO.values() if c not in used] * 3)
    return {label: METHOD_COLOURS[label] if label in METHOD_COLOURS else next(spare) for label in labels}


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
MISSING = "–"


def set_style(context: str = "notebook", font_scale: float = 0.9) -> None:
    """Seaborn ``whitegrid`` theme with the colour-blind palette, sized for HTML reports."""
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale)
    sns.set_style({"axes.edgecolor": "0.3"})
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
        "axes.titlesize": "medium", "axes.titleweight": "bold", "legend.frameon": False,
        "legend.fontsize": "small", "pdf.fonttype": 42, "figure.constrained_layout.use": False,
    })


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``"<package version>+<short git sha>"`` (``.dirty`` appended when tracked files changed),
    or ``"<version>+nogit"`` when the package is not inside a git checkout."""
    from importlib import metadata

    try:
        version = metadata.version("sparsity_lab")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        import sparsity_lab

        version = getattr(sparsity_lab, "__version__", "0+unknown")
    src = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{version}+nogit"
    return f"{version}+{sha}{'.dirty' if dirty else ''}" if sha else f"{version}+nogit"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        items = list(value)
        return f"{', '.join(map(str, items))} (n={len(items)})"
    return str(value)


def caption(
    profile: str,
    dataset: Any,
    model: Any,
    T: Any,
    E: Any,
    seeds: int | Sequence[int] | None,
    scope: Any,
    ranked: Any,
    extra: str | Mapping[str, Any] | None = None,
) -> str:
    """One-line caption with every field docs/figures.md requires, plus :func:`code_version`.

    ``seeds`` may be a count (``n=4``) or the seeds themselves; ``None`` prints "–" (not
    applicable). ``extra`` (text or a mapping) is appended after the required fields.
    """
    seed_text = f"n={seeds}" if isinstance(seeds, int) else _fmt(seeds)
    parts = [f"profile {profile}", f"dataset {_fmt(dataset)}", f"model {_fmt(model)}",
             f"T={_fmt(T)}", f"E={_fmt(E)}", f"seeds {seed_text}", f"scope {_fmt(scope)}",
             f"ranked: {_fmt(ranked)}"]
    if isinstance(extra, Mapping):
        parts.extend(f"{k}={_fmt(v)}" for k, v in extra.items())
    elif extra:
        parts.append(str(extra))
    parts.append(f"code {code_version()}")
    return " · ".join(parts)


def add_caption(fig: Figure, text: str, *, width: int | None = None, fontsize: str = "small") -> None:
    """Write ``text`` under the axes of ``fig`` (wrapped to the figure width), so the PNG/PDF
    carries its own caption."""
    chars = width or max(40, int(fig.get_figwidth() * 13))
    fig.text(0.01, 0.0, textwrap.fill(text, chars), ha="left", va="top", fontsize=fontsize, color="0.25")


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"figure name {name!r} must be a plain file stem (letters, digits, _ . -)")
    return name


def _project_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return here


def resolve_output_dir(output_dir: str | Path | None, profile: str) -> Path:
    """The figure directory: ``output_dir`` if given (papermill passes an absolute one), else
    ``<project root>/reports/<profile>/figures`` with the root found from the working directory."""
    if output_dir:
        return Path(output_dir)
    return _project_root() / "reports" / profile / "figures"


def save_figure(fig: Figure, output_dir: str | Path, name: str, *, dpi: int = 150) -> list[Path]:
    """Write ``<output_dir>/<name>.png`` (``dpi``) and ``.pdf``; create the directory; return paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{_check_name(name)}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
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
        "code_version": code_version(),
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
