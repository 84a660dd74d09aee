"""``python -m sparsity_lab`` / ``sparsity-lab``: run one config, run a sweep, list and show stored runs.

    sparsity-lab run --kind iterative --method sap --p 0.5 --train.epochs 3
    sparsity-lab sweep sweeps/fig1.yaml --devices cuda:0,cuda:1 --workers-per-device 2 [--dry-run]
    sparsity-lab ls [--kind asni] [--status complete]
    sparsity-lab show <run id or unique prefix>
    sparsity-lab bundle export OUT.tar.gz (--runs ID... | --dataset D --model M --kind K | --all) [--tensors figures]
    sparsity-lab bundle import FILE [--results STORE]
    sparsity-lab sweep FILE --executor slurm [--partition P --gpus-per-task 1 ...]; sparsity-lab jobs
    sparsity-lab verify [RUN_ID ...] [--repair]

The ``run`` flags are generated from the config dataclasses (``config.flat_fields``), so ``--help``
documents every field, its help text and its default. A bad value prints one line naming the
field and exits with status 2; so does every other bad input (``errors.UserError``: a flag, a sweep
file, a device, an environment variable, the data root), before anything is written. ``--debug`` (or
``SPARSITY_LAB_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sparsity_lab.cli.bundle import add_bundle_parser, cmd_bundle
from sparsity_lab.cli.checks import (
    OneLineParser,
    check_results_root,
    count_arg,
)
from sparsity_lab.cli.cluster import add_executor_flags, add_jobs_parser, cmd_jobs
from sparsity_lab.cli.commands import cmd_ls, cmd_run, cmd_show, cmd_sweep
from sparsity_lab.cli.flags import BATCH_SEEDS, add_config_flags
from sparsity_lab.cli.verify import add_verify_parser, cmd_verify
from sparsity_lab.config.configs import CONFIG_TYPES
from sparsity_lab.errors import UserError, debug_enabled, one_line
from sparsity_lab.store import ResultsStore, StoreError
from sparsity_lab.sweep import fork_server as worker_start


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sparsity-lab", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", metavar="DIR", default=None,
                        help="results store root (default: $SPARSITY_LAB_RESULTS, else the checkout's results/)")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also: SPARSITY_LAB_DEBUG=1)")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default=None,
                        help="torch.compile the model for training (speed only; run ids do not change): auto = "
                             "conv models on CUDA with long trainings (default: $SPARSITY_LAB_COMPILE, else auto)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,sweep,ls,show,bundle,jobs,verify}")

    run = sub.add_parser("run", help="run (or resume, or reuse) one experiment config given by flags",
                         description="Run one config. Only the fields you give differ from the defaults of --kind.")
    run.add_argument("--kind", default="iterative", choices=list(CONFIG_TYPES), help="config kind: iterative (SAP/LT/OS, docs/methods.md §3) or "
                                                         "asni (docs/methods.md §4) (default: iterative)")
    run.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:1 (default: CUDA if available)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(run)

    sweep = sub.add_parser("sweep", help="run every config of a YAML/JSON sweep file over devices",
                           description="A sweep file holds a list of config dicts, or {kind, base, grid} blocks "
                                       "whose grid lists are expanded into their cartesian product.")
    sweep.add_argument("file", help="YAML or JSON sweep file")
    sweep.add_argument("--devices", default=None, help="comma-separated devices, e.g. cuda:0,cuda:1 "
                                                       "(default: every CUDA GPU, else cpu)")
    sweep.add_argument("--workers-per-device", type=count_arg(1), default=1, metavar="N", help="worker processes per device "
                                                                                       "(default: 1)")
    sweep.add_argument("--batch-seeds", choices=sorted(BATCH_SEEDS), default="auto",
                       help="train configs that differ only by seed together in the batched engine: auto (CUDA and "
                            "no convolutions), on (every batchable group, any device) or off (default: auto)")
    sweep.add_argument("--dry-run", action="store_true", help="list the expanded configs and their status; run nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_executor_flags(sweep)  # cluster path: sparsity_lab/sweep/cluster/

    ls = sub.add_parser("ls", help="table of stored runs (id, kind, status, steps, size, key fields)")
    ls.add_argument("--kind", default=None, choices=list(CONFIG_TYPES), help="only runs of this kind")
    ls.add_argument("--status", default=None, choices=("missing", "partial", "running", "complete", "damaged",
                                                        "failed"),
                    help="only runs with this status")

    show = sub.add_parser("show", help="config, summary and last records of one run")
    show.add_argument("run_id", help="run id, or a prefix matching exactly one run")
    show.add_argument("--rows", type=count_arg(0), default=20, help="records rows to print (default: 20)")
    add_bundle_parser(sub)
    add_jobs_parser(sub)
    add_verify_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command; a bad input prints one line and returns 2 (``--debug``: the traceback)."""
    args = build_parser().parse_args(argv)
    command = {"run": cmd_run, "sweep": cmd_sweep, "ls": cmd_ls, "show": cmd_show, "bundle": cmd_bundle,
               "jobs": cmd_jobs, "verify": cmd_verify}[args.command]
    debug = args.debug or debug_enabled()
    try:
        _set_compile(args.compile)
        store = ResultsStore(check_results_root(args.results))
        return command(args, store)
    except (UserError, StoreError) as err:
        if debug:
            raise
        print(f"sparsity-lab {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"sparsity-lab {args.command}: interrupted; completed pruning iterations are kept in the store: "
              "run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not a bad input: still one line unless --debug
        if debug:
            raise
        print(f"sparsity-lab {args.command}: internal error: {type(err).__name__}: {one_line(err)} "
              "(run with --debug or SPARSITY_LAB_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _set_compile(choice: str | None) -> None:
    """``--compile`` goes to the environment (sweep workers inherit it); a bad $SPARSITY_LAB_COMPILE or
    $SPARSITY_LAB_WORKER_START is a UserError naming it."""
    from sparsity_lab.engine.settings import COMPILE_CHOICES, COMPILE_ENV

    if choice is not None:
        os.environ[COMPILE_ENV] = choice
    value = os.environ.get(COMPILE_ENV, "auto")
    if value not in COMPILE_CHOICES:
        raise UserError(f"${COMPILE_ENV}={value!r} is not allowed: choose one of {', '.join(COMPILE_CHOICES)}")
    try:
        worker_start.method()
    except ValueError as err:
        raise UserError(str(err)) from None
