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
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import yaml

from sparsity_lab import worker_start
from sparsity_lab._format import human_bytes
from sparsity_lab.cli_bundle import add_bundle_parser, cmd_bundle
from sparsity_lab.cli_checks import (
    OneLineParser,
    check_results_root,
    count_arg,
    preflight_data,
    preflight_devices,
)
from sparsity_lab.cli_verify import add_verify_parser, cmd_verify
from sparsity_lab.cluster.cli import add_executor_flags, add_jobs_parser, cmd_jobs, sweep_on_cluster
from sparsity_lab.config import CONFIG_TYPES, ConfigError, FieldDoc, config_with, flat_fields
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.errors import UserError, debug_enabled, one_line
from sparsity_lab.store import ResultsStore, StoreError, list_runs, varying_columns
from sparsity_lab.store.query import run_state

#: Config columns ``ls`` always shows when present; any other column that differs between runs is shown too.
KEY_FIELDS = ("dataset", "model", "method", "variant", "config_scope", "config_p", "config_q", "seed")
_RUN_META = ("run_id", "kind", "status", "steps", "size_bytes", "created", "problem")
#: Config columns that mean something only for some methods: `ls` leaves them blank on other runs
#: (an LT run's SAP p/q are defaults it never used).
METHOD_ONLY = {"config_p": ("sap",), "config_q": ("sap",), "eta_r": ("sap",), "gamma": ("sap",), "beta": ("sap",),
               "prune_fraction": ("lt", "oneshot")}


# ---------------------------------------------------------------- config fields as flags
def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def parse_value(doc: FieldDoc, text: str) -> Any:
    """Convert a flag's text to the field's type (``FieldDoc.type`` is the annotation, e.g. ``float | None``)."""
    annotation = doc.type.replace(" ", "")
    if "|None" in annotation and text.strip().lower() in ("none", "null"):
        return None
    base = annotation.replace("|None", "")
    try:
        if base == "bool":
            return _parse_bool(text)
        if base in ("int", "float", "str"):
            return {"int": int, "float": float, "str": str}[base](text)
        return _tuples(yaml.safe_load(text))  # tuples and anything else: YAML, e.g. "[[fc3.*, 0.1]]"
    except (ValueError, TypeError, yaml.YAMLError) as err:
        raise ConfigError(f"invalid config field {doc.name}={text!r}: expected {doc.type} ({err})") from None


