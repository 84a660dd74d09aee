"""The generated cells of every figure notebook, from the registry (docs/figures.md "Notebooks").

A figure notebook is hand-written prose around generated cells, in one layout for all ten (:data:`LAYOUT`):
the claims it checks (from ``FigureSpec.claim_statements()``), its parameters, the plan and the training,
the labelled tidy records, the figure (an editable call to :meth:`FigureNotebook.draw`) and one panel alone,
the claims' verdicts on the same records, a few "explore further" cells and the publish step. Generated
cells carry the tag ``nbgen-<role>``; a hand-written cell stays where it is, after the generated cell it
follows (before the first one: the introduction). So a change in the registry reaches every notebook::

    python -m sparsity_lab.report.notebook_cells --write    # rewrite the generated cells
    python -m sparsity_lab.report.notebook_cells --check    # exit 1 naming the notebooks that differ
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from sparsity_lab.figures.params import describe
from sparsity_lab.figures.registry import FigureSpec, all_figures
from sparsity_lab.report.notebook import FIXED_PARAMETERS, GENERATED_MARK
from sparsity_lab.report.notebook_explore import EXPLORE

__all__ = ["LAYOUT", "NOTEBOOKS_DIR", "check", "claims_markdown", "layout", "parameters_source", "write"]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
TAG = "nbgen-"
#: The panel each notebook redraws alone, with the keywords shown (figures with ``PANELS``).
PANEL_CALLS = {"pruning_scopes": ("layer_pqi", ', scope="global"'), "sap_trajectories": ("pqi", "")}


def _comment(text: str) -> str:
    """Help text safe in a papermill parameters comment (papermill skips lines with a second '=')."""
    return text.replace(" = ", " is ").replace("=", ": ")


def _annotation(tp: Any) -> str:
    """``int``, ``list[int]``, ``list[list[str]]``: what papermill's ``--help-notebook`` shows as the type."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list:
        return f"list[{_annotation(args[0])}]"
    return getattr(tp, "__name__", str(tp))


def parameters_source(spec: FigureSpec) -> str:
    """The parameters cell: fixed names, then ``name: type = None  # help`` per typed parameter."""
    hints = typing.get_type_hints(spec.params)
    lines = [f"{GENERATED_MARK} (python -m sparsity_lab.report.notebook_cells --write).",
             "# None: the profile's value. A name that is not listed here is refused."]
    lines += [f"{name}: {kind} = {value}  # {_comment(help)}" for name, (kind, value, help) in FIXED_PARAMETERS.items()]
    lines += [f"{name}: {_annotation(hints[name])} = None  # {_comment(help)}" for name, _, help in describe(spec.params)]
    return "\n".join(lines)


#: A symbol with a TeX subscript or superscript in a plain-text claim statement (``t_c``, ``I_{p,q}``).
_TEX_SYMBOL = re.compile(r"(?<![\w$])[^\W\d_](?:_\{[^{}]*\}|\^\{[^{}]*\}|_[^\W_]+)+(?![\w$])")


def math_markup(text: str) -> str:
    """``text`` with every TeX-subscripted symbol in ``$…$``, so MathJax renders it (docs/figures.md "Notebooks")."""
    return _TEX_SYMBOL.sub(lambda m: f"${m.group(0)}$", text)


def claims_markdown(spec: FigureSpec) -> str:
    """The "claims checked here" block: exactly ``spec.claim_statements()``, id and statement (its TeX symbols
    in ``$…$``: :func:`math_markup`)."""
    statements = spec.claim_statements()
    lines = ["## Claims checked here", ""]
    if not statements:
        return "\n".join([*lines, "This figure checks no claim of its paper."])
    lines += ["The verdicts on this notebook's records are in section 4 (docs/figures.md \"Claims\"; thresholds "
              "are part of the specification).", ""]
    return "\n".join([*lines, *(f"* **{cid}** {math_markup(text)}" for cid, text in statements.items())])


def _md(role: str, text: str) -> NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [f"{TAG}{role}"]})


def _code(role: str, source: str, *tags: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata={"tags": [*tags, f"{TAG}{role}"]})


def _parameters(spec: FigureSpec) -> list[NotebookNode]:
    return [_md("parameters", "## Parameters\n\nEdit and run all: `None` means the profile's value, and a name that "
                "is not a parameter is refused (did you mean …). In batch: `python -m sparsity_lab.report --profile "
                f"quick --notebooks {spec.stem} -p NAME VALUE`; papermill's `-p` works too."),
            _code("parameters", parameters_source(spec), "parameters")]


def _plan(spec: FigureSpec) -> list[NotebookNode]:
    return [_md("plan", "## 1 · Plan and train\n\nWhich runs the figure reads, how many the results store already "
                "holds and what training the rest would cost (`sparsity_lab/sweep/costs.py`); then the training "
                "of what is missing, with a progress bar. Stored runs are never trained again."),
            _code("plan", f'%matplotlib inline\nfrom sparsity_lab.report.notebook import FigureNotebook\n\n'
                  f'nb = FigureNotebook("{spec.name}", globals())\nnb.plan()'),
            _code("plan", "nb.train()")]


def _records(spec: FigureSpec) -> list[NotebookNode]:
    return [_md("records", "## 2 · Records\n\n`records` is the tidy frame the figure draws: one row per observation "
                "(run, iteration, stage, metric, scope, group, p, q → value) with the label columns naming each "
                "curve and the runs' config columns. Below: what it holds and one row per curve at its last "
                "iteration. Filter it (`records[records[\"label\"] != \"…\"]`) and pass it to the cells below."),
            _code("records", "records = nb.records()\nnb.glimpse(records)")]


