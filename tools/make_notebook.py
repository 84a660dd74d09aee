"""Build the figure notebooks from short YAML specs, so all ten share one structure.

    python tools/make_notebook.py tools/notebook_specs/*.yaml            # (re)write notebooks/NN_*.ipynb
    python tools/make_notebook.py --check tools/notebook_specs/*.yaml    # exit 1 if a notebook differs

A spec (see ``tools/notebook_specs/07_pqi_properties.yaml``) has ``name`` (file stem), ``title``,
``module`` (``sparsity_lab.figures.<module>`` with ``make_figure(profile, **overrides) ->
FigureResult``), markdown ``intro`` (what the figure tests) and ``reading`` (how to read it),
``parameters`` (a list of ``[name, default, comment]``; ``None`` = the profile's default) and
optional ``notes`` (markdown appended at the end).

Every notebook gets the same cells: title + intro + how to read + how to run; the ``parameters``
cell (``profile``, ``output_dir`` and the spec's fields); set-up; the figure (only a call to the
library); the tables behind it; saving PNG + PDF + CSV and the report sidecar (``write_meta``).
Notebooks are written without outputs or execution counts, kernel ``python3``, with stable cell ids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import nbformat
import yaml

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
REQUIRED = ("name", "title", "module", "intro", "reading", "parameters")

RUNNING = """## Running it

* Interactively: edit the cell tagged `parameters` below (`None` means the profile's default) and run all.
* In batch: `python -m sparsity_lab.report --profile quick --notebooks {name}` (add `-p KEY VALUE` to
  override a parameter); the executed notebook and its HTML land in `reports/<profile>/`.
* Files written: `reports/<profile>/figures/{name}.png` and `.pdf`, one CSV per table, and
  `{name}.meta.json` (run ids and caption, read by the report index)."""


def _parameters_cell(params: list[list[Any]]) -> str:
    lines = [
        "# Parameters: papermill overrides these; None = the profile's default.",
        'profile = "quick"  # smoke | quick | paper',
        "output_dir = None  # None -> <repo>/reports/<profile>/figures",
    ]
    for entry in params:
        if len(entry) != 3:
            raise ValueError(f"parameter entry {entry!r} must be [name, default, comment]")
        name, default, comment = entry
        if not str(name).isidentifier() or name in ("profile", "output_dir"):
            raise ValueError(f"bad parameter name {name!r}")
        lines.append(f"{name} = {default!r}  # {comment}")
    return "\n".join(lines)


def build(spec: dict[str, Any]) -> nbformat.NotebookNode:
    """The notebook for one spec (pure: the same spec always gives the same notebook)."""
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise ValueError(f"spec {spec.get('name', '?')!r} lacks {missing}")
    name, module = spec["name"], spec["module"]
    call_args = "".join(f", {p[0]}={p[0]}" for p in spec["parameters"])
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md(f"# {spec['title']}\n\n{spec['intro'].strip()}\n\n## How to read it\n\n{spec['reading'].strip()}"
           f"\n\n{RUNNING.format(name=name)}"),
        code(_parameters_cell(spec["parameters"]), metadata={"tags": ["parameters"]}),
        code("%matplotlib inline\n"
             "import pandas as pd\n"
             "import matplotlib.pyplot as plt\n"
             "from IPython.display import Image, Markdown, display\n\n"
             f"from sparsity_lab.figures import {module} as figure\n"
             "from sparsity_lab.figures import style\n\n"
             f'NAME = "{name}"\n'
             "style.set_style()\n"
             'pd.set_option("display.max_rows", 60)\n'
             "output_dir = style.resolve_output_dir(output_dir, profile)"),
        md("## Figure"),
        code(f"result = figure.make_figure(profile{call_args})\n"
             "paths = style.save_figure(result.figure, output_dir, NAME)  # PNG + PDF\n"
             "plt.close(result.figure)  # show the saved PNG instead of rendering the figure again\n"
             "display(Image(filename=str(paths[0])))\n"
             "print(result.caption)"),
        md("## The numbers behind it"),
        code("for title, table in result.tables.items():\n"
             '    display(Markdown(f"**{title}**"))\n'
             "    display(table)"),
        md("## Files"),
        code("paths += style.save_tables(result.tables, output_dir, NAME)\n"
             "style.write_meta(output_dir, NAME, run_ids=result.run_ids, caption=result.caption, figures=paths,\n"
             '                 extra={"params": result.params})\n'
             'print("\\n".join(map(str, paths)))'),
    ]
    if spec.get("notes"):
        cells.append(md(spec["notes"].strip()))
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:02d}"
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("notebooks"))
    ap.add_argument("--check", action="store_true", help="only report notebooks that differ from their spec")
    args = ap.parse_args(argv)
    stale = []
    for spec_path in args.specs:
        spec = yaml.safe_load(spec_path.read_text())
        text = nbformat.writes(build(spec)) + "\n"
        target = args.out / f"{spec['name']}.ipynb"
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(str(target))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {target}")
    if stale:
        print("out of date (run tools/make_notebook.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
