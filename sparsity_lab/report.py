"""The report batch: papermill over ``notebooks/NN_*.ipynb``, nbconvert HTML, an index page.

Usage (from the repository root)::

    python -m sparsity_lab.report --profile quick [--notebooks 01 07_pqi_properties] [--out reports]
                                  [-p KEY VALUE ...] [--timeout S] [--notebooks-dir notebooks]
    python -m sparsity_lab.report --profile paper --render-only   # HTML + index from executed notebooks
    python -m sparsity_lab.report --profile paper --prefetch-workers 8   # train all runs in parallel first
    python -m sparsity_lab.report --profile paper --plan   # runs needed, stored, epochs left; runs nothing
    python -m sparsity_lab.report --profile paper --executor slurm   # runs as SLURM jobs first (cluster/)

For each selected notebook (sorted by name) it

1. executes it with papermill on the ``python3`` kernel of *this* interpreter's environment, with
   parameters ``profile``, ``output_dir`` (absolute ``<out>/<profile>/figures``) and every
   ``-p KEY VALUE`` override (VALUE parsed as a YAML scalar/list: ``3``, ``0.5``, ``true``,
   ``[0, 1]``), the working directory being the notebook's own directory (as in Jupyter), into
   ``<out>/<profile>/<name>.ipynb``;
2. renders that executed notebook (errors included) to self-contained
   ``<out>/<profile>/<name>.html`` (images embedded as base64 data URIs);
3. reads the notebook's sidecar ``<out>/<profile>/figures/<name>.meta.json``
   (:func:`sparsity_lab.figures.style.write_meta`: run ids, caption, figure files).

Then it writes ``<out>/<profile>/index.html`` (one card per notebook: thumbnail = first PNG
output, status, error, wall time, profile, run ids, links) and ``index.json``, prints a summary
table, and exits 0 when every notebook ran, 1 naming the failed ones, 2 on a usage error.
``SPARSITY_LAB_DATA`` / ``SPARSITY_LAB_RESULTS`` default to absolute ``./data`` / ``./results``
of the invocation directory so kernels started in ``notebooks/`` share the same store.
"""

from __future__ import annotations

import argparse
import ast
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sparsity_lab.errors import UserError
from sparsity_lab.figures._index_page import write_index_html
from sparsity_lab.report_notebook import NotebookOutcome, collect_executed, run_notebook


class UsageError(UserError, ValueError):
    """Bad command-line selection (exit code 2)."""


def notebook_parameters(notebook: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (what ``-p`` may set)."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    names: set[str] = set()
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell.get("source", "")))
            names |= {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                      for t in node.targets if isinstance(t, ast.Name)}
    return names


def check_overrides(chosen: list[Path], overrides: dict[str, Any]) -> None:
    """Refuse ``-p`` names no chosen notebook has (issue 9 §5), and values of the wrong type for names
    that are config fields (``epochs`` = ``train.epochs``) or ``seeds``; None always means the profile's value."""
    from sparsity_lab.config import CONFIG_TYPES, flat_fields
    from sparsity_lab.config_types import describe, type_ok

    allowed = set().union(*(notebook_parameters(nb) for nb in chosen)) - {"profile", "output_dir"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise UsageError(f"unknown notebook parameter(s) {', '.join(unknown)} for {', '.join(nb.stem for nb in chosen)}"
                         f": allowed {', '.join(sorted(allowed))}")
    types = {d.name.removeprefix("train."): d.type for cls in CONFIG_TYPES.values() for d in flat_fields(cls)}
    types["seeds"] = "tuple[int, ...]"
    for name, value in overrides.items():
        if value is not None and name in types and not type_ok(types[name], value):
            raise UsageError(f"parameter {name}={value!r}: allowed {describe(types[name])} (or null: the profile's)")


def discover(notebooks_dir: Path) -> list[Path]:
    """``NN_*.ipynb`` files of ``notebooks_dir`` sorted by name."""
    return sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def select(available: list[Path], wanted: list[str] | None) -> list[Path]:
    """Notebooks named by stem (``07_pqi_properties``), file name or number prefix (``07``)."""
    if not wanted:
        return available
    chosen: list[Path] = []
    for token in wanted:
        token = token.removesuffix(".ipynb")
        hits = [p for p in available if p.stem == token or p.stem.startswith(f"{token}_")]
        if len(hits) != 1:
            problem = "matches several notebooks" if hits else "is not a notebook"
            raise UsageError(f"{token!r} {problem}; available: {', '.join(p.stem for p in available) or 'none'}")
        if hits[0] not in chosen:
            chosen.append(hits[0])
    return sorted(chosen)


def _parse_overrides(pairs: list[list[str]] | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, raw in pairs or []:
        if not key.isidentifier():
            raise UsageError(f"parameter name {key!r} is not a Python identifier")
        if key in ("profile", "output_dir"):
            raise UsageError(f"set {key!r} with --{'profile' if key == 'profile' else 'out'}, not -p")
        try:
            overrides[key] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise UsageError(f"parameter {key}={raw!r} is not a YAML value ({str(err).splitlines()[0]}): "
                             "allowed e.g. 3, 0.5, true, cifar10, [0, 1]") from None
    return overrides


def _summary(outcomes: list[NotebookOutcome]) -> str:
    width = max([8, *(len(o.name) for o in outcomes)])
    lines = [f"{'notebook':<{width}}  status  time (s)  error", "-" * (width + 40)]
    for o in outcomes:
        err = f"{o.error_name}: {o.error_message}" if o.status != "ok" else ""
        lines.append(f"{o.name:<{width}}  {o.status:<6}  {o.wall_s:>8.1f}  {err}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sparsity_lab.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick", help="profile passed to every notebook (smoke|quick|paper)")
    ap.add_argument("--notebooks", nargs="+", metavar="NAME", help="stems or number prefixes (default: all)")
    ap.add_argument("--notebooks-dir", type=Path, default=Path("notebooks"), help="where NN_*.ipynb live")
    ap.add_argument("--out", type=Path, default=Path("reports"), help="reports root (default: reports)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"),
                    help="extra notebook parameter (VALUE parsed as YAML); repeatable")
    ap.add_argument("--timeout", type=float, default=None, help="per-cell execution timeout in seconds")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    ap.add_argument("--prefetch-workers", type=int, default=0, metavar="N",
                    help="first train every run the chosen notebooks need with N worker processes per device "
                         "(sweep.run_many), then execute them; 0 = each notebook runs its own (default: 0)")
    ap.add_argument("--executor", choices=("local", "submitit-local", "slurm"), default="local",
                    help="slurm / submitit-local: train every run the notebooks need as cluster jobs first "
                         "(options from the cluster config file, README: On a cluster) (default: local)")
    ap.add_argument("--plan", action="store_true",
                    help="execute nothing: list per notebook the runs it needs, how many are stored and the "
                         "training epochs left (to size a GPU job)")
    ap.add_argument("--render-only", action="store_true",
                    help="execute nothing: render HTML and the index from <out>/<profile>/*.ipynb executed earlier")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="notebooks run at once, each in its own kernel (default: min(2, CPU count))")
    return ap


