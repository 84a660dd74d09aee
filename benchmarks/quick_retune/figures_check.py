"""Run the configs figures 1-4 and 6 would run at `quick` with a candidate's overrides, time every run,
and print each figure's claim verdicts (docs/quick-retune.md). One JSON line per figure goes to --out.

    python benchmarks/quick_retune/figures_check.py --figures 2 3 --model cnn_tiny --subset 5000 \
        --epochs 1 --batch 25 --iterations 20 --test-subset 2000 --store /tmp/qr/fig --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

from search import limit_test_set  # same directory
from sparsity_lab.figures.plan import figure_configs

from sparsity_lab.claims import check_figure
from sparsity_lab.experiments import run
from sparsity_lab.store import ResultsStore, load_results
from sparsity_lab.train import TrainSettings

MODULES = {1: "trajectories", 2: "scopes", 3: "pq_ablation", 4: "eta_gamma_ablation", 6: "comparison"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--figures", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    ap.add_argument("--model", default="cnn_tiny")
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the figure's quick seeds")
    ap.add_argument("--setups", nargs="*", default=None, help="figure 6: dataset/model pairs")
    ap.add_argument("--test-subset", type=int, default=0)
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.test_subset:
        limit_test_set(a.test_subset)
    store = ResultsStore(a.store)
    train = TrainSettings(epochs=a.epochs, batch_size=a.batch, lr=a.lr)
    for n in a.figures:
        params = {"model": a.model, "train_subset": a.subset, "iterations": a.iterations, "train": train}
        if a.seeds:
            params["seeds"] = a.seeds
        if n == 6:
            params["setups"] = ([tuple(s.split("/")) for s in a.setups] if a.setups
                                else [("fashionmnist", a.model), ("mnist", "lenet300_100")])
            params.pop("model")
        cfgs = figure_configs(MODULES[n], "quick", **params)
        cpu_times = {}
        for cfg in cfgs:
            c0 = time.process_time()
            res = run(cfg, store=store, device="cpu", progress=False)
            cpu_times[cfg.run_id] = None if res.reused else round(time.process_time() - c0, 1)
            print(f"fig {n}: {cfg.model} {cfg.method} {cfg.scope} p={cfg.p} q={cfg.q} eta={cfg.eta_r} "
                  f"gamma={cfg.gamma} seed={cfg.seed}: {cpu_times[cfg.run_id]}s cpu", flush=True)
        records = load_results(store=store, run_id=[c.run_id for c in cfgs])
        verdicts = check_figure(n, records)
        row = {"figure": n, **{k: v for k, v in vars(a).items() if k not in ("figures", "store", "out")},
               "runs": len(cfgs), "run_cpu_seconds": cpu_times,
               "verdicts": [{"claim": v.claim, "status": v.status, "reason": v.reason} for v in verdicts]}
        with open(a.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        for v in verdicts:
            print(f"{v.claim} {v.status}: {v.reason}", flush=True)


if __name__ == "__main__":
    main()
