"""Time the masked training engine against a reference-style baseline (see benchmarks/README.md).

Variants (all train the same model under a 50 % random mask, batch 250, SGD-Nesterov + clip 1.0):
  reference  the SAP authors' style: DataLoader (num_workers=0) over a Dataset that turns each uint8 image
             into a PIL image and applies torchvision transforms, fp32, masks kept on the CPU and copied to
             the device and multiplied into the gradients every step, loss.item() every step. Timed over
             --baseline-steps steps and scaled to a full epoch.
  hand       a minimal hand-written device-resident loop on the same DeviceData batches (same AMP as the
             engine: bf16 autocast on CUDA, fp32 on CPU), masks multiplied per parameter, no engine code.
  engine     sparsity_lab.engine.trainer.MaskedTrainer (whole epochs); also reports the one-off costs: first epoch
             (capture, compile), first epoch after restart (next pruning iteration), new model's first epoch.
  engine_perbatch  the engine with augmentation drawn per batch on the host (the engine before issue 12).
  batchedN   sparsity_lab.engine.batched.BatchedTrainer with N members (whole epochs; reported per model-epoch).
--compile / --graphs {off,on,both} run the engine variants with torch.compile and/or CUDA graphs.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from sparsity_lab.data import DeviceData, dataset_info, load_dataset
from sparsity_lab.engine.batched import BatchedTrainer
from sparsity_lab.engine.trainer import EngineOptions, MaskedTrainer, TrainSettings
from sparsity_lab.models import create_model

SHAPES = {"cnn": "cifar10", "resnet18": "cifar10", "mlp": "mnist", "lenet300_100": "mnist"}
SIZES = {"cifar10": (50_000, 10_000), "mnist": (60_000, 10_000)}
QUICK_SIZES = {"cifar10": (256, 256), "mnist": (1_000, 500)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_data(dataset: str, sizes: dict, device: torch.device) -> DeviceData:
    info = dataset_info(dataset)
    n_train, n_test = sizes[dataset]
    g = torch.Generator().manual_seed(0)
    make = lambda n: (torch.randint(0, 256, (n, *info.input_shape), generator=g, dtype=torch.uint8),  # noqa: E731
                      torch.randint(0, info.num_classes, (n,), generator=g))
    (tx, ty), (vx, vy) = make(n_train), make(n_test)
    return DeviceData(info, tx.to(device), ty.to(device), vx.to(device), vy.to(device), device=device)


def random_masks(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """50 % random masks on every prunable *.weight with dim > 1 (docs/methods.md §2)."""
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) < 0.5 for n, p in model.named_parameters()
            if n.endswith("weight") and p.dim() > 1}


def new_model(name: str, data: DeviceData, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, data.info)


# ---------------------------------------------------------------------------------------------- reference
class PILImages(Dataset):
    """uint8 images -> PIL -> torchvision transforms, one image at a time (the reference's data path)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.x = x.permute(0, 2, 3, 1).numpy()
        self.y = y.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i]
        img = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        return self.transform(img), int(self.y[i])


def reference_seconds(name: str, data: DeviceData, settings: TrainSettings, device: torch.device,
                      steps: int) -> float:
    info = data.info
    tf = [transforms.ToTensor(), transforms.Normalize(info.mean, info.std)]
    if info.augment == "crop_flip":
        tf = [transforms.RandomCrop(info.input_shape[-1], padding=4, padding_mode="reflect"),
              transforms.RandomHorizontalFlip(), *tf]
    ds = PILImages(data.train_x.cpu(), data.train_y.cpu(), transforms.Compose(tf))
    loader = DataLoader(ds, batch_size=settings.batch_size, shuffle=True, num_workers=0)
    model = new_model(name, data, 0).to(device)
    masks = random_masks(model, 0)  # stay on the CPU
    opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                          nesterov=settings.nesterov, weight_decay=settings.weight_decay)
    model.train()
    it = iter(loader)
    warm = 2
    for step in range(warm + steps):
        if step == warm:
            sync(device)
            start = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:  # tiny (--quick) datasets: start another pass
            it = iter(loader)
            x, y = next(it)
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        for n, p in model.named_parameters():
            if n in masks:
                p.grad.mul_(masks[n].to(device))
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        loss.item()
    sync(device)
    per_step = (time.perf_counter() - start) / steps
    return per_step * len(loader)


