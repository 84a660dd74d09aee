"""Command-line side of the cluster path: ``sweep --executor ...`` flags and the ``jobs`` command.

    sparsity-lab sweep FILE --executor slurm [--partition gpu --gpus-per-task 1 --time-min 240 ...]
    sparsity-lab jobs [--jobs-dir DIR] [--resubmit-failed]

Flags left out take the lab's cluster config file, then ``ClusterOptions``' defaults (``options``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.cluster.jobs_file import default_jobs_dir
from sparsity_lab.sweep.cluster.options import EXECUTORS, ClusterOptions, load_options

#: flag -> (ClusterOptions field, type, help)
_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--partition": ("partition", str, "SLURM partition (default: the cluster's default)"),
    "--gpus-per-task": ("gpus_per_task", int, "GPUs per run (default: 1)"),
    "--cpus-per-task": ("cpus_per_task", int, "CPUs per run (default: 4)"),
    "--mem-gb": ("mem_gb", float, "memory per run in GB (default: 32)"),
    "--time-min": ("time_min", int, "time limit per job in minutes; longer runs requeue and resume (default: 240)"),
    "--array-parallelism": ("array_parallelism", int, "jobs of one array running at once (default: 64)"),
    "--log-dir": ("log_dir", str, "where job logs go (default: <results>/.jobs/<submission>/)"),
}


def add_executor_flags(parser: argparse.ArgumentParser, *, resources: bool = True) -> None:
    """``--executor`` (+ the SLURM resource flags, the cluster config file, the jobs dir and ``--no-wait``)."""
    group = parser.add_argument_group("cluster (--executor submitit-local / slurm; README: On a cluster)")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: this machine's worker pool; submitit-local: submitit jobs as local "
                            "subprocesses; slurm: a SLURM job array per wave (default: local)")
    if not resources:
        return
    for flag, (dest, kind, text) in _FLAGS.items():
        group.add_argument(flag, dest=f"cluster:{dest}", type=kind, default=None, help=text)
    group.add_argument("--slurm-config", metavar="FILE", default=None,
                       help="cluster options file (default: $SPARSITY_LAB_SLURM_CONFIG, ./slurm.yaml, "
                            "~/.config/sparsity_lab/slurm.yaml)")
    _jobs_dir_flag(group)
    group.add_argument("--no-wait", action="store_true",
                       help="slurm: submit and return (watch with `sparsity-lab jobs`); default: wait")


def _jobs_dir_flag(group: Any) -> None:
    group.add_argument("--jobs-dir", "--sweep-dir", dest="jobs_dir", metavar="DIR", default=None,
                       help="where submissions' jobs files go (default: <results>/.jobs)")


def options_from_args(args: argparse.Namespace) -> ClusterOptions:
    overrides = {dest[len("cluster:"):]: v for dest, v in vars(args).items() if dest.startswith("cluster:")}
    return load_options(getattr(args, "slurm_config", None), **overrides)


def _print_outcomes(outcomes: list[Any]) -> int:
    done = pd.DataFrame([{"run_id": o.run_id, "status": o.status, "seconds": round(o.seconds, 1),
                          "error": (o.error or "").split("\n")[0]} for o in outcomes]).drop_duplicates("run_id")
    print(done.to_string(index=False) if not done.empty else "nothing to run")
    failed = {o.run_id: o for o in outcomes if o.status == "failed"}
    for o in failed.values():
        print(f"\n{o.run_id} failed:\n{o.error}", file=sys.stderr)
    return 1 if failed else 0


def _finish(handles: list[Any], args: argparse.Namespace, store: ResultsStore) -> int:
    from sparsity_lab.sweep.cluster.submit import wait

    for h in handles:
        ids = sorted({e.job_id.split("_")[0] for e, _ in h.units if e.job_id})
        print(f"submitted {len(h.units)} job(s) ({h.record.executor}{', ids ' + ', '.join(ids) if ids else ''}); "
              f"jobs file {h.path}", flush=True)
    if getattr(args, "no_wait", False) and all(h.record.executor == "slurm" for h in handles):
        print("not waiting: follow them with `python -m sparsity_lab jobs`")
        return 0
    return _print_outcomes(wait(handles))


def sweep_on_cluster(configs: list[Any], args: argparse.Namespace, store: ResultsStore) -> int:
    """``sweep --executor submitit-local|slurm``: submit, then (unless ``--no-wait``) wait and print outcomes."""
    from sparsity_lab.cli.flags import BATCH_SEEDS
    from sparsity_lab.sweep.cluster.submit import submit_runs

    handle = submit_runs(configs, executor=args.executor, options=options_from_args(args), store=store,
                         jobs_dir=args.jobs_dir, batch_seeds=BATCH_SEEDS[args.batch_seeds])
    return _finish([handle], args, store)


def add_jobs_parser(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="submitted runs: SLURM/submitit job state and the store's view",
                          description="One row per run submitted with --executor submitit-local/slurm: its view "
                                      "(done / running / pending / failed), job state, store status, job id, "
                                      "failure reason and log path.")
    _jobs_dir_flag(jobs)
    jobs.add_argument("--resubmit-failed", action="store_true",
                      help="submit the failed runs again (alone), with their submission's executor and options")
    jobs.add_argument("--no-wait", action="store_true", help="with --resubmit-failed on slurm: do not wait")


def cmd_jobs(args: argparse.Namespace, store: ResultsStore) -> int:
    from sparsity_lab.sweep.cluster.monitor import jobs_table, resubmit_failed

    jobs_dir = Path(args.jobs_dir) if args.jobs_dir else default_jobs_dir(store.root)
    table = jobs_table(jobs_dir, store)
    if table.empty:
        print(f"no submissions in {jobs_dir}")
        return 0
    print(table.to_string(index=False))
    counts = table["view"].value_counts()
    print("; ".join(f"{n} {view}" for view, n in counts.items()))
    if not args.resubmit_failed:
        return 0
    handles = resubmit_failed(jobs_dir, store, table)
    if not handles:
        print("no failed runs to resubmit")
        return 0
    return _finish(handles, args, store)
