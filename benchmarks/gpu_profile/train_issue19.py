"""The `gpu` runs that issue 19 adds: resnet18 on FashionMNIST at T = 15 (figure 12), and a third seed for
figures 1, 2 and 6. Resumable; one call of the device tool may cut it, the store keeps what finished.

    python benchmarks/gpu_profile/train_issue19.py --results DIR --out OUTDIR [--dense-epochs 3,5,10,20]
        [--epochs E] [--stage-seconds 480] [--stages fig12,seed2-16,seed2-2]

Stages ``fig12-s0``, ``fig12-s1``, ``fig12-s2`` train one seed of figure 12 each: a fresh device starts
with an empty store, and ``fig12`` would otherwise begin again at seed 0.

1. E for resnet18 (figure 12's dense model within 1 point of converged, issue 19 part 1): unless
   ``--epochs`` is given, ``bench_dense_epochs.py`` trains the dense model once per E of ``--dense-epochs``
   (the paper's protocol, cosine over each E) and E is the smallest whose final test accuracy is within
   1 point of the largest E's (the "converged" accuracy). The choice is written to OUTDIR/epochs.json.
2. Figure 12's runs: SAP(0.5, 1), SAP(1, 2), LT(0.2), One Shot(0.2), global, T = 15, seeds 0-2, built
   exactly as ``figures/_bases.sap_config`` builds them (so the registered figure finds the same run ids).
3. Seed 2 of every figure-1, figure-6 (stage ``seed2-16``) and figure-2 (``seed2-2``) config of
   configs.json: the seed-0 configs with seed = 2.

Each stage runs under its own time limit (``sparsity_lab.sweep.run_many`` in a child process killed at
the limit: finished runs are safe in the store, the run in progress resumes at its last iteration).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAP_FIGURE_METHODS = [
    {"method": "sap", "p": 0.5, "q": 1.0},
    {"method": "sap", "p": 1.0, "q": 2.0},
    {"method": "lt", "prune_fraction": 0.2},
    {"method": "oneshot", "prune_fraction": 0.2},
]


def figure12_configs(epochs: int, seeds: tuple[int, ...] = (0, 1, 2)) -> list:
    from sparsity_lab.config.configs import IterativeConfig
    from sparsity_lab.config.fields import config_with
    from sparsity_lab.engine.trainer import TrainSettings

    base = IterativeConfig(dataset="fashionmnist", model="resnet18", iterations=15, scope="global",
                           train_subset=0, test_subset=0, train=TrainSettings(epochs=epochs, batch_size=250))
    return [config_with(base, seed=seed, **m) for seed in seeds for m in SAP_FIGURE_METHODS]


def seed2_configs(prefixes: tuple[str, ...]) -> list:
    from sparsity_lab.config.configs import config_from_dict

    by_notebook = json.loads((HERE / "configs.json").read_text())
    out = {}
    for nb, dicts in by_notebook.items():
        if nb.startswith(prefixes):
            for d in dicts:
                if d.get("seed") == 0:
                    cfg = config_from_dict({**d, "seed": 2})
                    out.setdefault(cfg.run_id, cfg)
    return list(out.values())


def choose_epochs(dense_epochs: str, out: Path) -> int:
    sys.path.insert(0, str(HERE.parent))
    import bench_dense_epochs

    result = bench_dense_epochs.main(["--model", "resnet18", "--dataset", "fashionmnist", "--epochs", dense_epochs,
                                      "--out", str(out / "dense-epochs.json")])
    finals = {r["epochs"]: r["final_test_accuracy"] for r in result["runs"]}
    converged = finals[max(finals)]
    chosen = min(e for e, acc in finals.items() if acc >= converged - 0.01)
    (out / "epochs.json").write_text(json.dumps({"finals": finals, "converged_E": max(finals),
                                                 "converged_accuracy": converged, "chosen_E": chosen}, indent=1))
    print(f"dense resnet18/fashionmnist: {finals}; E = {chosen} (within 1 pt of {converged:.4f})", flush=True)
    return chosen


def stage(name: str, epochs: int, results: str, seconds: float, workers: int) -> None:
    """Run one stage in a child process, killed after ``seconds``."""
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import train_issue19 as t; "
            f"t.run_stage({name!r}, {epochs:d}, {results!r}, {workers:d})")
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", code], timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        print(f"stage {name}: cut at {seconds:.0f} s (the store resumes)", flush=True)
    print(f"stage {name}: {time.perf_counter() - start:.0f} s", flush=True)


def run_stage(name: str, epochs: int, results: str, workers: int) -> None:
    from train import (
        tally,  # benchmarks/gpu_profile/train.py (this folder is on sys.path: stage() puts it there)
    )

    from sparsity_lab.store import ResultsStore
    from sparsity_lab.sweep.runner import default_devices, run_many

    configs = {"fig12": lambda: figure12_configs(epochs), "fig12-s0": lambda: figure12_configs(epochs, (0,)),
               "fig12-s1": lambda: figure12_configs(epochs, (1,)), "fig12-s2": lambda: figure12_configs(epochs, (2,)),
               "seed2-16": lambda: seed2_configs(("01", "06")),
               "seed2-2": lambda: seed2_configs(("02",))}[name]()
    store = ResultsStore(results)
    retrain_parents_without_masks(configs, store)
    todo = [c for c in configs if not store.is_complete(c.run_id)]
    print(f"stage {name}: {len(configs)} runs, {len(todo)} to train", flush=True)
    outcomes = run_many(configs, devices=default_devices(), workers_per_device=workers, store=store, progress=False)
    print(f"stage {name}: {tally(outcomes)}", flush=True)


def retrain_parents_without_masks(configs: list, store) -> None:
    """A random-ticket control reads its Lottery Ticket parent's masks m_t, which a restored parent may lack
    (exports before this session kept records only): such a parent is removed so it trains again first."""
    from sparsity_lab.store import StoreError
    from sparsity_lab.store.atomic import remove_tree

    for cfg in configs:
        if not cfg.is_control or store.is_complete(cfg.run_id):
            continue
        parent = cfg.control_parent().run_id
        if not store.is_complete(parent):
            continue
        try:
            store.load_step_tensors(parent, 0)
        except StoreError as err:
            print(f"retrain {parent} (parent of {cfg.run_id}): {err}", flush=True)
            remove_tree(store.run_dir(parent))


def restore(bundle: Path, results: Path) -> None:
    """Import a results bundle (``raw_to_bundle.py`` of an earlier call's export) into ``results``: its runs
    count as complete there (``bundle import`` verifies every member), so the stages skip them."""
    from sparsity_lab.store import ResultsStore
    from sparsity_lab.store.bundle import import_bundle

    print(f"restore: {import_bundle(bundle, ResultsStore(results))}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dense-epochs", default="3,5,10,20")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--stages", default="fig12,seed2-16,seed2-2")
    ap.add_argument("--stage-seconds", default="480", help="one limit, or a comma list per stage")
    ap.add_argument("--workers-per-device", type=int, default=3)
    ap.add_argument("--until", type=float, default=None, help="stop every stage this many seconds after the start")
    ap.add_argument("--restore", default=None, metavar="BUNDLE",
                    help="first import this results bundle (raw_to_bundle.py of an earlier export) into --results, "
                         "so a fresh device does not train its runs again")
    args = ap.parse_args()
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.restore:
        restore(Path(args.restore), Path(args.results))
    epochs = args.epochs or choose_epochs(args.dense_epochs, out)
    names = args.stages.split(",")
    limits = [float(s) for s in args.stage_seconds.split(",")]
    limits += [limits[-1]] * (len(names) - len(limits))
    for name, seconds in zip(names, limits):
        if args.until is not None:
            seconds = min(seconds, args.until - (time.perf_counter() - start))
        if seconds <= 5:
            break
        stage(name, epochs, args.results, seconds, args.workers_per_device)


if __name__ == "__main__":
    main()
