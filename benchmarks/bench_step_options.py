"""The cnn's training step under other compile/cuDNN settings, side by side with today's (issue 21, lever 2).

Variants (all `MaskedTrainer`, CUDA graphs on, channels_last, bf16 autocast; 50 % random masks):
  eager           no torch.compile (EngineOptions compile off)
  compiled        today's compiled step: torch.compile mode 'default', cudnn.benchmark on   <- the baseline
  cudnn_off       compiled, torch.backends.cudnn.benchmark off while compiling and capturing (cuDNN's
                  heuristic algorithm choice instead of autotuned ones, e.g. for the 3-channel first conv)
  coord_descent   compiled with torch._inductor.config.coordinate_descent_tuning = True (tunes the block
                  sizes of the fused Triton kernels: batch norm's statistics/backward reductions, pooling)
  max_autotune    torch.compile mode 'max-autotune-no-cudagraphs' (Triton/ATen template autotuning of the
                  convolutions and matmuls plus coordinate descent); tuned once, results in
                  $TORCHINDUCTOR_CACHE_DIR (set to a fresh folder if unset)

Data (`--data fmnist32`, default): real FashionMNIST put in the CIFAR shape, so the step is exactly the
CIFAR cnn step of the issue (50,000 × 3×32×32, crop+flip augmentation, 200 steps of 250 per epoch) and the
accuracy means something: the 28×28 images zero-padded to 32×32, grey copied to 3 channels, the first
50,000 training images and all 10,000 test images. `--data random` uses bench_engine.py's random images.

Per variant: compile + capture in one warm-up epoch (timed: the one-off cost), then `--seeds` trainings of
`--acc-epochs` epochs (cosine over them, test evaluation after each epoch: the loss/accuracy curves), then
the timing: `--rounds` rounds, each one epoch of every prepared variant in turn (baseline included, so
drift hits all alike; the trainer is restarted before each timed epoch). max_autotune is prepared last and
followed by another timing phase over all variants, so a call that runs out of time still has the rest.
Every variant but the first is compiled after torch._dynamo.reset(). The JSON (`--out`) is rewritten after
every step.

    PYTHONPATH=$PWD SPARSITY_LAB_DATA=$PWD/.devdata python3 benchmarks/bench_step_options.py --out $OUT/step.json
    .venv/bin/python benchmarks/bench_step_options.py --quick --device cpu     # CPU smoke (eager only)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_engine import QUICK_SIZES, SIZES, git_sha, new_model, random_data, random_masks

from sparsity_lab.data import DeviceData, dataset_info, load_dataset
from sparsity_lab.engine.trainer import EngineOptions, MaskedTrainer, TrainSettings

#: name -> (compile on, compile mode, cudnn.benchmark, inductor config overrides)
VARIANTS = {
    "eager": (False, "default", True, {}),
    "compiled": (True, "default", True, {}),
    "cudnn_off": (True, "default", False, {}),
    "coord_descent": (True, "default", True, {"coordinate_descent_tuning": True}),
    "max_autotune": (True, "max-autotune-no-cudagraphs", True, {}),
}
BASELINE = "compiled"
LATE = ("max_autotune",)  # prepared after a first timing phase (long tuning)


def fmnist32(device: torch.device, n_train: int, n_test: int) -> DeviceData:
    """FashionMNIST in the CIFAR shape: 28×28 zero-padded to 32×32, grey copied to 3 channels."""
    fm = load_dataset("fashionmnist", device=device)

    def shape(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()

    return DeviceData(dataset_info("cifar10"), shape(fm.train_x[:n_train]), fm.train_y[:n_train].clone(),
                      shape(fm.test_x[:n_test]), fm.test_y[:n_test].clone(), device=device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    def __init__(self, name: str, data: DeviceData, device: torch.device, epochs: int, batch: int) -> None:
        import torch._dynamo
        import torch._inductor.config as inductor_config

        compiled, mode, benchmark, overrides = VARIANTS[name]
        self.name, self.data, self.device, self.benchmark, self.compiled = name, data, device, benchmark, compiled
        torch._dynamo.reset()
        cuda = device.type == "cuda"
        options = EngineOptions(cuda_graphs="on" if cuda else "off", compile="on" if compiled else "off",
                                compile_mode=mode, cudnn_benchmark=benchmark)
        settings = TrainSettings(batch_size=batch, epochs=epochs).validate()
        torch.backends.cudnn.benchmark = benchmark
        patch = inductor_config.patch(overrides) if overrides else nullcontext()
        try:
            with patch:
                model = new_model("cnn", data, 0)
                self.trainer = MaskedTrainer(model, random_masks(model, 0), data, settings, seed=0, device=device,
                                             options=options)
                sync(device)
                start = time.perf_counter()
                self.trainer.train_epoch()  # compilation (and tuning), cuDNN autotuning, CUDA-graph capture
                sync(device)
                self.first_epoch_seconds = time.perf_counter() - start
        finally:
            torch.backends.cudnn.benchmark = True  # the engine's default for everything after
        self.epoch_seconds: list[float] = []
        self.curves: list[dict] = []

    def restart(self, seed: int) -> None:
        """Seed `seed`'s initial weights (in place) and masks, epoch 0, fresh optimizer state."""
        fresh = new_model("cnn", self.data, seed)
        self.trainer.model.load_state_dict(fresh.state_dict())
        self.trainer.seed = seed
        self.trainer.restart(random_masks(fresh, seed))

    def timed_epoch(self) -> float:
        self.restart(0)
        sync(self.device)
        start = time.perf_counter()
        self.trainer.train_epoch()
        sync(self.device)
        seconds = time.perf_counter() - start
        self.epoch_seconds.append(seconds)
        return seconds

    def accuracy_run(self, seed: int) -> dict:
        self.restart(seed)
        epochs = []
        for _ in range(self.trainer.settings.epochs):
            rec = self.trainer.train_epoch()
            ev = self.trainer.evaluate("test")
            epochs.append({"epoch": rec["epoch"], "loss": rec["loss"], "accuracy": rec["accuracy"],
                           "test_loss": ev["loss"], "test_accuracy": ev["accuracy"], "seconds": rec["seconds"]})
        curve = {"seed": seed, "epochs": epochs, "final_test_accuracy": epochs[-1]["test_accuracy"],
                 "final_loss": epochs[-1]["loss"]}
        self.curves.append(curve)
        return curve

    def record(self, baseline_median: float | None) -> dict:
        med = statistics.median(self.epoch_seconds) if self.epoch_seconds else None
        compiled, mode, benchmark, overrides = VARIANTS[self.name]
        return {"variant": self.name, "compile": compiled, "compile_mode": mode if compiled else None,
                "cudnn_benchmark": benchmark, "inductor_config": overrides,
                "first_epoch_seconds": self.first_epoch_seconds, "epoch_seconds": self.epoch_seconds,
                "median_epoch_seconds": med,
                "ratio_to_baseline": None if med is None or baseline_median is None else med / baseline_median,
                "curves": self.curves,
                "final_test_accuracy_mean": statistics.mean(c["final_test_accuracy"] for c in self.curves)
                if self.curves else None}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ", ".join(VARIANTS))
    ap.add_argument("--data", choices=["fmnist32", "random"], default="fmnist32")
    ap.add_argument("--rounds", type=int, default=5, help="timed epochs per variant per timing phase")
    ap.add_argument("--seeds", type=int, default=2, help="accuracy trainings per variant")
    ap.add_argument("--acc-epochs", type=int, default=15, help="epochs of each accuracy training (cosine over them)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="CPU smoke: tiny data, batch 32, eager and compiled")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.quick:
        args.rounds, args.seeds, args.acc_epochs = 1, 1, 2
        if args.variants == ap.get_default("variants"):
            args.variants = "eager"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-"))
    names = args.variants.split(",")
    for n in names:
        if n not in VARIANTS:
            raise SystemExit(f"--variants: unknown {n!r}; choose from {', '.join(VARIANTS)}")
    n_train, n_test = (QUICK_SIZES if args.quick else SIZES)["cifar10"]
    batch = 32 if args.quick else 250
    try:
        data = fmnist32(device, n_train, n_test) if args.data == "fmnist32" else None
        data_note = "FashionMNIST zero-padded to 3x32x32"
    except Exception as exc:  # noqa: BLE001 - no FashionMNIST files: random images, accuracy meaningless
        data, data_note = None, f"random images (FashionMNIST not loaded: {type(exc).__name__}: {exc})"
        print(data_note, flush=True)
    if data is None:
        data = random_data("cifar10", {"cifar10": (n_train, n_test)}, device)
        data_note = data_note if args.data == "fmnist32" else "random uint8 images (accuracy meaningless)"
    out = Path(args.out or Path(__file__).parent / "results" / f"step-options-{device.type}.json")
    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "git_sha": git_sha(), "command": " ".join(sys.argv), "data": data_note,
              "train_images": n_train, "test_images": n_test, "batch": batch, "acc_epochs": args.acc_epochs,
              "seeds": args.seeds, "rounds": args.rounds, "inductor_cache": os.environ["TORCHINDUCTOR_CACHE_DIR"],
              "baseline": BASELINE, "phases": [], "variants": [], "errors": []}
    ready: dict[str, Variant] = {}

    def write() -> None:
        base = ready.get(BASELINE)
        bmed = statistics.median(base.epoch_seconds) if base and base.epoch_seconds else None
        header["variants"] = [v.record(bmed) for v in ready.values()]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(header, indent=1))

    def prepare(name: str) -> None:
        try:
            v = Variant(name, data, device, args.acc_epochs, batch)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: FAILED to prepare: {type(exc).__name__}: {exc}", flush=True)
            header["errors"].append({"variant": name, "error": repr(exc)})
            write()
            return
        ready[name] = v
        print(f"{name}: first epoch (compile/tune/capture) {v.first_epoch_seconds:.1f} s", flush=True)
        for seed in range(args.seeds):
            c = v.accuracy_run(seed)
            print(f"{name}: seed {seed}: final loss {c['final_loss']:.4f}, test accuracy {c['final_test_accuracy']:.4f}",
                  flush=True)
        write()

    def timing_phase(label: str) -> None:
        phase = {"phase": label, "variants": list(ready), "epoch_seconds": {n: [] for n in ready}}
        for _ in range(args.rounds):
            for n, v in ready.items():
                phase["epoch_seconds"][n].append(v.timed_epoch())
        meds = {n: statistics.median(s) for n, s in phase["epoch_seconds"].items()}
        phase["median_epoch_seconds"] = meds
        phase["ratio_to_baseline"] = {n: m / meds[BASELINE] for n, m in meds.items()} if BASELINE in meds else {}
        header["phases"].append(phase)
        write()
        print(f"\ntiming phase '{label}' ({args.rounds} rounds), {header['device']}:")
        for n, m in meds.items():
            r = phase["ratio_to_baseline"].get(n)
            print(f"  {n:<15}{m:>9.4f} s/epoch" + ("" if r is None else f"  {r:.3f}x of {BASELINE}"), flush=True)

    order = [n for n in names if n == BASELINE] + [n for n in names if n != BASELINE and n not in LATE]
    for n in order:
        prepare(n)
    if ready:
        timing_phase("first")
    late = [n for n in names if n in LATE]
    for n in late:
        prepare(n)
    if late and ready:
        timing_phase("with late variants")
    write()
    print(f"wrote {out}")
    return header


if __name__ == "__main__":
    main()