def _figure(spec: FigureSpec) -> list[NotebookNode]:
    options = {"figsize": None, **spec.plot_options()}
    args = "".join(f", {k}={v!r}" for k, v in options.items())
    return [_md("figure", "## 3 · Figure\n\n`nb.draw` returns the matplotlib figure drawn from `records`. Its keywords "
                f"({', '.join(f'`{k}`' for k in options)}; `None`: the default) change it: edit one and re-run "
                "the cell. `fig.axes[i]` restyles a panel; `nb.tables()` shows the numbers behind the figure."),
            _code("figure", f"fig = nb.draw(records{args})\nfig"),
            _code("figure", "nb.tables()")]


def _panel(spec: FigureSpec) -> list[NotebookNode]:
    panels = spec.panels()
    if not panels:
        return []
    name, extra = PANEL_CALLS.get(spec.name, (next(iter(panels)), ""))
    listing = "; ".join(f"`{k}`: {v}" for k, v in panels.items())
    return [_md("panel", f"### One panel alone\n\n`nb.draw_panel(name, records, ax=ax)` redraws one panel on axes "
                f"of your own (line keywords such as `linewidth` pass through). Panels: {listing}."),
            _code("panel", "import matplotlib.pyplot as plt\n\n"
                  'fig_panel, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")\n'
                  f'nb.draw_panel("{name}", records, ax=ax{extra})\nax.grid(True, alpha=0.3)')]


def _claims(spec: FigureSpec) -> list[NotebookNode]:
    return [_md("claims", "## 4 · Claims\n\nThe claims listed at the top, checked on the same `records` (pass a "
                "filtered frame to check that instead): verdict, statement and the numbers behind it."),
            _code("claims", 'claims = nb.claims(records)\nclaims.style.hide(axis="index")')]


def _explore(spec: FigureSpec) -> list[NotebookNode]:
    cells = [_md("explore", "## 5 · Explore further\n\nShort pandas and seaborn cells on the same `records`: "
                 "change the query, the metric or the facets.")]
    for text, code in EXPLORE[spec.name]:
        cells += [_md("explore", text), _code("explore", code)]
    return cells


def _publish(spec: FigureSpec) -> list[NotebookNode]:
    return [_md("publish", "## Publish\n\nThe report batch (`make figures`, `python -m sparsity_lab.report`) sets "
                f"`publish = True`: this cell then writes `{spec.stem}.png` / `.pdf`, its tables as CSV and the "
                "sidecar the index reads, all drawn from every record with the default options. Run "
                "interactively it writes nothing; `nb.publish()` writes them on request."),
            _code("publish", "if publish:\n    nb.publish()")]


#: The generated sections, in notebook order: role → the cells built from the figure's registry entry.
LAYOUT: dict[str, Callable[[FigureSpec], list[NotebookNode]]] = {
    "claims-statements": lambda spec: [_md("claims-statements", claims_markdown(spec))],
    "parameters": _parameters, "plan": _plan, "records": _records, "figure": _figure, "panel": _panel,
    "claims": _claims, "explore": _explore, "publish": _publish,
}


def _role(cell: NotebookNode) -> str | None:
    return next((t[len(TAG):] for t in cell.get("metadata", {}).get("tags", []) if t.startswith(TAG)), None)


def layout(nb: NotebookNode, spec: FigureSpec) -> list[NotebookNode]:
    """The cells ``nb`` should have: its hand-written cells, each after the generated cell it follows, around
    freshly generated cells (a hand-written cell after a role that no longer exists goes last)."""
    anchored: dict[str | None, list[NotebookNode]] = {}
    ids: dict[str, list[str]] = {}  # a regenerated cell keeps its id: a small diff
    anchor: str | None = None
    for cell in nb.cells:
        role = _role(cell)
        if role is None:
            anchored.setdefault(anchor, []).append(cell)
        else:
            anchor = role
            ids.setdefault(role, []).append(cell.get("id", ""))
    cells = list(anchored.pop(None, []))
    for role, build in LAYOUT.items():
        fresh = build(spec)
        for cell, old in zip(fresh, ids.get(role, [])):
            cell["id"] = old or cell["id"]
        cells += fresh + anchored.pop(role, [])
    return cells + [c for rest in anchored.values() for c in rest]


def _same(a: list[NotebookNode], b: list[NotebookNode]) -> bool:
    def key(c: NotebookNode) -> tuple[Any, ...]:
        return c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))

    return [key(c) for c in a] == [key(c) for c in b]


def write(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Regenerate the generated cells of every registered figure's notebook; return those that changed."""
    changed = []
    for spec in all_figures():
        path = notebooks_dir / spec.notebook
        nb = nbformat.read(path, as_version=4)
        cells = layout(nb, spec)
        if not _same(cells, nb.cells):
            nb.cells = cells
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def check(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Problems: a registered figure without its notebook, or generated cells that differ from the registry."""
    problems = []
    for spec in all_figures():
        path = notebooks_dir / spec.notebook
        if not path.is_file():
            problems.append(f"{path}: missing (figure {spec.stem} is registered)")
            continue
        nb = nbformat.read(path, as_version=4)
        if not _same(layout(nb, spec), nb.cells):
            problems.append(f"{path}: generated cells differ from the registry (run --write)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparsity_lab.report.notebook_cells", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the generated cells")
    ap.add_argument("--check", action="store_true", help="exit 1 when generated cells differ")
    ap.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR)
    args = ap.parse_args(argv)
    if args.write:
        for path in write(args.notebooks_dir):
            print(f"rewrote the generated cells of {path}")
        return 0
    problems = check(args.notebooks_dir)
    print("\n".join(problems) or "every notebook's generated cells match the registry")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
