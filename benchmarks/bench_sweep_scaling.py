"""Time one sweep on 1 GPU and on all GPUs of the host (issue 12, "Sweeps across the GPUs of one host").

The sweep: SAP (p = 0.5, q = 1) and LT, ``--seeds`` seeds (default 8: 16 configs per model), T = ``--iterations``
(default 3), ``train.epochs`` = E, FashionMNIST, model ``cnn``; seeds are never batched (``--batch-seeds off``).
Each E of ``--epochs`` is its own comparison; each device set of ``--device-sets`` runs the sweep in a FRESH
store, in a fresh Python process that calls ``sweep.run_many`` as ``python -m sparsity_lab sweep`` does, so the
wall time includes interpreter start-up, imports, worker spawn, CUDA contexts and data loading.
Per device, "busy" is the sum of the run times of the jobs it ran over the sweep's wall time.
The JSON (``--out``) is rewritten after every measurement, so a run cut short keeps what it measured.

    PYTHONPATH=$PWD python3 benchmarks/bench_sweep_scaling.py --data $PWD/.devdata --epochs 3,10
    .venv/bin/python benchmarks/bench_sweep_scaling.py --device-sets cpu --dataset digits --models mlp \\
        --iterations 1 --epochs 1 --seeds 1 --out /tmp/s.json                                    # CPU smoke
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:  # as `python -m sparsity_lab sweep` does: start the workers' fork server first,
    from sparsity_lab.sweep import (
        fork_server as worker_start,  # so it imports the package while this process imports its own
    )

    worker_start.warm()

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import device_slug, git_sha  # noqa: E402  (benchmarks/ is not a package)

from sparsity_lab.sweep import costs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def sweep_blocks(models: list[str], dataset: str, iterations: int, epochs: int, seeds: int, train_subset: int,
                 test_subset: int) -> list[dict[str, Any]]:
    """The sweep file's content: one {kind, base, grid} block per model (SAP and LT x seeds)."""
    base: dict[str, Any] = {"dataset": dataset, "iterations": iterations, "train.epochs": epochs}
    base |= {"train_subset": train_subset} if train_subset else {}
    base |= {"test_subset": test_subset} if test_subset else {}
    return [{"kind": "iterative", "base": {**base, "model": m}, "grid": {"method": ["sap", "lt"],
                                                                          "seed": list(range(seeds))}}
            for m in models]


def _child(sweep_file: str, store: str, devices: str, result: str) -> None:
    """In the fresh process: run the sweep on ``devices`` and write every outcome to ``result``."""
    t0 = time.perf_counter()
    from sparsity_lab.sweep.runner import load_sweep_file, run_many

    configs = load_sweep_file(sweep_file)
    t1 = time.perf_counter()
    outcomes = run_many(configs, devices=devices.split(","), store=store, progress=False, batch_seeds=False)
    t2 = time.perf_counter()
    rows = [{"run_id": o.run_id, "status": o.status, "seconds": o.seconds, "device": o.device,
             "training_epochs": costs.training_epochs(o.config), "estimate_s": costs.estimate_seconds(o.config),
             "error": (o.error or "").splitlines()[:1]} for o in outcomes]
    Path(result).write_text(json.dumps({"import_s": t1 - t0, "run_many_s": t2 - t1, "outcomes": rows}))


