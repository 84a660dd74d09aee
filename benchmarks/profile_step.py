"""Per-kernel breakdown of the engine's training step (torch.profiler), for benchmarks/README.md.

For each model and variant (eager = the engine without torch.compile, compile = with it), one warm-up
epoch, then `--steps` training steps profiled. CUDA graphs are switched off while profiling so every kernel
is visible by name (the kernels are the same ones a replayed graph runs; graphs remove the launch gaps).
Kernels are summed per category (convolution, batch norm, pooling, element-wise, optimizer, masks and
clipping, augmentation and gathers, loss, copies) and listed individually (top `--top`), in microseconds
per step. Writes JSON (`--out`) with the device, torch version, git sha and command.

    PYTHONPATH=$PWD python3 benchmarks/profile_step.py --models cnn,resnet18 --variants eager,compile
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import torch
from bench_engine import QUICK_SIZES, SHAPES, SIZES, git_sha, new_model, random_data, random_masks
from torch.profiler import ProfilerActivity, profile

from sparsity_lab.engine.trainer import EngineOptions, MaskedTrainer, TrainSettings

#: kernel-name pattern -> category (first match wins; lower-case names)
CATEGORIES = [
    (r"bn_|batch_norm|batchnorm|welford", "batch norm"),
    (r"conv|cudnn|sm\d\d_xmma|implicit_gemm|wgrad|dgrad|nhwc.*kernel|gemm|cutlass|nvjet|sm90", "convolution/matmul"),
    (r"pool", "pooling"),
    (r"fused_sgd|fused_adam|sgd|adam", "optimizer"),
    (r"foreach|norm|clamp|_amp_", "masks + clipping"),
    (r"index|gather|reflection|pad|arange|where", "augmentation + gathers"),
    (r"softmax|nll|cross_entropy|log_softmax", "loss"),
    (r"copy|memcpy|memset|cat", "copies"),
    (r"triton", "fused (triton)"),
    (r"elementwise|vectorized|relu|threshold|add|mul|fill|reduce", "element-wise/reduce"),
]


def category(name: str) -> str:
    low = name.lower()
    return next((label for pattern, label in CATEGORIES if re.search(pattern, low)), "other")


def profile_model(name: str, variant: str, steps: int, device: torch.device, top: int, sizes: dict) -> dict:
    data = random_data(SHAPES[name], sizes, device)
    batch = 250 if sizes is SIZES else 32
    settings = TrainSettings(batch_size=batch, epochs=200).validate()
    model = new_model(name, data, 0)
    trainer = MaskedTrainer(model, random_masks(model, 0), data, settings, seed=0, device=device,
                            options=EngineOptions(cuda_graphs="off", compile="on" if variant == "compile" else "off"))
    trainer.train_epoch()  # warm-up: cuDNN autotuning, compilation
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    indices, gen = trainer._epoch_indices(0)
    draws = trainer.data.epoch_draws(indices, gen) if trainer.augmenting else [() for _ in indices]
    cuda = device.type == "cuda"
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        for idx, drawn in list(zip(indices, draws))[:steps]:
            trainer.runner.step(idx, *drawn)
        if cuda:
            torch.cuda.synchronize(device)
    kernels: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for event in prof.events():
        if str(event.device_type).endswith("CUDA" if cuda else "CPU") and (cuda or not event.cpu_parent):
            kernels[event.name] += event.time_range.elapsed_us() / steps  # microseconds per step
            counts[event.name] += 1
    by_cat: dict[str, float] = defaultdict(float)
    for kernel, us in kernels.items():
        by_cat[category(kernel)] += us
    ranked = sorted(kernels.items(), key=lambda kv: -kv[1])
    return {"model": name, "variant": variant, "steps": steps, "total_us_per_step": sum(kernels.values()),
            "kernels_per_step": sum(counts.values()) / steps,
            "categories_us_per_step": dict(sorted(by_cat.items(), key=lambda kv: -kv[1])),
            "top_kernels_us_per_step": [{"kernel": k[:120], "us": us, "category": category(k)} for k, us in ranked[:top]]}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="cnn,resnet18")
    ap.add_argument("--variants", default="eager,compile")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", default="benchmarks/results/profile-step.json")
    ap.add_argument("--device", default="cuda", help="cuda (kernels) or cpu (top-level ops; a smoke test)")
    ap.add_argument("--sizes", default="full", choices=["full", "quick"], help="quick: tiny random datasets")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__, "git_sha": git_sha(),
              "command": " ".join(sys.argv), "records": []}
    for name in args.models.split(","):
        for variant in args.variants.split(","):
            rec = profile_model(name, variant, args.steps, device, args.top, QUICK_SIZES if args.sizes == "quick" else SIZES)
            header["records"].append(rec)
            print(f"\n{name} {variant}: {rec['total_us_per_step']:.0f} us of kernels per step, "
                  f"{rec['kernels_per_step']:.0f} kernels per step")
            for cat, us in rec["categories_us_per_step"].items():
                print(f"  {cat:<24}{us:>9.1f} us")
            for k in rec["top_kernels_us_per_step"]:
                print(f"    {k['us']:>8.1f} us  {k['category']:<22} {k['kernel'][:90]}")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(header, indent=1))
    return header["records"]


if __name__ == "__main__":
    main()