def _fields_by_name() -> dict[str, dict[str, FieldDoc]]:
    """``{field name: {kind: FieldDoc}}`` over every config kind, in declaration order."""
    out: dict[str, dict[str, FieldDoc]] = {}
    for kind, cls in CONFIG_TYPES.items():
        for doc in flat_fields(cls):
            out.setdefault(doc.name, {})[kind] = doc
    return out


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--<field>`` flag per config field (``--train.lr`` for nested ones), help = field help + default(s)."""
    kinds = list(CONFIG_TYPES)
    groups = {"all": parser.add_argument_group("config fields of every kind")}
    for kind in kinds:
        groups[kind] = parser.add_argument_group(f"config fields of --kind {kind} only")
    for name, docs in _fields_by_name().items():
        first = next(iter(docs.values()))
        defaults = {kind: doc.default for kind, doc in docs.items()}
        if len(set(map(repr, defaults.values()))) == 1:
            default = f"default: {first.default!r}"
        else:
            default = "default: " + ", ".join(f"{kind} {value!r}" for kind, value in defaults.items())
        group = groups["all"] if len(docs) == len(kinds) else groups[next(iter(docs))]
        group.add_argument(f"--{name}", dest=f"field:{name}", default=argparse.SUPPRESS,
                           metavar=first.type.replace(" ", "").upper().split("[")[0].replace("|NONE", "|none"),
                           help=f"{first.help} ({default})".replace("%", "%%"))


def config_from_flags(kind: str, args: argparse.Namespace) -> Any:
    """The config of ``kind`` with the given flags applied; unknown kinds or fields raise ``ConfigError``."""
    if kind not in CONFIG_TYPES:
        raise ConfigError(f"invalid config field kind={kind!r}: allowed one of {sorted(CONFIG_TYPES)}")
    fields = {doc.name: doc for doc in flat_fields(CONFIG_TYPES[kind])}
    values = {}
    for dest, text in vars(args).items():
        if dest.startswith("field:"):
            name = dest[len("field:"):]
            if name not in fields:
                raise ConfigError(f"config field --{name} does not exist for --kind {kind}; "
                                  f"fields of {kind}: {sorted(fields)}")
            values[name] = parse_value(fields[name], text)
    return config_with(CONFIG_TYPES[kind](), **values)


# ---------------------------------------------------------------- commands
def _run_experiment(config: Any, **kwargs: Any) -> Any:
    """``sparsity_lab.experiments.run`` (looked up at call time so tests can substitute it)."""
    from sparsity_lab.experiments import run

    return run(config, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sparsity-lab", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", metavar="DIR", default=None,
                        help="results store root (default: $SPARSITY_LAB_RESULTS, else ./results)")
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
    sweep.add_argument("--batch-seeds", choices=sorted(_BATCH_SEEDS), default="auto",
                       help="train configs that differ only by seed together in the batched engine: auto (CUDA and "
                            "no convolutions), on (every batchable group, any device) or off (default: auto)")
    sweep.add_argument("--dry-run", action="store_true", help="list the expanded configs and their status; run nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_executor_flags(sweep)  # cluster path: sparsity_lab/cluster/

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


#: ``--batch-seeds`` choices mapped to ``run_many(batch_seeds=...)``.
_BATCH_SEEDS: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}


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


def cmd_run(args: argparse.Namespace, store: ResultsStore) -> int:
    config = config_from_flags(args.kind, args)
    config.validate()
    preflight_devices([args.device] if args.device else None)
    preflight_data([config.dataset])
    print(f"run {config.run_id} ({config.kind}): {config.canonical()}")
    try:
        result = _run_experiment(config, store=store, device=args.device, progress=not args.no_progress)
    except TrainingDiverged as err:  # stored as failed by the runner: one line, exit 1
        print(f"sparsity-lab run: run {config.run_id} failed: {err}; stored as failed (running it again retries it)",
              file=sys.stderr)
        return 1
    print(f"run {result.run_id}: {'reused from' if result.reused else 'stored in'} {store.run_dir(result.run_id)}")
    _print_last_records(result.records, rows=20)
    return 0


def cmd_sweep(args: argparse.Namespace, store: ResultsStore) -> int:
    from sparsity_lab.sweep import load_sweep_file, run_many

    configs = load_sweep_file(args.file)
    unique = {c.run_id: c for c in configs}
    table = pd.DataFrame([{"run_id": rid, "kind": c.kind, "status": store.status(rid), "config": c.canonical()}
                          for rid, c in unique.items()])
    if args.dry_run:
        print(f"{len(configs)} configs, {len(unique)} distinct runs in {args.file} (store: {store.root})")
        if not table.empty:
            width = table["config"].str.len().max()
            print(table.to_string(index=False, formatters={"config": lambda text: f"{text:<{width}}"}))
        return 0
    if args.executor != "local":
        return sweep_on_cluster(configs, args, store)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    preflight_devices(devices)
    preflight_data([c.dataset for c in configs])
    if any(not store.is_complete(rid) for rid in unique):
        store.require_writable()  # as `run`: a read-only store that must train is one line, exit 2
    with _failures_reported_here(args.debug or debug_enabled()):
        outcomes = run_many(configs, devices=devices, workers_per_device=args.workers_per_device, store=store,
                            progress=not args.no_progress, runner=_run_experiment,
                            batch_seeds=_BATCH_SEEDS[args.batch_seeds])
    done = pd.DataFrame([{"run_id": o.run_id, "status": o.status, "seconds": round(o.seconds, 1),
                          "error": (o.error or "").split("\n")[0]} for o in outcomes]).drop_duplicates("run_id")
    print(done.to_string(index=False))
    failed = {o.run_id: o for o in outcomes if o.status == "failed"}
    for o in failed.values():
        print(_failure_report(o), file=sys.stderr)
    return 1 if failed else 0


_DIVERGED = "TrainingDiverged: "


def _failure_report(outcome: Any) -> str:
    """One line for a run that failed without a bug (diverged training, a bad input or store: the same line as
    `run` prints); a bug's error keeps its traceback summary."""
    error = outcome.error or ""
    if "\n" in error:
        return f"\n{outcome.run_id} failed:\n{error}"
    if error.startswith(_DIVERGED):
        return (f"sparsity-lab sweep: run {outcome.run_id} failed: {error[len(_DIVERGED):]}; stored as failed "
                "(running it again retries it)")
    return f"sparsity-lab sweep: run {outcome.run_id} failed: {error}"


