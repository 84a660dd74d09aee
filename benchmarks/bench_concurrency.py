"""Several trainings on one GPU at once (issue 21, lever 1): aggregate model-epochs/s for K = 1, 2, 4, 8.

Each measurement trains K engine trainings (`MaskedTrainer`, the same random-data CIFAR-shaped setup and
50 % random masks as bench_engine.py, batch 250, SGD-Nesterov + clip 1.0) at the same time, N timed epochs
each, and reports the aggregate rate K*N / (last end - first start) and its ratio to K = 1 of the same
kind in the same run. Two kinds:

  processes  K worker processes (spawned Python processes, one CUDA context each). A pool of max(K)
             workers is started and warmed once per (model, mode, MPS on/off): each builds its own data,
             model and trainer and trains `--warmup` untimed epochs (compilation, cuDNN autotuning, CUDA-
             graph capture happen there). A measurement then tells the first K workers to start at the same
             wall-clock instant (a start time 0.5 s ahead: the barrier) and to train N epochs; the other
             workers stay idle (no kernels queued). With `--mps on` the CUDA MPS control daemon is started
             before the pool (CUDA_MPS_PIPE_DIRECTORY / CUDA_MPS_LOG_DIRECTORY in temp dirs, which the
             workers inherit) and stopped after it; without MPS the contexts' kernels take turns (time
             slicing).
  streams    K trainers in ONE process, each issuing its epoch's steps on its own torch.cuda.Stream,
             interleaved step by step from one Python thread (trainer 1 step i, trainer 2 step i, ...). With
             CUDA graphs (the engine's default on CUDA) each step is one graph replay on that stream. This
             mirrors MaskedTrainer.train_epoch (augmentation drawn up front per epoch, batches built inside
             the step); if it fails with graphs on, the row is retried with graphs off and says so.

Modes: `eager` (EngineOptions compile off, CUDA graphs on) and `compiled` (torch.compile mode default,
CUDA graphs on: today's compiled step). `--configs` takes model:mode pairs, e.g. cnn:eager,cnn:compiled,
resnet18:compiled. The JSON (`--out`; device name, torch version, git sha, command, every row and a summary
of medians and ratios) is rewritten after every measurement. The parent process never touches CUDA.

    .venv/bin/python benchmarks/bench_concurrency.py --quick --device cpu          # smoke test on the CPU
    PYTHONPATH=$PWD python3 benchmarks/bench_concurrency.py --configs cnn:eager,cnn:compiled --mps both \\
        --out $OUT/concurrency-cnn.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from bench_engine import SHAPES, SIZES, git_sha, new_model, random_data, random_masks

from sparsity_lab.engine.trainer import EngineOptions, MaskedTrainer, TrainSettings

QUICK_SIZES = {"cifar10": (64, 64)}
MODES = ("eager", "compiled")


# ---------------------------------------------------------------------------------------------- trainers
def make_trainer(model_name: str, mode: str, seed: int, data, device: torch.device, batch: int,
                 graphs: bool | None = None) -> MaskedTrainer:
    model = new_model(model_name, data, seed)
    cuda = device.type == "cuda"
    graphs = cuda if graphs is None else graphs
    options = EngineOptions(cuda_graphs="on" if graphs else "off", compile="on" if mode == "compiled" else "off")
    settings = TrainSettings(batch_size=batch, epochs=200).validate()
    return MaskedTrainer(model, random_masks(model, seed), data, settings, seed=seed, device=device, options=options)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"


def worker_setup(cfg: dict) -> tuple[torch.device, object]:
    torch.set_num_threads(cfg["threads"])
    device = torch.device(cfg["device"])
    sizes = QUICK_SIZES if cfg["quick"] else SIZES
    return device, random_data(SHAPES[cfg["model"]], sizes, device)


# ---------------------------------------------------------------------------------------------- processes
def process_worker(rank: int, cfg: dict, commands, results) -> None:
    """One training in its own process: warm up, report ready, then run timed bursts on command."""
    try:
        device, data = worker_setup(cfg)
        trainer = make_trainer(cfg["model"], cfg["mode"], rank, data, device, cfg["batch"])
        start = time.perf_counter()
        for _ in range(cfg["warmup"]):
            trainer.train_epoch()
        sync(device)
        results.put({"rank": rank, "ready": True, "device": device_name(device), "pid": os.getpid(),
                     "warmup_seconds": time.perf_counter() - start})
        while True:
            message = commands.get()
            if message is None:
                break
            epochs, start_at = message
            sync(device)
            while time.time() < start_at:
                time.sleep(0.0002)
            t0 = time.time()
            times, record = [], {}
            for _ in range(epochs):
                s = time.perf_counter()
                record = trainer.train_epoch()  # reads loss/accuracy back once per epoch (syncs)
                sync(device)
                times.append(time.perf_counter() - s)
            t1 = time.time()
            results.put({"rank": rank, "t0": t0, "t1": t1, "epoch_seconds": times, "loss": record.get("loss")})
    except Exception:  # noqa: BLE001 - report to the parent, which records the failure
        results.put({"rank": rank, "error": traceback.format_exc()})


class Pool:
    """max(K) warmed worker processes of one (model, mode); the first K run each measurement together."""

    def __init__(self, cfg: dict, size: int, timeout: float) -> None:
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(size)]
        self.procs = [ctx.Process(target=process_worker, args=(r, cfg, self.commands[r], self.results), daemon=True)
                      for r in range(size)]
        self.timeout = timeout
        started = time.perf_counter()
        for p in self.procs:
            p.start()
        self.ready = self._collect(size)
        self.startup_seconds = time.perf_counter() - started

    def _collect(self, n: int) -> list[dict]:
        out = []
        deadline = time.monotonic() + self.timeout
        while len(out) < n:
            try:
                msg = self.results.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{n - len(out)} of {n} workers did not answer within {self.timeout:.0f} s") from None
            if "error" in msg:
                raise RuntimeError(f"worker {msg['rank']} failed:\n{msg['error']}")
            out.append(msg)
        return out

    def burst(self, k: int, epochs: int) -> list[dict]:
        start_at = time.time() + 0.5  # the barrier: every worker starts at this instant
        for r in range(k):
            self.commands[r].put((epochs, start_at))
        return sorted(self._collect(k), key=lambda m: m["rank"])

    def close(self) -> None:
        for q in self.commands:
            with contextlib.suppress(Exception):
                q.put(None)
        for p in self.procs:
            p.join(timeout=20)
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)


# ---------------------------------------------------------------------------------------------- streams
def interleaved_epochs(trainers: list[MaskedTrainer], streams: list, epochs: int) -> list[float]:
    """`epochs` epochs of every trainer, each on its own stream, steps interleaved from this thread.

    Mirrors MaskedTrainer.train_epoch for datasets with augmentation drawn up front (CIFAR shapes)."""
    losses = []

    def on(i: int):
        return torch.cuda.stream(streams[i]) if streams[i] is not None else contextlib.nullcontext()

    for _ in range(epochs):
        plans = []
        for i, tr in enumerate(trainers):
            with on(i):
                tr.model.train()
                tr._begin_epoch()
                indices, gen = tr._epoch_indices(tr.seed)
                if tr.augmenting and tr.draw_epoch_up_front:
                    draws = tr.data.epoch_draws(indices, gen)
                    plans.append([(idx, *d) for idx, d in zip(indices, draws)])
                elif not tr.augmenting:
                    plans.append([(idx,) for idx in indices])
                else:
                    raise RuntimeError("interleaved_epochs needs augmentation drawn up front (the engine's default)")
        for step in range(max(len(p) for p in plans)):
            for i, tr in enumerate(trainers):
                if step < len(plans[i]):
                    with on(i):
                        tr.runner.step(*plans[i][step])
        for i, tr in enumerate(trainers):
            with on(i):
                loss, _ = tr.runner.end_epoch(tr.data.num_examples("train"))
                tr._check_finite()
                tr.epoch += 1
                losses.append(loss)
    return losses


def streams_worker(cfg: dict, ks: list[int], repeats: int, epochs: int, results) -> None:
    """Every streams measurement of one (model, mode) in this one process."""
    try:
        device, data = worker_setup(cfg)
        graphs = cfg.get("graphs")
        trainers = [make_trainer(cfg["model"], cfg["mode"], r, data, device, cfg["batch"], graphs)
                    for r in range(max(ks))]
        start = time.perf_counter()
        for tr in trainers:
            for _ in range(cfg["warmup"]):
                tr.train_epoch()
        sync(device)
        streams = [torch.cuda.Stream(device) if device.type == "cuda" else None for _ in trainers]
        interleaved_epochs(trainers, streams, 1)  # untimed: first replays on the side streams
        sync(device)
        results.put({"ready": True, "device": device_name(device), "warmup_seconds": time.perf_counter() - start,
                     "graphs": trainers[0].graphs})
        for rep in range(repeats):
            for k in ks:
                sync(device)
                t0 = time.perf_counter()
                losses = interleaved_epochs(trainers[:k], streams[:k], epochs)
                sync(device)
                results.put({"k": k, "repeat": rep, "seconds": time.perf_counter() - t0, "loss": losses[-1]})
        results.put({"done": True})
    except Exception:  # noqa: BLE001
        results.put({"error": traceback.format_exc()})


# ---------------------------------------------------------------------------------------------- MPS
class MPSDaemon:
    """Start/stop the CUDA MPS control daemon with private pipe/log directories (root GPU hosts)."""

    VARS = ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.note = ""

    def start(self) -> bool:
        exe = shutil.which("nvidia-cuda-mps-control")
        if exe is None:
            self.note = "MPS: nvidia-cuda-mps-control not found on this host; skipping the MPS rows"
        elif hasattr(os, "geteuid") and os.geteuid() != 0:
            self.note = "MPS: not root, cannot start the MPS control daemon; skipping the MPS rows"
        else:
            self.env = {"CUDA_MPS_PIPE_DIRECTORY": tempfile.mkdtemp(prefix="mps-pipe-"),
                        "CUDA_MPS_LOG_DIRECTORY": tempfile.mkdtemp(prefix="mps-log-")}
            try:
                r = subprocess.run([exe, "-d"], env={**os.environ, **self.env}, capture_output=True, text=True,
                                   timeout=30)
                ok = r.returncode == 0
                why = (r.stderr or r.stdout).strip().splitlines()[-1:] if not ok else []
            except (OSError, subprocess.SubprocessError) as exc:
                ok, why = False, [repr(exc)]
            if ok:
                time.sleep(0.5)
                os.environ.update(self.env)  # the spawned workers inherit these and connect through MPS
                self.note = f"MPS: control daemon started (pipe dir {self.env['CUDA_MPS_PIPE_DIRECTORY']})"
                print(self.note, flush=True)
                return True
            self.note = f"MPS: the control daemon did not start ({' '.join(why) or 'no message'}); skipping the MPS rows"
        print(self.note, flush=True)
        return False

    def query(self, command: str) -> str:
        try:
            r = subprocess.run(["nvidia-cuda-mps-control"], input=command + "\n", env={**os.environ, **self.env},
                               capture_output=True, text=True, timeout=20)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.SubprocessError) as exc:
            return repr(exc)

    def stop(self) -> str:
        out = self.query("quit")
        time.sleep(1.0)
        for var in self.VARS:
            os.environ.pop(var, None)
        log = Path(self.env.get("CUDA_MPS_LOG_DIRECTORY", "/nonexistent")) / "control.log"
        tail = log.read_text(errors="replace").splitlines()[-6:] if log.exists() else []
        print(f"MPS: control daemon stopped ({out or 'ok'})", flush=True)
        return "\n".join(tail)


# ---------------------------------------------------------------------------------------------- driver
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="cnn:eager,cnn:compiled,resnet18:compiled",
                    help="comma list of model:mode (models cnn, resnet18; modes eager, compiled)")
    ap.add_argument("--kinds", default="processes,streams", help="comma list of processes, streams")
    ap.add_argument("--mps", choices=["off", "on", "both"], default="both", help="MPS for the processes kind")
    ap.add_argument("--ks", default="1,2,4,8", help="numbers of concurrent trainings")
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per training per measurement")
    ap.add_argument("--repeats", type=int, default=2, help="measurements per K (median reported), K order interleaved")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs per training first")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per worker (default cores / max K)")
    ap.add_argument("--timeout", type=float, default=400, help="seconds to wait for a pool's start or a measurement")
    ap.add_argument("--deadline", type=float, default=None,
                    help="skip further groups once this many seconds have passed since the start")
    ap.add_argument("--quick", action="store_true", help="CPU smoke: 64 images, batch 32, K = 1, 2, 1 epoch")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/concurrency-<device>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.ks = "1,2" if args.ks == "1,2,4,8" else args.ks
        args.epochs, args.repeats, args.warmup = 1, 1, 1
        args.configs = "cnn:eager" if args.configs == ap.get_default("configs") else args.configs
    return args


def summarise(rows: list[dict]) -> list[dict]:
    """Median aggregate rate per (model, mode, kind, mps, k); ratios to K = 1 of the same group and to
    processes without MPS at K = 1 (the plain one-training-per-GPU baseline)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if "aggregate_model_epochs_per_s" in r:
            key = (r["model"], r["mode"], r["kind"], r["mps"], r["k"])
            groups.setdefault(key, []).append(r["aggregate_model_epochs_per_s"])
    med = {key: statistics.median(v) for key, v in groups.items()}
    out = []
    for (model, mode, kind, mps, k), m in med.items():
        own = med.get((model, mode, kind, mps, 1))
        base = med.get((model, mode, "processes", False, 1))
        out.append({"model": model, "mode": mode, "kind": kind, "mps": mps, "k": k, "measurements": len(groups[
            (model, mode, kind, mps, k)]), "median_model_epochs_per_s": m,
            "median_seconds_per_model_epoch": 1.0 / m,
            "ratio_to_k1_same_kind": None if own is None else m / own,
            "ratio_to_k1_processes_no_mps": None if base is None else m / base})
    return out