def _run_all(chosen: list[Path], profile_dir: Path, args: argparse.Namespace, overrides: dict[str, Any],
             t0: float) -> list[NotebookOutcome]:
    """Run the notebooks, ``args.jobs`` at a time (each in its own process and kernel), in input order.

    Notebooks that need the same experiments are safe to run together: the store's per-run lock makes
    the second wait for the first and then reuse its results.
    """
    total = len(chosen)
    jobs = max(1, min(args.jobs, total))
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) if jobs > 1 else None
    futures = {}
    for i, nb in enumerate(chosen, 1):
        print(f"[{i}/{total}] {nb.stem}: running (profile {args.profile})", flush=True)
        call = (nb, profile_dir, args.profile, overrides)
        kw = {"kernel": args.kernel, "timeout": args.timeout}
        futures[i] = pool.submit(run_notebook, *call, **kw) if pool else run_notebook(*call, **kw)
        if pool is None:
            _print_done(i, total, futures[i], t0)
    outcomes: list[NotebookOutcome] = []
    try:
        for i in range(1, total + 1):
            outcome = futures[i].result() if pool else futures[i]
            if pool:
                _print_done(i, total, outcome, t0)
            outcomes.append(outcome)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return outcomes


def _print_done(i: int, total: int, o: NotebookOutcome, t0: float) -> None:
    tail = "ok" if o.status == "ok" else f"FAILED ({o.error_name}: {o.error_message})"
    print(f"[{i}/{total}] {o.name}: {tail} in {o.wall_s:.1f} s (elapsed {time.perf_counter() - t0:.1f} s)",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from sparsity_lab.profiles import PROFILES

        if args.profile not in PROFILES:
            raise UsageError(f"--profile {args.profile!r}: allowed one of {', '.join(PROFILES)}")
        overrides = _parse_overrides(args.parameter)
        available = discover(args.notebooks_dir)
        if not available:
            raise UsageError(f"no NN_*.ipynb notebooks in {args.notebooks_dir}")
        chosen = select(available, args.notebooks)
        check_overrides(chosen, overrides)
        if args.prefetch_workers < 0:
            raise UsageError(f"--prefetch-workers {args.prefetch_workers}: allowed 0 (off) or a positive integer")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for var, default in (("SPARSITY_LAB_DATA", "data"), ("SPARSITY_LAB_RESULTS", "results")):
        os.environ.setdefault(var, str(Path(default).resolve()))
    if args.plan:
        from sparsity_lab.figures.plan import plan_table

        table = plan_table(chosen, args.profile, overrides)
        print(f"profile {args.profile}, store {os.environ['SPARSITY_LAB_RESULTS']}")
        print(table.to_string(index=False, na_rep=""))
        return 0
    profile_dir = args.out / args.profile
    profile_dir.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(UTC), time.perf_counter()
    if args.render_only:
        outcomes = [collect_executed(nb, profile_dir, args.profile) for nb in chosen]
    else:
        if args.executor != "local":
            from sparsity_lab.cluster.prefetch import prefetch_on_cluster

            prefetch_on_cluster(chosen, args.profile, overrides, executor=args.executor)
        elif args.prefetch_workers > 0:
            from sparsity_lab.figures.plan import prefetch

            prefetch(chosen, args.profile, overrides, workers_per_device=args.prefetch_workers)
        outcomes = _run_all(chosen, profile_dir, args, overrides, t0)
    record = {"profile": args.profile, "started": started.isoformat(timespec="seconds"),
              "wall_s": round(time.perf_counter() - t0, 2), "parameters": overrides, "render_only": args.render_only,
              "prefetch_workers": args.prefetch_workers,
              "notebooks": [{k: v for k, v in asdict(o).items() if k != "thumbnail"} for o in outcomes]}
    (profile_dir / "index.json").write_text(json.dumps(record, indent=2, default=str))
    index = write_index_html(profile_dir / "index.html", outcomes, record)
    print("\n" + _summary(outcomes))
    print(f"\nindex: {index}")
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        print("failed notebooks: " + "; ".join(f"{o.name} ({o.error_name}: {o.error_message})" for o in failed),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