# ---------------------------------------------------------------------------------------------- hand loop
class HandLoop:
    """The minimal device-resident loop: same DeviceData batches and AMP as the engine, no engine code."""

    def __init__(self, name: str, data: DeviceData, settings: TrainSettings, device: torch.device) -> None:
        self.model = new_model(name, data, 0).to(device)
        self.masks = {k: v.to(device) for k, v in random_masks(self.model, 0).items()}
        self.params = dict(self.model.named_parameters())
        self.opt = torch.optim.SGD(self.model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                   nesterov=settings.nesterov, weight_decay=settings.weight_decay)
        self.data, self.settings, self.device, self.epoch = data, settings, device, 0

    def train_epoch(self) -> float:
        data, model, device = self.data, self.model, self.device
        total = torch.zeros((), device=device)
        gen = data.epoch_generator(0, self.epoch)
        for idx in data.batch_indices("train", self.settings.batch_size, shuffle=True, generator=gen):
            x, y = data.get_batch("train", idx, augment=True, generator=gen)
            self.opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            with torch.no_grad():
                for k, m in self.masks.items():
                    self.params[k].grad.mul_(m)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.settings.grad_clip)
            self.opt.step()
            with torch.no_grad():
                for k, m in self.masks.items():
                    self.params[k].mul_(m)
                total += loss.detach()
        self.epoch += 1
        return total.item()


def timed_epochs(trainer, device: torch.device, epochs: int, warmup: int) -> list[float]:
    times = []
    for epoch in range(warmup + epochs):
        sync(device)
        start = time.perf_counter()
        trainer.train_epoch()
        sync(device)
        if epoch >= warmup:
            times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------------------------------- engines
def engine_epochs(name: str, data: DeviceData, settings: TrainSettings, device: torch.device, members: int,
                  options: EngineOptions, epochs: int, warmup: int) -> tuple[list[float], float, dict]:
    """Timed epochs, one evaluation pass, and for a single model the one-off costs: the first epoch (capture,
    compilation), the first epoch after `restart` (the next pruning iteration of a run) and the first epoch
    of a new trainer on a new model of the same architecture (the next run in a persistent worker)."""
    models = [new_model(name, data, i) for i in range(max(members, 1))]
    masks = [random_masks(m, i) for i, m in enumerate(models)]
    if members == 0:
        trainer = MaskedTrainer(models[0], masks[0], data, settings, seed=0, device=device, options=options)
    else:
        trainer = BatchedTrainer(models, masks, data, settings, seeds=list(range(members)), device=device,
                                 options=options)
    first = timed_epochs(trainer, device, 1, 0)[0]
    times = timed_epochs(trainer, device, epochs, max(warmup - 1, 0))
    trainer.evaluate()  # warm the eval path, then time one pass over the test split
    sync(device)
    start = time.perf_counter()
    trainer.evaluate()
    sync(device)
    eval_s = time.perf_counter() - start
    once = {"first_epoch_seconds": first}
    if members == 0:
        trainer.restart(random_masks(models[0], 1))
        once["restart_first_epoch_seconds"] = timed_epochs(trainer, device, 1, 0)[0]
        model = new_model(name, data, 7)
        other = MaskedTrainer(model, random_masks(model, 7), data, settings, seed=7, device=device, options=options)
        once["new_model_first_epoch_seconds"] = timed_epochs(other, device, 1, 0)[0]
    return times, eval_s, once


