"""``sparsity-lab bundle export|import``: results bundles on the command line (store/bundle.py).

    sparsity-lab bundle export gpu.tar.gz --dataset fashionmnist mnist        # complete runs matching
    sparsity-lab bundle export two.tar --runs iterative_8ac9 asni_12ab --tensors none
    sparsity-lab bundle export all.tar.xz --all --tensors all
    sparsity-lab bundle export gpu.tar.xz --profile gpu --note "4x H200, 2026-11-27"   # what the gpu figures read
    sparsity-lab bundle export gpu-full.tar.xz --profile gpu --records all   # ... with every record of those runs
    sparsity-lab bundle import gpu.tar.gz [--results STORE]

Errors (no such file, no run matched, a corrupt member) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sparsity_lab._format import human_bytes
from sparsity_lab.store import ResultsStore, StoreError
from sparsity_lab.store.bundle import WRITE_MODES, export_bundle, import_bundle
from sparsity_lab.store.bundle_select import FILTER_FIELDS, TENSOR_POLICIES, select_runs

RECORD_POLICIES = ("figures", "all")


def add_bundle_parser(sub: Any) -> None:
    """The ``bundle`` command with its ``export`` and ``import`` subcommands."""
    bundle = sub.add_parser("bundle", help="export complete runs to a portable archive, or import one",
                            description="A bundle is a tar of run directories (configs, records, the tensors the "
                                        "figures read) with a bundle.json of sha256 checksums; run ids are kept.")
    actions = bundle.add_subparsers(dest="bundle_command", required=True, metavar="{export,import}")
    export = actions.add_parser("export", help="write complete runs to OUT (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2)")
    export.add_argument("out", metavar="OUT", help=f"bundle file to write; suffix one of {list(WRITE_MODES)}")
    export.add_argument("--runs", nargs="+", default=[], metavar="ID", help="run ids or unique prefixes")
    for name in FILTER_FIELDS:
        export.add_argument(f"--{name}", nargs="+", default=None, metavar=name.upper(),
                            help=f"complete runs whose {name} is one of these")
    export.add_argument("--all", action="store_true", help="every complete run of the store")
    export.add_argument("--profile", default=None,
                        help="the runs every registered figure reads at this profile, with exactly the tensors "
                             "they declare (e.g. gpu)")
    export.add_argument("--note", default="", help="where and how the runs were made (shown in figure captions)")
    export.add_argument("--tensors", choices=TENSOR_POLICIES, default="figures",
                        help="tensors to carry: figures (the 'final' artifacts figures 9 and 10 read; default), "
                             "final (every run's 'final'), none (records only), all (every file: resumable)")
    export.add_argument("--records", choices=RECORD_POLICIES, default=None,
                        help="records to carry: figures (the record groups the --profile's figures declare, e.g. "
                             "the global (p, q)-grid PQI only where figure 5 reads it; the default with --profile) "
                             "or all (every record; the default otherwise)")
    imp = actions.add_parser("import", help="import the runs of a bundle into the store (complete runs are kept)")
    imp.add_argument("file", metavar="FILE", help="bundle written by `bundle export`")
    imp.add_argument("--results", metavar="STORE", default=argparse.SUPPRESS,
                     help="results store root (default: $SPARSITY_LAB_RESULTS, else the checkout's results/)")


def cmd_bundle(args: argparse.Namespace, store: ResultsStore) -> int:
    if args.bundle_command == "import":
        report = import_bundle(args.file, store)
        print(f"bundle {args.file}: {len(report.imported)} runs imported, {len(report.kept)} already complete "
              f"(kept), {len(report.busy)} being computed (skipped) in {store.root}")
        return 0
    filters = {name: getattr(args, name) for name in FILTER_FIELDS if getattr(args, name)}
    if not (args.runs or filters or args.all or args.profile):
        raise StoreError("choose the runs: --runs ID..., filters (--dataset/--model/--kind/--method/--variant), "
                         "--profile P or --all")
    finals, records = None, None
    runs = list(args.runs)
    policy = args.records or ("figures" if args.profile else "all")
    if policy == "figures" and not args.profile:
        raise StoreError("--records figures needs --profile P (the figure registry says which records figures read)")
    if args.profile:
        figure_runs = _figure_runs(args.profile)
        runs += [r.run_id for r in figure_runs]
        finals = sorted({r.run_id for r in figure_runs if "final" in r.tensors})
        if policy == "figures":
            records = {}
            for r in figure_runs:  # a run several figures read: the union of their record groups
                records[r.run_id] = sorted({*records.get(r.run_id, ()), *r.records})
    run_ids = select_runs(store, runs, everything=args.all, **filters)
    doc = export_bundle(store, args.out, run_ids, tensors=args.tensors, finals=finals, records=records,
                        note=args.note)
    size = Path(args.out).stat().st_size
    print(f"bundle {args.out}: {len(doc['runs'])} runs, tensors {args.tensors}, records {policy}, "
          f"{doc['records_member']['rows']} record rows, {human_bytes(size)}")
    return 0


def _figure_runs(profile: str) -> list[Any]:
    """Every run the registered figures read at ``profile`` (figure registry, ``pipeline.plan``)."""
    from sparsity_lab.figures.params import ParameterError
    from sparsity_lab.figures.registry import all_figures
    from sparsity_lab.report import pipeline

    try:
        return [run for _, _, runs in pipeline.plan(all_figures(), profile) for run in runs]
    except ParameterError as err:
        raise StoreError(str(err)) from None
