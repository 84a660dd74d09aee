"""How many epochs E does a DENSE model need to come within 1 point of its converged test accuracy (issue 19)?

Each E of `--epochs` is its own training, exactly as iteration 0 (the dense training) of an iterative run
of the package trains: `IterativeConfig(dataset, model, seed, train=TrainSettings(epochs=E))` (the SAP
paper's protocol by default: SGD lr 0.1, Nesterov momentum 0.9, weight decay 5e-4 on all parameters,
cosine to 0 over the E epochs, batch 250, clip at global norm 1.0), the run's data (`load_run_data`), the
model from the seed (`seeded_model`), all-True masks (`MaskSet.for_model`) and `MaskedTrainer` with the
engine's default options (bf16 autocast, CUDA graphs on CUDA; compile 'auto'). After every epoch the test
split is evaluated (evaluation changes no training state). The largest E's final test accuracy stands for
"converged"; the table gives each E's final accuracy and its gap to it.

    PYTHONPATH=$PWD SPARSITY_LAB_DATA=$PWD/.devdata python3 benchmarks/bench_dense_epochs.py \\
        --model resnet18 --dataset fashionmnist --epochs 5,10,20,30 --out $OUT/dense-epochs.json
    SPARSITY_LAB_DATA=... .venv/bin/python benchmarks/bench_dense_epochs.py --quick   # CPU smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from bench_engine import git_sha

from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.engine.trainer import MaskedTrainer, TrainSettings
from sparsity_lab.experiments.common import seeded_model
from sparsity_lab.experiments.iterative import load_run_data
from sparsity_lab.masks import MaskSet


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--dataset", default="fashionmnist")
    ap.add_argument("--epochs", default="5,10,20,30", help="comma list of E (one training each)")
    ap.add_argument("--seeds", default="0", help="comma list of seeds")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="CPU smoke: cnn_tiny, 500 train / 500 test images, E = 1, 2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    subset = {}
    if args.quick:
        args.model, args.epochs = "cnn_tiny" if args.model == "resnet18" else args.model, "1,2"
        subset = {"train_subset": 500, "test_subset": 500}
    device = torch.device(args.device)
    out = Path(args.out or Path(__file__).parent / "results" / f"{args.model}-{args.dataset}-dense-epochs.json")
    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "git_sha": git_sha(), "command": " ".join(sys.argv), "model": args.model,
              "dataset": args.dataset, "runs": [], "table": []}

    def write() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(header, indent=1))

    for seed in (int(s) for s in args.seeds.split(",")):
        for epochs in (int(e) for e in args.epochs.split(",")):
            cfg = IterativeConfig(dataset=args.dataset, model=args.model, seed=seed, iterations=0,
                                  train=TrainSettings(epochs=epochs), **subset)
            if hasattr(cfg, "validate"):
                cfg.validate()
            data = load_run_data(cfg, device)
            model = seeded_model(cfg.model, data.info, cfg.seed, device)
            trainer = MaskedTrainer(model, MaskSet.for_model(model), data, cfg.train, seed=cfg.seed, device=device)
            start = time.perf_counter()
            curve = []
            for _ in range(epochs):
                rec = trainer.train_epoch()
                ev = trainer.evaluate("test")
                curve.append({"epoch": rec["epoch"], "lr": rec["lr"], "loss": rec["loss"], "accuracy": rec["accuracy"],
                              "test_loss": ev["loss"], "test_accuracy": ev["accuracy"], "seconds": rec["seconds"]})
            run = {"seed": seed, "epochs": epochs, "train": vars(cfg.train) if hasattr(cfg.train, "__dict__") else
                   str(cfg.train), "compiled": trainer._compiled is not None, "cuda_graphs": trainer.graphs,
                   "wall_seconds": time.perf_counter() - start, "final_test_accuracy": curve[-1]["test_accuracy"],
                   "best_test_accuracy": max(c["test_accuracy"] for c in curve), "curve": curve}
            header["runs"].append(run)
            print(f"seed {seed} E={epochs:>3}: final test accuracy {run['final_test_accuracy']:.4f} "
                  f"(best {run['best_test_accuracy']:.4f}), train loss {curve[-1]['loss']:.4f}, "
                  f"{run['wall_seconds']:.1f} s", flush=True)
            write()
    runs = header["runs"]
    for seed in sorted({r["seed"] for r in runs}):
        mine = sorted((r for r in runs if r["seed"] == seed), key=lambda r: r["epochs"])
        converged = mine[-1]["final_test_accuracy"]
        for r in mine:
            header["table"].append({"seed": seed, "epochs": r["epochs"], "final_test_accuracy": r["final_test_accuracy"],
                                    "gap_to_largest_E_points": 100 * (converged - r["final_test_accuracy"]),
                                    "within_1_point": converged - r["final_test_accuracy"] <= 0.01})
    write()
    print(f"\n{'seed':>4}{'E':>5}{'test acc':>10}{'gap (pts)':>11}  within 1 pt of the largest E")
    for t in header["table"]:
        print(f"{t['seed']:>4}{t['epochs']:>5}{t['final_test_accuracy']:>10.4f}{t['gap_to_largest_E_points']:>11.2f}"
              f"  {t['within_1_point']}")
    print(f"wrote {out}")
    return header


if __name__ == "__main__":
    main()
