"""Run the configs figures 1-4 and 6 would run at `quick` with a candidate's overrides, time every run,
and print each figure's claim verdicts (docs/quick-retune.md). One JSON line per figure goes to --out.

    python benchmarks/quick_retune/figures_check.py --figures 2 3 --model cnn_tiny --subset 5000 \
        --epochs 1 --batch 25 --iterations 20 --test-subset 2000 --store /tmp/qr/fig --out results.jsonl
"""

from __future__ import annotations

import argparse
import time

from search import record  # same directory

from sparsity_lab.experiments import run
from sparsity_lab.figures.registry import get_figure
from sparsity_lab.report import pipeline
from sparsity_lab.store import ResultsStore, load_results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--figures", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    ap.add_argument("--model", default="cnn_tiny")
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the figure's quick seeds")
    ap.add_argument("--setups", nargs="*", default=None, help="figure 6: dataset/model pairs")
    ap.add_argument("--test-subset", type=int, default=0)
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    store = ResultsStore(a.store)
    for n in a.figures:
        overrides = {"model": a.model, "train_subset": a.subset, "iterations": a.iterations, "epochs": a.epochs,
                     "batch_size": a.batch, "test_subset": a.test_subset, "seeds": a.seeds}
        if n == 6:
            overrides["setups"] = ([s.split("/") for s in a.setups] if a.setups
                                   else [["fashionmnist", a.model], ["mnist", "lenet300_100"]])
            overrides.pop("model")
        cfgs = [r.config for _, _, runs in pipeline.plan([n], "quick", overrides) for r in runs]
        cpu_times = {}
        for cfg in cfgs:
            c0 = time.process_time()
            res = run(cfg, store=store, device="cpu", progress=False)
            cpu_times[cfg.run_id] = None if res.reused else round(time.process_time() - c0, 1)
            print(f"fig {n}: {cfg.model} {cfg.method} {cfg.scope} p={cfg.p} q={cfg.q} eta={cfg.eta_r} "
                  f"gamma={cfg.gamma} seed={cfg.seed}: {cpu_times[cfg.run_id]}s cpu", flush=True)
        records = load_results(store=store, run_id=[c.run_id for c in cfgs])
        record(a.out, {"figure": n, **{k: v for k, v in vars(a).items() if k not in ("figures", "store", "out")},
                       "runs": len(cfgs), "run_cpu_seconds": cpu_times}, get_figure(n).claims(records))


if __name__ == "__main__":
    main()
