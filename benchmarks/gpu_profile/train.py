"""Train every run of the `gpu` profile on all GPUs of one host (issue 11), resumable.

    python benchmarks/gpu_profile/train.py [--workers-per-device 3] [--results DIR]

Reads benchmarks/gpu_profile/configs.json (the configs each gpu-profile figure needs, by notebook) and
hands the distinct runs to ``sweep.run_many`` over every visible GPU, longest runs first. Killing it
loses at most the pruning iteration (ASNI: epoch) in progress: re-running resumes from the store.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sparsity_lab.config.configs import config_from_dict
from sparsity_lab.report.pipeline import training_epochs
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.runner import default_devices, run_many

HERE = Path(__file__).resolve().parent
#: rough seconds per training epoch on one H100, only to order the jobs longest first
EPOCH_COST = {"cnn": 0.34, "mlp": 0.05, "linear": 0.04, "lenet300_100": 0.1, "asni": 1.5}


def cost(config) -> float:
    return training_epochs(config) * EPOCH_COST["asni" if config.kind == "asni" else config.model]


def load_configs(groups: list[str] | None = None) -> list:
    """Distinct configs, longest first within each group of notebook-name prefixes (groups in order:
    "08,09,10" then "02" trains every run of the first group before the second's)."""
    by_notebook = json.loads((HERE / "configs.json").read_text())
    ordered: dict[str, object] = {}
    for group in groups or [",".join(by_notebook)]:
        prefixes = tuple(group.split(","))
        chosen = [config_from_dict(d) for nb, dicts in by_notebook.items() if nb.startswith(prefixes)
                  for d in dicts]
        for cfg in sorted(chosen, key=lambda c: (c.kind != "asni" or c.variant != "asni1", -cost(c))):
            ordered.setdefault(cfg.run_id, cfg)
    return list(ordered.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers-per-device", type=int, default=3)
    ap.add_argument("--results", default=None)
    ap.add_argument("groups", nargs="*", help="notebook prefixes per priority group, e.g. 08,09,10,06 02")
    args = ap.parse_args()
    configs = load_configs(args.groups)
    store = ResultsStore(args.results)
    todo = [c for c in configs if not store.is_complete(c.run_id)]
    devices = default_devices()
    print(f"{len(configs)} runs, {len(todo)} to train on {devices} x {args.workers_per_device}", flush=True)
    start = time.perf_counter()
    outcomes = run_many(configs, devices=devices, workers_per_device=args.workers_per_device, store=store,
                        progress=False)
    wall = time.perf_counter() - start
    print(f"wall {wall:.1f} s: {tally(outcomes)}", flush=True)


def tally(outcomes: list) -> dict[str, int]:
    """Outcomes per status; prints the last error line of every failed run."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.status == "failed":
            print(f"FAILED {o.run_id}: {(o.error or '').strip().splitlines()[-1:]}", flush=True)
    return counts


if __name__ == "__main__":
    main()
