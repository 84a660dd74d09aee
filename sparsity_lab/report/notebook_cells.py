"""The ``parameters`` cell of every figure notebook, generated from the registry (docs/figures.md).

Notebooks are edited in Jupyter and committed as they are (outputs stripped: ``make strip``). Only
their cell tagged ``parameters`` is generated, from the figure's typed parameters, so papermill and
``report -p`` see exactly the names the figure accepts::

    python -m sparsity_lab.report.notebook_cells --write    # rewrite the parameters cells only
    python -m sparsity_lab.report.notebook_cells --check    # exit 1 naming the notebooks that differ
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from sparsity_lab.figures.params import PROFILES, describe
from sparsity_lab.figures.registry import FigureSpec, all_figures

__all__ = ["NOTEBOOKS_DIR", "check", "parameters_source", "write"]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
#: Parameters every notebook has besides the figure's own.
FIXED = [("profile", '"quick"', " | ".join(PROFILES)),
         ("output_dir", "None", "None: <repository>/reports/<profile>/figures"),
         ("device", "None", "cuda, cuda:1, cpu; None: every GPU if there is one, else the CPU")]


def _comment(text: str) -> str:
    """Help text safe in a papermill parameters comment (papermill skips lines with a second '=')."""
    return text.replace(" = ", " is ").replace("=", ": ")


def parameters_source(spec: FigureSpec) -> str:
    """The source of ``spec``'s parameters cell: fixed names, then one line per typed parameter."""
    lines = ["# Parameters, generated from the figure registry (python -m sparsity_lab.report.notebook_cells --write).",
             "# None: the profile's value. papermill and `report -p NAME VALUE` override them."]
    lines += [f"{name} = {value}  # {_comment(help)}" for name, value, help in FIXED]
    lines += [f"{name} = None  # {_comment(kind)}: {_comment(help)}" for name, kind, help in describe(spec.params)]
    return "\n".join(lines)


def _parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def write(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Rewrite the parameters cell of every registered figure's notebook; return those that changed."""
    changed = []
    for spec in all_figures():
        path = notebooks_dir / spec.notebook
        nb = nbformat.read(path, as_version=4)
        cell = _parameters_cell(nb)
        source = parameters_source(spec)
        if cell.source != source:
            cell.source = source
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def check(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Problems: a registered figure without its notebook, or a parameters cell that differs."""
    problems = []
    for spec in all_figures():
        path = notebooks_dir / spec.notebook
        if not path.is_file():
            problems.append(f"{path}: missing (figure {spec.stem} is registered)")
            continue
        try:
            cell = _parameters_cell(nbformat.read(path, as_version=4))
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if cell.source != parameters_source(spec):
            problems.append(f"{path}: parameters cell differs from the registry (run --write)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparsity_lab.report.notebook_cells", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the parameters cells")
    ap.add_argument("--check", action="store_true", help="exit 1 when a parameters cell differs")
    ap.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR)
    args = ap.parse_args(argv)
    if args.write:
        for path in write(args.notebooks_dir):
            print(f"rewrote the parameters cell of {path}")
        return 0
    problems = check(args.notebooks_dir)
    print("\n".join(problems) or "every parameters cell matches the registry")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