@contextlib.contextmanager
def _failures_reported_here(debug: bool) -> Iterator[None]:
    """Leave out ``run_many``'s own log lines about failed runs (unless ``debug``): ``cmd_sweep`` reports each
    failure itself, in one line where `run` would."""
    def keep(record: logging.LogRecord) -> bool:
        return debug or record.funcName != "run_many"

    logger = logging.getLogger("sparsity_lab.sweep")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def key_columns(runs: pd.DataFrame) -> list[str]:
    """``KEY_FIELDS`` present, then every other config column whose value differs between runs."""
    config_cols = [c for c in runs.columns if c not in _RUN_META]
    varying = varying_columns(runs, exclude=_RUN_META)
    return [c for c in KEY_FIELDS if c in config_cols] + [c for c in varying if c not in KEY_FIELDS]


def cmd_ls(args: argparse.Namespace, store: ResultsStore) -> int:
    runs = list_runs(store)
    if args.kind:
        runs = runs[runs["kind"] == args.kind]
    if args.status:
        runs = runs[runs["status"] == args.status]
    if runs.empty:
        print(f"no runs in {store.root}")
        return 0
    table = runs[["run_id", "kind", "status", "steps"]].copy()
    table["size"] = runs["size_bytes"].map(human_bytes)
    table["created"] = runs["created"]
    for col in key_columns(runs):
        table[col] = runs[col]
        if col in METHOD_ONLY and "method" in runs.columns:
            table[col] = table[col].where(runs["method"].isin(METHOD_ONLY[col]))
    if runs["problem"].notna().any():  # damaged: the file and what is wrong; failed: the reason
        table["problem"] = runs["problem"]
    print(table.astype(object).fillna("").to_string(index=False))
    return 0


def _resolve_id(store: ResultsStore, prefix: str) -> str:
    ids = store.run_ids()
    if prefix in ids:
        return prefix
    matches = [rid for rid in ids if rid.startswith(prefix)]
    if len(matches) != 1:
        found = f"{len(matches)} runs match: {matches[:5]}" if matches else "none matches"
        raise StoreError(f"run id {prefix!r}: {found} (see `sparsity-lab ls`)")
    return matches[0]


def _print_last_records(records: pd.DataFrame, rows: int) -> None:
    if records.empty:
        print("no records stored yet")
        return
    last = records[records["iteration"] == records["iteration"].max()]
    model = last[last["scope"] == "model"] if (last["scope"] == "model").any() else last
    print(f"last records (iteration {records['iteration'].max()}, {len(last)} rows; showing {min(rows, len(model))}):")
    print(model.drop(columns=["run_id"], errors="ignore").head(rows).to_string(index=False))


def cmd_show(args: argparse.Namespace, store: ResultsStore) -> int:
    run_id = _resolve_id(store, args.run_id)
    status, problem = run_state(store, run_id)
    try:
        info = store.run_info(run_id)
    except StoreError as err:
        print(f"run {run_id}  status {status}  problem {problem or err}")
        return 1
    print(f"run {run_id}  kind {info.get('kind')}  status {status}  created {info.get('created')}")
    if problem:
        print(f"problem {problem}")
    print(f"directory {store.run_dir(run_id)}")
    print(f"canonical {info.get('canonical')}")
    code = info.get("code_version") or {}
    print(f"code sparsity_lab {code.get('sparsity_lab')}, git {code.get('git') or 'unknown'}")
    if info.get("imported_from"):
        origin = info["imported_from"]
        print(f"imported from bundle {origin.get('bundle')} on {origin.get('imported')} (read-only; tensors "
              f"{origin.get('tensors')}, {len(origin.get('dropped', []))} files left out)")
    print("config:")
    print(json.dumps(info.get("config"), indent=2, sort_keys=True))
    summary = store.summary(run_id)
    print("summary:" if summary else "summary: (not complete)")
    if summary:
        print(json.dumps(summary, indent=2, sort_keys=True))
    _print_last_records(store.records(run_id), rows=args.rows)
    return 0
