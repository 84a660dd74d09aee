"""Cost of divergence detection (engine/divergence.py): epoch time with and without the per-step
``finite_steps`` kernels and the per-epoch check, on digits (small batches: launch-bound, the worst case).

    python benchmarks/bench_divergence.py [--device cuda] [--epochs 30] [--repeats 3]

"off" swaps in the step body without the two divergence kernels and skips the per-epoch check.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sparsity_lab.data import load_dataset
from sparsity_lab.engine import steps
from sparsity_lab.engine.trainer import MaskedTrainer, TrainSettings
from sparsity_lab.experiments.common import seeded_model


def epoch_seconds(device: str, epochs: int, check: bool) -> float:
    original_div = steps.StepRunner.divergences
    steps.StepRunner.track_divergence = check
    if not check:
        steps.StepRunner.divergences = lambda self, *args, **kwargs: []
    try:
        data = load_dataset("digits", device=device)
        model = seeded_model("mlp", data.info, 0, torch.device(device))
        trainer = MaskedTrainer(model, None, data, TrainSettings(epochs=epochs, batch_size=32), seed=0, device=device)
        trainer.train_epoch()  # warm-up (graph capture)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(epochs):
            trainer.train_epoch()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / epochs
    finally:
        steps.StepRunner.track_divergence, steps.StepRunner.divergences = True, original_div


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = {"on": [], "off": []}
    for _ in range(args.repeats):
        for mode in ("off", "on"):
            times[mode].append(epoch_seconds(args.device, args.epochs, check=mode == "on"))
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}): "
          f"epoch {off * 1e3:.2f} ms without, {on * 1e3:.2f} ms with divergence detection "
          f"({(on / off - 1) * 100:+.1f}%), 45 steps/epoch, median of {args.repeats}")


if __name__ == "__main__":
    main()
