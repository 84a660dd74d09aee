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

from sparsity_lab.config import config_from_dict
from sparsity_lab.figures.plan import training_epochs
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep import default_devices, run_many

HERE = Path(__file__).resolve().parent
#: rough seconds per training epoch on one H100, only to order the jobs longest first
EPOCH_COST = {"cnn": 0.34, "mlp": 0.05, "linear": 0.04, "lenet300_100": 0.1, "asni": 1.5}


def load_configs() -> list:
    by_notebook = json.loads((HERE / "configs.json").read_text())
    unique = {}
    for dicts in by_notebook.values():
        for d in dicts:
            cfg = config_from_dict(d)
            unique.setdefault(cfg.run_id, cfg)
    return sorted(unique.values(), key=lambda c: -training_epochs(c) * EPOCH_COST["asni" if c.kind == "asni" else c.model])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers-per-device", type=int, default=3)
    ap.add_argument("--results", default=None)
    args = ap.parse_args()
    configs = load_configs()
    store = ResultsStore(args.results)
    todo = [c for c in configs if not store.is_complete(c.run_id)]
    devices = default_devices()
    print(f"{len(configs)} runs, {len(todo)} to train on {devices} x {args.workers_per_device}", flush=True)
    start = time.perf_counter()
    outcomes = run_many(configs, devices=devices, workers_per_device=args.workers_per_device, store=store,
                        progress=False)
    wall = time.perf_counter() - start
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.status == "failed":
            print(f"FAILED {o.run_id}: {(o.error or '').strip().splitlines()[-1:]}", flush=True)
    print(f"wall {wall:.1f} s: {counts}", flush=True)


if __name__ == "__main__":
    main()
