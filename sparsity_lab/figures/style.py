"""Shared plotting and publishing helpers used by every figure (docs/figures.md preamble).

* :func:`set_style`: seaborn theme readable at report size.
* :func:`line_with_band` / :func:`band_stats`: mean ± std over seeds from a tidy frame.
* :func:`annotate_phases` / :func:`find_phases`: the three PQI phases, by the rule claim 1.1 tests
  (docs/methods.md §3).
* :func:`caption` / :func:`add_caption`: what every figure must state (profile, dataset, model, T, E,
  seeds, scope, which weights were ranked; the report adds the code version).

Writing files is the report's business (:mod:`sparsity_lab.report.files`): a figure draws and writes nothing.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from sparsity_lab.figures._bands import band_stats, line_with_band
from sparsity_lab.figures._phases import Phases, annotate_phases, find_phases

__all__ = [
    "Phases", "add_caption", "annotate_phases", "band_stats", "caption", "find_phases", "line_with_band",
    "set_style",
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


def method_palette(labels: Sequence[str]) -> dict[str, str]:
    """``METHOD_COLOURS`` for known methods; others take the unused Okabe-Ito colours in order."""
    used = {METHOD_COLOURS[label] for label in labels if label in METHOD_COLOURS}
    spare = iter([c for c in OKABE_ITO.values() if c not in used] * 3)
    return {label: METHOD_COLOURS[label] if label in METHOD_COLOURS else next(spare) for label in labels}


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
MISSING = "–"

#: Legend text size in points, for every legend of every figure: readable in the HTML report (where
#: "x-small" under the seaborn theme came out at about 7 px); figure modules pass it, never a relative size.
LEGEND_FONTSIZE = 9.5


def set_style(context: str = "notebook", font_scale: float = 0.9) -> None:
    """Seaborn ``whitegrid`` theme with the colour-blind palette, sized for HTML reports."""
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale)
    sns.set_style({"axes.edgecolor": "0.3"})
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
        "axes.titlesize": "medium", "axes.titleweight": "bold", "legend.frameon": False,
        "legend.fontsize": LEGEND_FONTSIZE, "pdf.fonttype": 42, "figure.constrained_layout.use": False,
    })


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
    """One-line caption with every field docs/figures.md requires but the code version, which the report adds
    (figures read nothing but their inputs).

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
    return " · ".join(parts)


def add_caption(fig: Figure, text: str, *, width: int | None = None, fontsize: str = "small") -> None:
    """Write ``text`` under the axes of ``fig`` (wrapped to the figure width), so the PNG/PDF
    carries its own caption."""
    chars = width or max(40, int(fig.get_figwidth() * 13))
    fig.text(0.01, 0.0, textwrap.fill(text, chars), ha="left", va="top", fontsize=fontsize, color="0.25")
