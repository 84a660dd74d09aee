"""Training hyperparameters (`TrainSettings`, the science) and engine knobs (`EngineOptions`, speed only).

`TrainSettings` defaults are the SAP paper's protocol (docs/methods.md §3): SGD lr 0.1 with Nesterov
momentum 0.9, weight decay 5e-4 on all parameters, cosine annealing to 0 over 200 epochs, batch 250,
gradient clipping at global norm 1.0. `EngineOptions` never changes the mathematics of a step, only how
fast it runs (fused kernels, memory format, CUDA graphs, torch.compile mode).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

import torch

#: Steps of one training from which EngineOptions.compile='auto' compiles a conv model on CUDA: compilation
#: costs about 21 s once per process and model shape (cnn, H100, benchmarks/results/engine-h100-cnn-issue12.json "first_epoch_seconds"; a new run
#: in the same worker reuses it) and saves 0.55 ms per cnn step, so it pays off within a long training (the
#: paper's 200 CIFAR epochs are 40,000 steps); short trainings stay uncompiled.
AUTO_COMPILE_MIN_STEPS = 20_000
AMP_MODES = ("auto", "bf16", "off")
#: torch.compile modes that wrap the compiled graph in their own CUDA graphs
CUDAGRAPH_COMPILE_MODES = ("reduce-overhead", "max-autotune")
#: EngineOptions.compile's default comes from this environment variable (so sweep workers inherit it)
COMPILE_ENV = "SPARSITY_LAB_COMPILE"
COMPILE_CHOICES = ("auto", "on", "off")


def _compile_default() -> str:
    return os.environ.get(COMPILE_ENV, "auto")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one masked training run (docs/methods.md §3 "paper" protocol by default)."""

    optimizer: str = field(default="sgd", metadata=_help("optimizer: 'sgd' (momentum/Nesterov), 'adam' or 'adamw'"))
    lr: float = field(default=0.1, metadata=_help("base learning rate (the schedule multiplies it)"))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum (ignored by adam/adamw, which use betas)"))
    nesterov: bool = field(default=True, metadata=_help("SGD Nesterov momentum (needs momentum > 0)"))
    weight_decay: float = field(
        default=5e-4, metadata=_help("L2 weight decay on all parameters (decoupled for adamw)")
    )
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_help("Adam/AdamW (beta1, beta2)"))
    epochs: int = field(default=200, metadata=_help("epochs per training run; the LR schedule spans them"))
    batch_size: int = field(default=250, metadata=_help("training mini-batch size"))
    lr_schedule: str = field(
        default="cosine",
        metadata=_help("'cosine' (to 0 over `epochs`), 'step' (x step_gamma at step_milestones) or 'constant'; "
                       "the LR is set once per epoch"),
    )
    step_milestones: tuple[int, ...] = field(
        default=(), metadata=_help("epochs at which the 'step' schedule multiplies the LR by step_gamma")
    )
    step_gamma: float = field(default=0.1, metadata=_help("factor of the 'step' schedule at each milestone"))
    grad_clip: float | None = field(
        default=1.0, metadata=_help("clip gradients to this global L2 norm (pruned entries excluded); None = off")
    )
    amp: str = field(default="auto", metadata=_help("'auto' (bf16 autocast on CUDA, fp32 on CPU), 'bf16' or 'off'"))
    compile: bool = field(default=False, metadata=_help(
        "always torch.compile the model (EngineOptions.compile decides otherwise; speed only, but part of the run id)"))
    eval_batch_size: int = field(default=1000, metadata=_help("batch size of evaluation passes"))

    def validate(self) -> TrainSettings:
        """Raise ValueError naming the field, its value and what is allowed; return self when valid."""
        from .optim import OPTIMIZERS, SCHEDULES  # registries live next to their implementations

        _choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
        _choice("lr_schedule", self.lr_schedule, tuple(SCHEDULES))
        _choice("amp", self.amp, AMP_MODES)
        _positive("lr", self.lr)
        _positive("step_gamma", self.step_gamma)
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainSettings.{name}={value!r} is not allowed: it must be an integer >= 1")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"TrainSettings.momentum={self.momentum!r} is not allowed: it must be in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError(f"TrainSettings.weight_decay={self.weight_decay!r} is not allowed: it must be >= 0")
        if self.optimizer == "sgd" and self.nesterov and self.momentum <= 0:
            raise ValueError(
                f"TrainSettings.nesterov=True with momentum={self.momentum!r} is not allowed: "
                "Nesterov needs momentum > 0 (or set nesterov=False)"
            )
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainSettings.betas={self.betas!r} is not allowed: it must be two numbers in [0, 1)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainSettings.grad_clip={self.grad_clip!r} is not allowed: it must be > 0 or None")
        milestones = tuple(self.step_milestones)
        if any(not isinstance(m, int) or m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
            raise ValueError(
                f"TrainSettings.step_milestones={self.step_milestones!r} is not allowed: "
                "it must be strictly increasing integers >= 1"
            )
        return self

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> one-line help text."""
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


@dataclass(frozen=True)
class EngineOptions:
    """Speed knobs of the training engine; none of them changes the result beyond float rounding.

    Every option has an "auto" setting chosen for the device; the benchmark (benchmarks/bench_engine.py)
    compares them so the defaults can be set from measurements.
    """

    channels_last: str = field(default="auto", metadata=_help("'auto' (CUDA and conv model), 'on' or 'off'"))
    optimizer_impl: str = field(
        default="auto", metadata=_help("'auto' (fused on CUDA, foreach on CPU), 'fused', 'foreach' or 'loop'")
    )
    cuda_graphs: str = field(
        default="auto", metadata=_help("capture each training step in a CUDA graph: 'auto' (on for CUDA), 'on', 'off'")
    )
    compile_mode: str = field(
        default="default", metadata=_help("torch.compile mode used when TrainSettings.compile is on")
    )
    cudnn_benchmark: bool = field(default=True, metadata=_help("let cuDNN autotune convolution algorithms"))
    compile: str = field(
        default_factory=_compile_default,
        metadata=_help(f"torch.compile the model: 'auto' (CUDA, conv model, >= {AUTO_COMPILE_MIN_STEPS} steps per "
                       f"training), 'on', 'off'; default from ${COMPILE_ENV}, else 'auto'"),
    )

    def compile_on(self, device: torch.device, has_conv: bool, steps_per_training: int) -> bool:
        """Whether to compile ('auto': a conv model on CUDA whose training runs AUTO_COMPILE_MIN_STEPS steps)."""
        return self.compile == "on" or (self.compile == "auto" and device.type == "cuda" and has_conv
                                        and steps_per_training >= AUTO_COMPILE_MIN_STEPS)

    def graphs_on(self, device: torch.device) -> bool:
        """Whether CUDA graphs are used on `device` ('auto': exactly when it is a CUDA device)."""
        if self.cuda_graphs == "on" and device.type != "cuda":
            raise ValueError(f"EngineOptions.cuda_graphs='on' needs a CUDA device, got device={device}")
        return self.cuda_graphs == "on" or (self.cuda_graphs == "auto" and device.type == "cuda")

    def compiled(self, model: torch.nn.Module, graphs: bool) -> torch.nn.Module:
        """``torch.compile(model)`` in ``compile_mode`` with one static-shape graph (fullgraph, dynamic=False).
        Modes that capture their own CUDA graphs cannot run inside the engine's graph: refused when it is on."""
        if graphs and self.compile_mode in CUDAGRAPH_COMPILE_MODES:
            raise ValueError(
                f"EngineOptions.compile_mode={self.compile_mode!r} captures its own CUDA graphs, which cannot run "
                f"inside the engine's (cuda_graphs on): use 'default' or 'max-autotune-no-cudagraphs', or set "
                "cuda_graphs='off'")
        return torch.compile(model, mode=self.compile_mode, fullgraph=True, dynamic=False)

    def channels_last_on(self, device: torch.device, has_conv: bool) -> bool:
        """Whether conv weights and inputs use channels_last ('auto': CUDA and a conv model)."""
        return self.channels_last == "on" or (self.channels_last == "auto" and device.type == "cuda" and has_conv)

    def validate(self) -> EngineOptions:
        _choice("channels_last", self.channels_last, ("auto", "on", "off"), owner="EngineOptions")
        _choice("cuda_graphs", self.cuda_graphs, ("auto", "on", "off"), owner="EngineOptions")
        if self.compile not in COMPILE_CHOICES:
            raise ValueError(f"EngineOptions.compile={self.compile!r} is not allowed (from ${COMPILE_ENV} unless given): "
                             f"choose one of {', '.join(map(repr, COMPILE_CHOICES))}")
        _choice("optimizer_impl", self.optimizer_impl, ("auto", "fused", "foreach", "loop"), owner="EngineOptions")
        _choice(
            "compile_mode",
            self.compile_mode,
            ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
            owner="EngineOptions",
        )
        return self


def _choice(name: str, value: object, allowed: tuple[str, ...], owner: str = "TrainSettings") -> None:
    if value not in allowed:
        raise ValueError(f"{owner}.{name}={value!r} is not allowed: choose one of {', '.join(map(repr, allowed))}")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"TrainSettings.{name}={value!r} is not allowed: it must be > 0")