def print_summary(summary: list[dict]) -> None:
    print(f"\n{'model':<10}{'mode':<10}{'kind':<11}{'mps':<5}{'K':>3}{'model-epochs/s':>16}{'vs K=1':>8}"
          f"{'vs 1 proc':>10}")
    for s in summary:
        f = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
        print(f"{s['model']:<10}{s['mode']:<10}{s['kind']:<11}{'on' if s['mps'] else 'off':<5}{s['k']:>3}"
              f"{s['median_model_epochs_per_s']:>16.2f}{f(s['ratio_to_k1_same_kind']):>8}"
              f"{f(s['ratio_to_k1_processes_no_mps']):>10}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t_start = time.monotonic()
    ks = [int(k) for k in args.ks.split(",")]
    kinds = args.kinds.split(",")
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    for model, mode in configs:
        if model not in SHAPES or SHAPES[model] != "cifar10" or mode not in MODES:
            raise SystemExit(f"--configs: {model}:{mode} is not one of cnn|resnet18 : eager|compiled")
    cuda = args.device.startswith("cuda")
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores // max(ks))
    # compile workers per process: the cores shared by max(K) compiling processes; one inductor cache for all
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(max(1, cores // max(ks))))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-"))
    out = Path(args.out or Path(__file__).parent / "results" / f"concurrency-{'cuda' if cuda else 'cpu'}.json")
    header = {"device": None, "torch": torch.__version__, "git_sha": git_sha(), "command": " ".join(sys.argv),
              "host_cores": cores, "threads_per_worker": threads, "ks": ks, "epochs": args.epochs,
              "repeats": args.repeats, "warmup": args.warmup, "batch": 32 if args.quick else 250,
              "sizes": QUICK_SIZES if args.quick else SIZES, "notes": [], "rows": [], "summary": []}

    def write() -> None:
        header["summary"] = summarise(header["rows"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(header, indent=1))

    def base_cfg(model: str, mode: str) -> dict:
        return {"model": model, "mode": mode, "device": args.device, "quick": args.quick, "threads": threads,
                "warmup": args.warmup, "batch": header["batch"]}

    def over_deadline(what: str) -> bool:
        if args.deadline is not None and time.monotonic() - t_start > args.deadline:
            note = f"skipped {what}: past --deadline {args.deadline:.0f} s"
            print(note, flush=True)
            header["notes"].append(note)
            write()
            return True
        return False

    def run_pool(model: str, mode: str, mps: bool) -> None:
        label = f"{model}:{mode} processes mps={'on' if mps else 'off'}"
        try:
            pool = Pool(base_cfg(model, mode), max(ks), args.timeout)
        except Exception as exc:  # noqa: BLE001
            print(f"{label}: pool FAILED: {exc}", flush=True)
            header["rows"].append({"model": model, "mode": mode, "kind": "processes", "mps": mps, "error": str(exc)})
            write()
            return
        header["device"] = header["device"] or pool.ready[0]["device"]
        extra = {}
        if mps:
            extra["mps_server_list"] = daemon.query("get_server_list")
        print(f"{label}: {len(pool.ready)} workers ready in {pool.startup_seconds:.1f} s "
              f"(warm-up {statistics.median(m['warmup_seconds'] for m in pool.ready):.1f} s each){' ' if extra else ''}"
              f"{'MPS servers: ' + extra['mps_server_list'] if extra else ''}", flush=True)
        try:
            for rep in range(args.repeats):
                for k in ks:
                    got = pool.burst(k, args.epochs)
                    span = max(g["t1"] for g in got) - min(g["t0"] for g in got)
                    rate = k * args.epochs / span
                    epoch_s = [t for g in got for t in g["epoch_seconds"]]
                    row = {"model": model, "mode": mode, "kind": "processes", "mps": mps, "k": k, "repeat": rep,
                           "span_seconds": span, "aggregate_model_epochs_per_s": rate,
                           "start_skew_seconds": max(g["t0"] for g in got) - min(g["t0"] for g in got),
                           "median_epoch_seconds": statistics.median(epoch_s),
                           "epoch_seconds": [g["epoch_seconds"] for g in got], "last_loss": [g["loss"] for g in got],
                           "pool_startup_seconds": pool.startup_seconds, **extra}
                    header["rows"].append(row)
                    print(f"{label} K={k} rep={rep}: {rate:.2f} model-epochs/s (span {span:.2f} s, epoch "
                          f"{row['median_epoch_seconds']:.3f} s median)", flush=True)
                    write()
        except Exception as exc:  # noqa: BLE001
            print(f"{label}: FAILED: {exc}", flush=True)
            header["rows"].append({"model": model, "mode": mode, "kind": "processes", "mps": mps, "error": str(exc)})
            write()
        finally:
            pool.close()

    def run_streams(model: str, mode: str, graphs: bool | None) -> bool:
        label = f"{model}:{mode} streams graphs={'default' if graphs is None else graphs}"
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        cfg = {**base_cfg(model, mode), "graphs": graphs}
        proc = ctx.Process(target=streams_worker, args=(cfg, ks, args.repeats, args.epochs, results), daemon=True)
        proc.start()
        ok = True
        try:
            used_graphs = None
            while True:
                msg = results.get(timeout=args.timeout)
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                if msg.get("done"):
                    break
                if msg.get("ready"):
                    header["device"] = header["device"] or msg["device"]
                    used_graphs = msg["graphs"]
                    print(f"{label}: {max(ks)} trainers ready (warm-up {msg['warmup_seconds']:.1f} s, "
                          f"CUDA graphs {'on' if used_graphs else 'off'})", flush=True)
                    continue
                k = msg["k"]
                rate = k * args.epochs / msg["seconds"]
                row = {"model": model, "mode": mode, "kind": "streams", "mps": False, "k": k, "repeat": msg["repeat"],
                       "span_seconds": msg["seconds"], "aggregate_model_epochs_per_s": rate, "cuda_graphs": used_graphs,
                       "last_loss": msg["loss"]}
                header["rows"].append(row)
                print(f"{label} K={k} rep={msg['repeat']}: {rate:.2f} model-epochs/s (span {msg['seconds']:.2f} s)",
                      flush=True)
                write()
        except Exception as exc:  # noqa: BLE001
            ok = False
            text = str(exc).strip().splitlines()
            print(f"{label}: FAILED: {text[-1] if text else repr(exc)}", flush=True)
            header["rows"].append({"model": model, "mode": mode, "kind": "streams", "mps": False,
                                   "cuda_graphs": graphs, "error": str(exc)})
            write()
        finally:
            proc.join(timeout=20)
            if proc.is_alive():
                proc.terminate()
        return ok

    daemon = MPSDaemon()
    mps_settings = {"off": [False], "on": [True], "both": [False, True]}[args.mps] if cuda else [False]
    if not cuda and args.mps != "off":
        header["notes"].append("MPS rows skipped: not a CUDA device")
        print("MPS: not a CUDA device; skipping the MPS rows", flush=True)
    for model, mode in configs:
        if "processes" in kinds:
            for mps in mps_settings:
                if mps:
                    continue  # after the streams rows: the MPS daemon must not be running for them
                if not over_deadline(f"{model}:{mode} processes"):
                    run_pool(model, mode, False)
        if "streams" in kinds and not over_deadline(f"{model}:{mode} streams"):
            if not run_streams(model, mode, None) and cuda:
                header["notes"].append(f"{model}:{mode} streams failed with CUDA graphs on; retried with graphs off")
                run_streams(model, mode, False)
        if "processes" in kinds and True in mps_settings and not over_deadline(f"{model}:{mode} processes MPS"):
            if daemon.start():
                try:
                    run_pool(model, mode, True)
                finally:
                    log = daemon.stop()
                    header["notes"].append(f"{model}:{mode}: {daemon.note}; control.log tail: {log}")
            else:
                header["notes"].append(daemon.note)
            write()
    write()
    header["summary"] = summarise(header["rows"])
    print_summary(header["summary"])
    print(f"wrote {out}")
    return header


if __name__ == "__main__":
    main()
