"""Search for a `quick` configuration whose figure-1 claims hold on a CPU (docs/quick-retune.md).

One candidate = figure 1's four global methods (SAP(0.5,1), SAP(1,2), LT 0.2, One Shot 0.2) at one
(model, train_subset, E, T, lr, seeds). Runs them one after another in this process (set
SPARSITY_LAB_CPU_THREADS=1), times each run, evaluates claims 1.1-1.4 and appends one JSON line per
candidate to --out.

    python benchmarks/quick_retune/search.py --model cnn_small --subset 5000 --epochs 2 --iterations 15 \
        --lr 0.1 --seeds 0 --store /tmp/qr_store --out benchmarks/quick_retune/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.experiments import run
from sparsity_lab.figures.registry import get_figure
from sparsity_lab.store import ResultsStore, load_results

METHODS = {
    "sap05": {"method": "sap", "p": 0.5, "q": 1.0},
    "sap12": {"method": "sap", "p": 1.0, "q": 2.0},
    "lt": {"method": "lt", "prune_fraction": 0.2},
    "os": {"method": "oneshot", "prune_fraction": 0.2},
}


def limit_test_set(n: int) -> None:
    """Evaluate on a fixed subset of n test examples (the same for every run): the first n of a
    permutation seeded with 0. Patched into the iterative runner; the search measures its effect."""
    import torch

    import sparsity_lab.experiments.iterative as it

    original = it.load_run_data

    def load(cfg, device):
        data = original(cfg, device)
        keep = torch.randperm(int(data.test_y.shape[0]), generator=torch.Generator().manual_seed(0))[:n].sort().values
        data.test_x, data.test_y = data.test_x[keep], data.test_y[keep]
        return data

    it.load_run_data = load


def configs(a: argparse.Namespace) -> list[IterativeConfig]:
    train = TrainSettings(epochs=a.epochs, batch_size=a.batch, lr=a.lr)
    return [IterativeConfig(dataset=a.dataset, model=a.model, scope=a.scope, iterations=a.iterations, seed=s,
                            train_subset=a.subset, train=train, **METHODS[m])
            for m in a.methods for s in a.seeds]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashionmnist")
    ap.add_argument("--model", default="cnn_small")
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--scope", default="global")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--test-subset", type=int, default=0, help="evaluate on this many test examples (0 = all)")
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.test_subset:
        limit_test_set(a.test_subset)
    store = ResultsStore(a.store)
    times, cpu_times = {}, {}
    for cfg in configs(a):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run(cfg, store=store, device="cpu", progress=False)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        times[cfg.run_id] = None if res.reused else round(dt, 1)
        cpu_times[cfg.run_id] = None if res.reused else round(cpu, 1)
        print(f"{cfg.method} p={cfg.p} q={cfg.q} seed={cfg.seed}: {dt:.1f}s wall, {cpu:.1f}s cpu"
              f"{' (reused)' if res.reused else ''}", flush=True)
    ids = [c.run_id for c in configs(a)]
    records = load_results(store=store, run_id=ids)
    verdicts = get_figure(1).claims(records) if set(a.methods) == set(METHODS) else []
    record(a.out, {"model": a.model, "dataset": a.dataset, "subset": a.subset, "E": a.epochs, "T": a.iterations,
                   "lr": a.lr, "test_subset": a.test_subset, "batch": a.batch, "scope": a.scope, "seeds": a.seeds,
                   "run_seconds": times, "run_cpu_seconds": cpu_times}, verdicts)


def record(out: str, row: dict, verdicts: list) -> None:
    """Append ``row`` with the claims' verdicts as one JSON line to ``out`` and print the verdicts."""
    row = {**row, "verdicts": [{"claim": v.claim, "status": v.status, "reason": v.reason} for v in verdicts]}
    with open(out, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    for v in verdicts:
        print(f"{v.claim} {v.status}: {v.reason}", flush=True)


if __name__ == "__main__":
    main()
