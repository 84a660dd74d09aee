"""Time sparsity_lab.measures.sparsity.measure_weights on a ResNet-18-sized model (issue #2).

The model: torchvision resnet18's prunable weights (every *.weight with dim > 1, ≈ 11.7 M entries) filled
with random normal values, under a random 50 % mask. One timed call computes all three scopes (global,
layer, neuron), the full (p, q) PQI grid at the global and layer scopes, Gini and Hoyer, and builds the
tidy records (one host transfer at the end). CUDA timings synchronise before and after each call only.

    python benchmarks/bench_measures.py --device cpu --repeats 5
    python benchmarks/bench_measures.py --device cuda --repeats 50

Targets: ≤ 20 ms median on an H100, ≤ 2 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures.sparsity import SCOPES, measure_weights


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{model or platform.processor() or platform.machine()} ({os.cpu_count()} CPUs)"


def build(device: torch.device, seed: int = 0) -> tuple[dict[str, torch.Tensor], MaskSet]:
    """resnet18's prunable weights (random normal) and a random 50 % mask, on ``device``."""
    model = torchvision.models.resnet18()
    masks = MaskSet.for_model(model)
    g = torch.Generator().manual_seed(seed)
    weights = {n: torch.randn(m.shape, generator=g).to(device) for n, m in masks.items()}
    masks = MaskSet({n: (torch.rand(m.shape, generator=g) < 0.5).to(device) for n, m in masks.items()})
    return weights, masks


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn, device: torch.device, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    weights, masks = build(device)
    kwargs = dict(scopes=SCOPES, grid=True, measures=("pqi", "gini", "hoyer"))
    records = measure_weights(weights, masks, **kwargs)
    times = time_calls(lambda: measure_weights(weights, masks, **kwargs), device, args.warmup, args.repeats)
    result = {
        "benchmark": "measure_weights(resnet18 weights, 50% random mask, scopes=all, grid=True, pqi+gini+hoyer)",
        "device": args.device,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "git_sha": git_sha(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "n_weights": sum(w.numel() for w in weights.values()),
        "n_records": len(records),
        "repeats": args.repeats,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "times_ms": times,
    }
    print(f"measure_weights on {result['n_weights']:,} weights ({result['device_name']}, "
          f"{result['threads']} threads): median {result['median_ms']:.1f} ms, min {result['min_ms']:.1f} ms "
          f"over {args.repeats} repeats ({len(records)} records)")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"measures-{args.device}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
