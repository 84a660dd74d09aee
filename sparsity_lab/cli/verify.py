"""``sparsity-lab verify [RUN_ID ...] [--repair]``: check every stored file against its manifest.

Prints one line per run: its status and, for a damaged run, the file and what is wrong with it
(store/verify.py). Exit status 1 if any run is damaged (with ``--repair``: still damaged after the
repair, i.e. a damaged config.json), else 0. ``--repair`` discards what fails
verification (the damaged step and later ones, a damaged artifact, the ``COMPLETE`` marker) so the
next run of the config recomputes exactly that; a damaged config.json can only be rewritten by
running its config again.
"""

from __future__ import annotations

import argparse
from typing import Any

from sparsity_lab.store import ResultsStore, StoreError
from sparsity_lab.store.query import run_state


def add_verify_parser(sub: Any) -> None:
    verify = sub.add_parser("verify", help="check every stored file against its checksum; exit 1 if any run is "
                                           "damaged",
                            description="Verify runs (all, or those given) against their manifest.json checksums "
                                        "and file formats. --repair discards damaged steps so the next run of "
                                        "the config recomputes them.")
    verify.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="run ids or unique prefixes (default: all)")
    verify.add_argument("--repair", action="store_true",
                        help="discard damaged steps/artifacts (and COMPLETE) so re-running recomputes them")


def _resolve(store: ResultsStore, wanted: list[str]) -> list[str]:
    ids = store.run_ids()
    if not wanted:
        return ids
    out = []
    for prefix in wanted:
        matches = [prefix] if prefix in ids else [rid for rid in ids if rid.startswith(prefix)]
        if len(matches) != 1:
            found = f"{len(matches)} runs match" if matches else "no run matches"
            raise StoreError(f"run id {prefix!r}: {found} in {store.root} (see `sparsity-lab ls`)")
        out.append(matches[0])
    return out


def cmd_verify(args: argparse.Namespace, store: ResultsStore) -> int:
    run_ids = _resolve(store, args.run_ids)
    if not run_ids:
        print(f"no runs in {store.root}")
        return 0
    damaged = remaining = 0
    for run_id in run_ids:
        status, problem = run_state(store, run_id)
        line = f"{run_id}  {status}" + (f"  {problem}" if problem else "")
        if status == "damaged":
            damaged += 1
            if args.repair:
                acted = store.repair(run_id)
                status, _ = run_state(store, run_id)
                line += f"  -> repaired ({len(acted)} problem(s) discarded; now {status}; run its config to recompute)"
            remaining += status == "damaged"
        print(line)
    print(f"{len(run_ids)} runs checked, {damaged} damaged" + (" (repaired)" if args.repair and damaged else ""))
    return 1 if (remaining if args.repair else damaged) else 0
