"""The report batch: papermill over the registered figures' notebooks, nbconvert HTML, an index page.

Usage (from the repository root)::

    python -m sparsity_lab.report --profile quick [--notebooks 01 07_pqi_properties] [--out reports]
                                  [-p KEY VALUE ...] [--timeout S] [--notebooks-dir notebooks]
    python -m sparsity_lab.report --profile paper --render-only   # HTML + index from executed notebooks
    python -m sparsity_lab.report --profile paper --prefetch-workers 8   # train all runs in parallel first
    python -m sparsity_lab.report --profile gpu --plan   # runs, stored, epochs, GPU-hours; runs nothing
    python -m sparsity_lab.report --profile paper --executor slurm   # runs as SLURM jobs first (cluster/)

Before anything runs, the profile, the notebook names and every ``-p`` name and value are checked
against the figure registry (an unknown or misspelt name, a wrongly typed value: exit 2, one line).
For each selected notebook (by figure number) it

1. executes it with papermill on the ``python3`` kernel of *this* interpreter's environment, with
   parameters ``profile``, ``output_dir`` (absolute ``<out>/<profile>/figures``) and every
   ``-p KEY VALUE`` override (VALUE parsed as a YAML scalar/list: ``3``, ``0.5``, ``true``,
   ``[0, 1]``), the working directory being the notebook's own directory (as in Jupyter), into
   ``<out>/<profile>/<name>.ipynb``;
2. renders that executed notebook (errors included) to self-contained
   ``<out>/<profile>/<name>.html`` (images embedded as base64 data URIs);
3. reads the notebook's sidecar ``<out>/<profile>/figures/<name>.meta.json``
   (:func:`sparsity_lab.report.files.write_meta`: run ids, caption, figure files).

While they run, the bar shows how many runs of each running notebook the store holds so far and the training
left, estimated from the cost model (:mod:`sparsity_lab.report.progress`). Each notebook runs with ``publish = True``: only the batch writes the report's files (a notebook run or
edited interactively writes nothing there). Then it writes ``<out>/<profile>/index.html`` (one card per
notebook: thumbnail, status, the claims' verdicts, error, wall time, run ids, links; the cards of the
registered notebooks not run this time are kept from the previous ``index.json``) and ``index.json``,
prints a summary table with a claims column, and exits 0 when every notebook ran (a notebook whose claims fail ran: "claims failed"),
1 naming the failed ones, 2 on a usage error. ``SPARSITY_LAB_DATA`` / ``SPARSITY_LAB_RESULTS``
default to the repository's ``data`` / ``results`` (``sparsity_lab._roots``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sparsity_lab.report import freshness
from sparsity_lab.report.args import UsageError, _check_parameters, _parse_overrides, discover, select
from sparsity_lab.report.index_page import write_index_html
from sparsity_lab.report.notebook_run import NotebookOutcome, collect_executed, run_notebook
from sparsity_lab.report.progress import BatchProgress, post_every
from sparsity_lab.report.schedule import longest_first, previous_entries

#: Seconds between two updates of the bar's text (the store is polled for the running notebooks' runs).
PROGRESS_EVERY_S = 5.0

__all__ = ["UsageError", "_parse_overrides", "discover", "main", "select"]


def _summary(outcomes: list[NotebookOutcome]) -> str:
    width = max([8, *(len(o.name) for o in outcomes)])
    lines = [f"{'notebook':<{width}}  {'status':<14}  time (s)  {'claims':<34}  error", "-" * (width + 80)]
    for o in outcomes:
        err = f"{o.error_name}: {o.error_message}" if o.status == "failed" else ""
        wall = "kept" if o.reused else f"{o.wall_s:.1f}"
        lines.append(f"{o.name:<{width}}  {o.status:<14}  {wall:>8}  {o.claims_summary or '':<34}  {err}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sparsity_lab.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick", help="profile passed to every notebook (smoke|quick|gpu|paper)")
    ap.add_argument("--notebooks", nargs="+", metavar="NAME", help="stems or number prefixes (default: all)")
    ap.add_argument("--notebooks-dir", type=Path, default=Path("notebooks"), help="where NN_*.ipynb live")
    ap.add_argument("--out", type=Path, default=Path("reports"), help="reports root (default: reports)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"),
                    help="extra notebook parameter (VALUE parsed as YAML); repeatable")
    ap.add_argument("--timeout", type=float, default=None, help="per-cell execution timeout in seconds (default by profile: notebook_run.CELL_TIMEOUT_S)")
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
    ap.add_argument("--stored-only", action="store_true",
                    help="train nothing: run the notebooks whose runs are all stored, mark the others 'runs missing'")
    ap.add_argument("--force", action="store_true",
                    help="execute every chosen notebook, even those up to date (default: a notebook whose "
                         "notebook file, parameters, package code, libraries and stored runs are unchanged since "
                         "its last run here keeps its output: report.freshness)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="notebooks run at once, each in its own kernel (default: min(2, CPU count))")
    return ap


def _run_all(chosen: list[Path], profile_dir: Path, args: argparse.Namespace, overrides: dict[str, Any],
             t0: float, progress: BatchProgress | None = None) -> list[NotebookOutcome]:
    """Run the notebooks, ``args.jobs`` at a time (each in its own process and kernel), printing each
    result as it finishes under a progress bar; return the outcomes in input order. With ``progress``, the
    bar says every few seconds how many runs of each running notebook are stored and the training left
    (:mod:`sparsity_lab.report.progress`): the running notebooks are the first ``jobs`` not done, in the
    order the pool starts them (longest first: :mod:`sparsity_lab.report.schedule`).

    Notebooks that need the same experiments are safe to run together: the store's per-run lock makes
    the second wait for the first and then reuse its results.
    """
    from tqdm.auto import tqdm

    jobs = max(1, min(args.jobs, len(chosen)))
    # a kernel template costs about what one cold kernel does: it pays from a process's second notebook on
    kw = {"kernel": args.kernel, "timeout": args.timeout, "fork": len(chosen) > jobs}
    done: dict[Path, NotebookOutcome] = {}
    # no rate-based ETA: notebooks differ by orders of magnitude; the estimate is progress's, from the cost model
    bar = tqdm(total=len(chosen), desc=f"notebooks ({args.profile})", unit="nb", file=sys.stdout,
               bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) if jobs > 1 else None
    order = longest_first(chosen, profile_dir) if pool else chosen  # the pool starts them in this order

    def post() -> None:
        finished = {nb.stem for nb in list(done)}  # list(): one step, while the main thread adds to done
        running = [nb.stem for nb in order if nb.stem not in finished][:jobs]
        bar.set_postfix_str(progress.text(running, finished) if progress else "")

    stop_posting = post_every(PROGRESS_EVERY_S, post) if progress else (lambda: None)
    try:
        if pool is None:
            finished = (run_notebook(nb, profile_dir, args.profile, overrides, **kw) for nb in chosen)
        else:
            futures = [pool.submit(run_notebook, nb, profile_dir, args.profile, overrides, **kw) for nb in order]
            finished = (f.result() for f in as_completed(futures))
        for outcome in finished:
            done[next(nb for nb in chosen if nb.stem == outcome.name)] = outcome
            bar.update(1)
            bar.write(_done_line(len(done), len(chosen), outcome, t0))
    finally:
        stop_posting()
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    return [done[nb] for nb in chosen]


def _done_line(i: int, total: int, o: NotebookOutcome, t0: float) -> str:
    tail = {"ok": "ok", "claims failed": "ran, claims failed"}.get(o.status) or f"FAILED ({o.error_name}: {o.error_message})"
    claims = f" · {o.claims_summary}" if o.claims_summary else ""
    return f"[{i}/{total}] {o.name}: {tail}{claims} in {o.wall_s:.1f} s (elapsed {time.perf_counter() - t0:.1f} s)"


def _check_kernel_start() -> None:
    """Refuse a bad ``$SPARSITY_LAB_KERNEL_START`` before any notebook runs (:mod:`.kernel_start`)."""
    from sparsity_lab.report import kernel_start

    try:
        kernel_start.mode()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = _parse_overrides(args.parameter)
        available = discover(args.notebooks_dir)
        chosen = select(available, args.notebooks)
        if args.prefetch_workers < 0:
            raise UsageError(f"--prefetch-workers {args.prefetch_workers}: allowed 0 (off) or a positive integer")
        _check_kernel_start()
        planned = _check_parameters(chosen, args.profile, overrides) if not args.render_only else []
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from sparsity_lab import _roots
    from sparsity_lab.report import pipeline

    _roots.use_repository_roots()
    for var, default in (("SPARSITY_LAB_DATA", "data"), ("SPARSITY_LAB_RESULTS", "results")):
        os.environ.setdefault(var, str(Path(default).resolve()))
    if args.plan:
        table = pipeline.plan_table([spec for spec, _, _ in planned], args.profile,
                                    {k: v for k, v in overrides.items() if k != "device"})
        print(f"profile {args.profile}, store {os.environ['SPARSITY_LAB_RESULTS']}")
        print(table.to_string(index=False, na_rep=""))
        from sparsity_lab.sweep.costs import describe_source

        print(f"GPU-hours: estimated for one GPU from {describe_source()}; divide by the GPUs prefetch uses.")
        return 0
    profile_dir = args.out / args.profile
    profile_dir.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(UTC), time.perf_counter()
    if args.render_only:
        outcomes = [collect_executed(nb, profile_dir, args.profile) for nb in chosen]
    else:
        configs = [run.config for _, _, runs in planned for run in runs]
        if args.executor != "local":
            from sparsity_lab.sweep.cluster.prefetch import prefetch_on_cluster

            prefetch_on_cluster(configs, executor=args.executor, notebooks=len(chosen))
        elif args.prefetch_workers > 0:
            print(f"prefetch: {len({c.run_id for c in configs})} runs for {len(chosen)} notebooks, "
                  f"{args.prefetch_workers} worker(s) per device", flush=True)
            devices = [str(overrides["device"])] if overrides.get("device") else None
            for o in pipeline.prefetch(configs, workers_per_device=args.prefetch_workers, devices=devices):
                print(f"prefetch: run {o.run_id} failed: {(o.error or '').strip().splitlines()[-1:]}", flush=True)
        skipped: list[NotebookOutcome] = []
        if args.stored_only:
            from sparsity_lab.report.stored_only import split_stored
            from sparsity_lab.store import ResultsStore

            runnable, skipped = split_stored(chosen, planned, ResultsStore(), args.profile)
            planned = [p for p in planned if Path(p[0].notebook).stem in {nb.stem for nb in runnable}]
        else:
            runnable = chosen
        key_inputs = (planned, profile_dir, args.profile, {**overrides, "kernel": args.kernel})
        runnable, reused = freshness.keep_up_to_date(runnable, *key_inputs, force=args.force)
        done = _run_all(runnable, profile_dir, args, {**overrides, "publish": True}, t0,
                        batch_progress(planned, overrides)) if runnable else []
        freshness.stamp_inputs(done, runnable, *key_inputs)
        by_name = {o.name: o for o in [*done, *reused, *skipped]}
        outcomes = [by_name[nb.stem] for nb in chosen if nb.stem in by_name]
    ran, outcomes = outcomes, keep_other_cards(outcomes, available, profile_dir)
    record = {"profile": args.profile, "started": started.isoformat(timespec="seconds"),
              "wall_s": round(time.perf_counter() - t0, 2), "parameters": overrides, "render_only": args.render_only,
              "prefetch_workers": args.prefetch_workers, "shipped_gpu": shipped_gpu_link(args.out),
              "notebooks": [{k: v for k, v in asdict(o).items() if k != "thumbnail"} for o in outcomes]}
    (profile_dir / "index.json").write_text(json.dumps(record, indent=2, default=str))
    index = write_index_html(profile_dir / "index.html", outcomes, record)
    print("\n" + _summary(ran))
    print(f"\nindex: {index}")
    missing = [o.name for o in ran if o.status == "runs missing"]
    if missing:
        print(f"not run, their runs are not stored (--stored-only): {', '.join(missing)}")
    failed = [o for o in ran if o.status == "failed"]
    if failed:
        print("failed notebooks: " + "; ".join(f"{o.name} ({o.error_name}: {o.error_message})" for o in failed),
              file=sys.stderr)
        return 1
    return 0


def batch_progress(planned: list[Any], overrides: dict[str, Any]) -> BatchProgress:
    """The bar's progress for ``pipeline.plan``'s (spec, params, runs) per notebook, against the results store;
    on a CPU unless the notebooks get a CUDA device (``-p device``, else the first GPU if there is one)."""
    from sparsity_lab.store import ResultsStore

    device = str(overrides.get("device") or "")
    if not device:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = {Path(spec.notebook).stem: {run.run_id: run.config for run in plan} for spec, _, plan in planned}
    return BatchProgress(runs, ResultsStore(), on_cpu=not device.startswith("cuda"))


def keep_other_cards(outcomes: list[NotebookOutcome], registered: list[Path], profile_dir: Path
                     ) -> list[NotebookOutcome]:
    """``outcomes`` plus, for every registered notebook not run now, its card from the previous
    ``index.json`` (thumbnail from its executed notebook), in figure order: ``--notebooks 07`` updates one
    card and keeps the others (their files are still there)."""
    ran = {o.name: o for o in outcomes}
    kept = {e["name"]: e for e in previous_entries(profile_dir) if e.get("name") not in ran}
    merged = []
    for path in registered:
        if path.stem in ran:
            merged.append(ran[path.stem])
        elif path.stem in kept:
            merged.append(NotebookOutcome.from_entry(kept[path.stem], profile_dir))
    return merged + [o for o in outcomes if o not in merged]


#: Where the shipped results of the ``gpu`` profile live, relative to the repository.
SHIPPED_GPU_DIR = Path("docs") / "gpu-results"


def shipped_gpu_link(out: Path) -> str | None:
    """Relative link from ``<out>/<profile>/index.html`` to the shipped ``gpu`` figures' index, if shipped."""
    from sparsity_lab._roots import repository_root

    root = repository_root()
    target = root / SHIPPED_GPU_DIR if root else None
    if target is None or not target.is_dir():
        return None
    page = next((target / n for n in ("index.html", "README.md") if (target / n).is_file()), target)
    return os.path.relpath(page, (out / "x").resolve())


if __name__ == "__main__":
    sys.exit(main())