def measure(sweep_file: Path, devices: list[str], work: Path, data_root: str | None,
            timeout: float | None = None) -> dict[str, Any]:
    """Run ``sweep_file`` on ``devices`` in a fresh store and a fresh process; wall time, outcomes, busy per device."""
    store, result = Path(tempfile.mkdtemp(prefix="store-", dir=work)), work / "result.json"
    result.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env |= {"SPARSITY_LAB_DATA": str(Path(data_root).resolve())} if data_root else {}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(sweep_file), str(store), ",".join(devices),
                             str(result)], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the child and the sweep workers it spawned (its own session)
        log, _ = proc.communicate()
        log += f"\ntimed out after {timeout} s"
    wall = time.perf_counter() - t0
    shutil.rmtree(store, ignore_errors=True)
    if proc.returncode != 0 or not result.is_file():
        tail = log.strip().splitlines()[-5:]
        return {"devices": devices, "wall_s": wall, "error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    child = json.loads(result.read_text())
    rows = child["outcomes"]
    busy = {d: sum(r["seconds"] for r in rows if r["device"] == d) for d in dict.fromkeys(devices)}
    done = [r for r in rows if r["status"] == "done"]
    return {"devices": devices, "wall_s": wall, "import_s": child["import_s"], "run_many_s": child["run_many_s"],
            "runs": len(rows), "done": len(done), "failed": sum(r["status"] == "failed" for r in rows),
            "busy_s": busy, "busy_fraction": {d: s / wall for d, s in busy.items()},
            "estimate_s": sum(r["estimate_s"] for r in rows),
            "run_s_per_epoch": (sum(r["seconds"] for r in done) / max(1, sum(r["training_epochs"] for r in done))),
            "errors": sorted({e for r in rows for e in r["error"]})[:3], "outcomes": rows}


def _row(rec: dict[str, Any], base: float | None) -> str:
    if "error" in rec:
        return f"{len(rec['devices']):>4}  {rec['wall_s']:>7.1f}  FAILED: {rec['error']}"
    busy = " ".join(f"{f:.2f}" for f in rec["busy_fraction"].values())
    speedup = f"{base / rec['wall_s']:.2f}x" if base else "-"
    return (f"{len(rec['devices']):>4}  {rec['wall_s']:>7.1f}  {rec['wall_s'] - rec['run_many_s']:>9.1f}  "
            f"{rec['done']:>3}/{rec['runs']:<3} {speedup:>8}  {rec['run_s_per_epoch']:>9.3f}  {busy}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every (E, device set) measurement, printed as a table and saved to ``args.out`` after each one."""
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    name = torch.cuda.get_device_name(0) if n_gpus else platform.processor() or "cpu"
    sets = [s.split(",") for s in args.device_sets.split(";") if s] if args.device_sets else \
        [["cuda:0"]] + ([[f"cuda:{i}" for i in range(n_gpus)]] if n_gpus > 1 else [])
    out = Path(args.out or Path(__file__).parent / "results" /
               f"sweep-scaling-{device_slug(torch.device('cuda' if n_gpus else 'cpu'))}.json")
    header: dict[str, Any] = {"device": name, "gpu_count": n_gpus, "torch": torch.__version__, "git_sha": git_sha(),
                              "command": shlex.join(["python3", "benchmarks/bench_sweep_scaling.py", *args.argv]),
                              "settings": {k: v for k, v in vars(args).items() if k != "argv"},
                              "estimates_from": costs.describe_source(), "records": []}
    from sparsity_lab.data import ensure_available

    ensure_available(args.dataset, args.data)  # decode and cache the dataset now, not in the first timed sweep
    work = Path(tempfile.mkdtemp(prefix="sweep-scaling-"))
    try:
        for epochs in (int(e) for e in str(args.epochs).split(",")):
            sweep_file = work / f"sweep-E{epochs}.json"
            blocks = sweep_blocks(args.models.split(","), args.dataset, args.iterations, epochs, args.seeds,
                                  args.train_subset, args.test_subset)
            sweep_file.write_text(json.dumps(blocks))
            print(f"\nE = {epochs}: {len(args.models.split(',')) * 2 * args.seeds} configs ({args.models}, "
                  f"{args.dataset}, SAP and LT, T = {args.iterations})\n"
                  f"devs   wall s  startup s  runs    speedup   s/epoch*  busy per device", flush=True)
            base = None
            for devices in sets:
                rec = {"epochs": epochs, "sweep": blocks, **measure(sweep_file, devices, work, args.data, args.timeout)}
                base = base or (rec["wall_s"] if "error" not in rec else None)
                rec["speedup_vs_first"] = base / rec["wall_s"] if base else None
                header["records"].append(rec)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(header, indent=1))
                print(_row(rec, base), flush=True)
        estimates = ", ".join(f"E={r['epochs']}: {r.get('estimate_s', 0):.0f} s" for r in header["records"][::len(sets)])
        print(f"\nstartup s: wall s minus run_many's own time (interpreter, imports; worker spawn is in run_many)\n"
              f"* per run: its seconds / its training epochs (includes evaluation, pruning, data loading)\n"
              f"one-GPU estimate of each sweep from sparsity_lab/sweep/costs.py (no start-up): {estimates}\nJSON: {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return header


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", default="3", help="comma list of E (train.epochs); each is its own comparison")
    ap.add_argument("--models", default="cnn", help="comma list of models (each adds 2 x --seeds configs)")
    ap.add_argument("--dataset", default="fashionmnist")
    ap.add_argument("--iterations", type=int, default=3, help="T, pruning iterations (T + 1 trainings per run)")
    ap.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 per method and model")
    ap.add_argument("--train-subset", type=int, default=0, help="train on this many examples (0 = all)")
    ap.add_argument("--test-subset", type=int, default=0, help="evaluate on this many test examples (0 = all)")
    ap.add_argument("--data", default=None, help="data root (with FashionMNIST/raw); default $SPARSITY_LAB_DATA")
    ap.add_argument("--device-sets", default=None,
                    help='";"-separated device lists, e.g. "cuda:0;cuda:0,cuda:1" or "cpu" '
                         "(default: cuda:0, then all visible GPUs)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per sweep (default: no limit)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/sweep-scaling-<device>.json)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the JSON's command line
    return args


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(*sys.argv[2:])
    else:
        run(parse_args())