def paired(name: str, data: DeviceData, settings: TrainSettings, device: torch.device, options: EngineOptions,
           repeats: int, warmup: int) -> dict:
    """Alternate hand-loop and engine epochs (fair on a shared, noisy CPU); median per-pair time ratio."""
    hand = HandLoop(name, data, settings, device)
    engine = MaskedTrainer(new_model(name, data, 0), random_masks(new_model(name, data, 0), 0), data, settings,
                           seed=0, device=device, options=options)
    timed_epochs(hand, device, 0, warmup)
    timed_epochs(engine, device, 0, warmup)
    pairs = [(timed_epochs(hand, device, 1, 0)[0], timed_epochs(engine, device, 1, 0)[0]) for _ in range(repeats)]
    return {"model": name, "variant": "paired hand/engine", "hand_seconds": [h for h, _ in pairs],
            "engine_seconds": [e for _, e in pairs],
            "hand_median": statistics.median(h for h, _ in pairs),
            "engine_median": statistics.median(e for _, e in pairs),
            "engine_over_hand_median_ratio": statistics.median(e / h for h, e in pairs)}


# ---------------------------------------------------------------------------------------------- driver
def device_slug(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


#: engine variants -> MaskedTrainer.draw_epoch_up_front: "engine" is today's engine; "engine_perbatch" draws
#: each batch's augmentation on the host inside the loop, as the engine did before issue 12.
ENGINE_VARIANTS = {"engine": True, "engine_perbatch": False}


def compile_label(on: bool, mode: str, modes: list[str]) -> str:
    if not on:
        return ""
    return "+compile" if len(modes) == 1 and mode == "default" else f"+compile({mode})"


def switch(value: str) -> list[bool]:
    return {"off": [False], "on": [True], "both": [False, True]}[value]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None,
                    help="comma list of " + ",".join(SHAPES) + " (default: all; with --quick: mlp,cnn)")
    ap.add_argument("--variants", default=None,
                    help="comma list of reference, hand, engine, batched<N> (default: reference,hand,engine,batched4,"
                         "batched16; with --quick: without batched16)")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs first (compile/capture happen here)")
    ap.add_argument("--baseline-steps", type=int, default=50, help="timed steps of the reference, scaled to an epoch")
    ap.add_argument("--compile", choices=["off", "on", "both"], default="off", help="torch.compile for engine variants")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode(s), comma list (EngineOptions.compile_mode)")
    ap.add_argument("--graphs", choices=["off", "on", "both"], default=None,
                    help="CUDA graphs for engine variants (default: on for CUDA, off for CPU)")
    ap.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--optimizer-impl", choices=["auto", "fused", "foreach", "loop"], default="auto")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--paired", action="store_true",
                    help="only alternate hand-loop and engine epochs per model and report engine/hand ratios")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU timing)")
    ap.add_argument("--mnist-data", default="random",
                    help="MNIST-shaped data: 'random' (uint8 noise) or a dataset name such as fashionmnist or mnist")
    ap.add_argument("--quick", action="store_true", help="tiny datasets, 1 repeat, few reference steps (CPU smoke)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/engine-<device>.json)")
    args = ap.parse_args(argv)
    args.variants = args.variants or ("reference,hand,engine,batched4" + ("" if args.quick else ",batched16"))
    args.models = args.models or ("mlp,cnn" if args.quick else "cnn,resnet18,mlp,lenet300_100")
    args.graphs = args.graphs or ("on" if str(args.device).startswith("cuda") else "off")
    if args.quick:
        args.repeats, args.baseline_steps = min(args.repeats, 1), min(args.baseline_steps, 3)
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(batch_size=250, epochs=200).validate()
    sizes = QUICK_SIZES if args.quick else SIZES
    out = Path(args.out or Path(__file__).parent / "results" / f"engine-{device_slug(device)}.json")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    header = {"device": name, "mnist_data": args.mnist_data, "torch": torch.__version__, "git_sha": git_sha(), "command": " ".join(sys.argv),
              "threads": torch.get_num_threads(), "sizes": sizes, "records": []}
    datasets: dict[str, DeviceData] = {}
    print(f"{'model':<13}{'variant':<28}{'s/model-epoch':>14}{'speedup_vs_ref':>16}{'model-epochs/s':>16}"
          f"{'eval_s':>9}", flush=True)
    for name in args.models.split(","):
        ds = SHAPES[name]
        if ds not in datasets:  # keep one dataset in memory at a time
            real = ds == "mnist" and args.mnist_data != "random"
            datasets = {ds: load_dataset(args.mnist_data, device=device) if real else random_data(ds, sizes, device)}
        data = datasets[ds]
        if args.paired:
            rec = paired(name, data, settings, device, EngineOptions(compile="off",
                cuda_graphs="on" if args.graphs == "on" else "off", channels_last=args.channels_last,
                optimizer_impl=args.optimizer_impl), args.repeats, args.warmup)
            header["records"].append(rec)
            print(f"{name:<13}hand {rec['hand_median']:.4f} s, engine {rec['engine_median']:.4f} s, "
                  f"engine/hand per pair (median) {rec['engine_over_hand_median_ratio']:.3f}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(header, indent=1))
            continue
        ref = None
        for variant in args.variants.split(","):
            runs = [(variant, None)]
            if variant in ENGINE_VARIANTS or variant.startswith("batched"):
                modes = args.compile_mode.split(",")
                runs = [(f"{variant}{compile_label(c, mode, modes)}{'+graphs' if g else ''}",
                         EngineOptions(cuda_graphs="on" if g else "off", compile_mode=mode, compile="on" if c else "off",
                                       channels_last=args.channels_last, optimizer_impl=args.optimizer_impl), c)
                        for c in (switch(args.compile) if variant != "engine_perbatch" else [False])
                        for mode in (modes if c else modes[:1])
                        for g in switch(args.graphs)]
            for run in runs:
                label, members, eval_s, epochs_s, once = run[0], 1, None, None, {}
                try:
                    if variant == "reference":
                        epochs_s = [reference_seconds(name, data, settings, device, args.baseline_steps)]
                    elif variant == "hand":
                        epochs_s = timed_epochs(HandLoop(name, data, settings, device), device, args.repeats,
                                                args.warmup)
                    elif variant in ENGINE_VARIANTS or variant.startswith("batched"):
                        members = 0 if variant in ENGINE_VARIANTS else int(variant.removeprefix("batched"))
                        s = TrainSettings(batch_size=250, epochs=200).validate()  # run[1] says compile on/off
                        MaskedTrainer.draw_epoch_up_front = ENGINE_VARIANTS.get(variant, True)
                        try:
                            epochs_s, eval_s, once = engine_epochs(name, data, s, device, members, run[1],
                                                                   args.repeats, args.warmup)
                        finally:
                            MaskedTrainer.draw_epoch_up_front = True
                    else:
                        raise ValueError(f"unknown variant {variant!r}")
                except Exception as exc:  # report and continue with the other variants
                    print(f"{name:<13}{label:<28} FAILED: {type(exc).__name__}: {exc}", flush=True)
                    header["records"].append({"model": name, "variant": label, "error": repr(exc)})
                    continue
                median = statistics.median(epochs_s) / max(members, 1)
                ref = median if variant == "reference" else ref
                rec = {"model": name, "variant": label, "members": max(members, 1), "epoch_seconds": epochs_s,
                       "seconds_per_model_epoch": median, "speedup_vs_reference": None if ref is None else ref / median,
                       "model_epochs_per_second": 1.0 / median, "eval_seconds": eval_s,
                       "reference_steps": args.baseline_steps if variant == "reference" else None, **once}
                header["records"].append(rec)
                sp = "-" if ref is None else f"{ref / median:.1f}x"
                ev = "-" if eval_s is None else f"{eval_s:.3f}"
                first = "".join(f" {k.removesuffix('_seconds')}={v:.2f}s" for k, v in once.items())
                print(f"{name:<13}{label:<28}{median:>14.4f}{sp:>16}{1 / median:>16.2f}{ev:>9}{first}", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(header, indent=1))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    print(f"wrote {out}")
    return header["records"]


if __name__ == "__main__":
    main()
