"""Parameters shared by the SAP figures (1-6) and the ASNI figures (8-10), their profile values,
and the configs and captions built from them (docs/figures.md "Profiles").

Captions are written from the same parameters that built the runs, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.figures import style
from sparsity_lab.figures.params import FigureParams, param

__all__ = ["ALL_METHOD_LABELS", "AsniParams", "METHOD_LABELS", "OPTIONAL_METHODS", "SAP_METHODS", "SapParams", "asni_caption", "asni_config", "sap_caption",
           "sap_config"]

#: The four methods of docs/figures.md items 1-2 as (label, IterativeConfig overrides).
SAP_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("SAP (p=0.5, q=1)", {"method": "sap", "p": 0.5, "q": 1.0}),
    ("SAP (p=1, q=2)", {"method": "sap", "p": 1.0, "q": 2.0}),
    ("LT (P=0.2)", {"method": "lt", "prune_fraction": 0.2}),
    ("OS (P=0.2)", {"method": "oneshot", "prune_fraction": 0.2}),
]
METHOD_LABELS = tuple(label for label, _ in SAP_METHODS)
#: Rules a figure may add by label but no figure draws by default: SNIP (Lee et al. 2019) needs a batch
#: of data to score connections (sparsity_lab/rules/snip.py), here pruning 20 % per iteration like LT.
OPTIONAL_METHODS: list[tuple[str, dict[str, Any]]] = [("SNIP (P=0.2)", {"method": "snip", "prune_fraction": 0.2})]
ALL_METHOD_LABELS = METHOD_LABELS + tuple(label for label, _ in OPTIONAL_METHODS)
RANKED = ("last", "best_val", "best_test")


@dataclass
class SapParams(FigureParams):
    """Iterative pruning (docs/methods.md §3): dataset, model, T, E, seeds, scope, what is ranked."""

    dataset: str = param("dataset (digits, mnist, fashionmnist, cifar10, ...)",
                         smoke="digits", quick="fashionmnist", gpu="fashionmnist", paper="cifar10")
    model: str = param("model (linear, mlp, cnn, cnn_tiny, resnet18, lenet300_100, ...)",
                       smoke="mlp", quick="cnn_tiny", gpu="cnn", paper="cnn")
    iterations: int = param("T: pruning iterations (T + 1 trainings per run)", smoke=3, quick=20, gpu=30, paper=30)
    epochs: int = param("E: training epochs per pruning iteration", smoke=1, quick=2, gpu=10, paper=200)
    batch_size: int = param("training batch size", smoke=64, quick=16, default=250)
    seeds: list[int] = param("seeds (one run per method and seed)", smoke=[0], quick=[0, 1], gpu=[0, 1],
                             paper=[0, 1, 2, 3])
    train_subset: int = param("train on this many training images (0: all)", quick=1500, default=0)
    test_subset: int = param("evaluate on a fixed subset of this many test images, the same for every run (0: all)",
                             quick=2000, default=0)
    scope: str = param("pruning scope", default="global", choices=("global", "layer", "neuron"))
    rank_weights: str = param("which trained weights are ranked: last | best_val (needs val_size) | best_test",
                              default="last", choices=RANKED)
    val_size: int = param("validation images held out of training (needed by rank_weights=best_val)", default=0)


def sap_config(p: SapParams, /, *, seed: int, **overrides: Any) -> IterativeConfig:
    """The IterativeConfig of one run of a SAP figure (SGD, Nesterov, cosine: the engine's defaults)."""
    extra = {"rank_weights": p.rank_weights} if p.rank_weights != "last" else {}
    if p.val_size:
        extra["val_size"] = p.val_size
    base = IterativeConfig(dataset=p.dataset, model=p.model, iterations=p.iterations, scope=p.scope,
                           train_subset=p.train_subset, test_subset=p.test_subset,
                           train=TrainSettings(epochs=p.epochs, batch_size=p.batch_size))
    return config_with(base, seed=seed, **extra, **overrides)


def sap_caption(p: SapParams, *, dataset: Any = None, model: Any = None, scope: Any = None, extra: Any = None) -> str:
    """Every field docs/figures.md asks for, from the parameters that built the runs."""
    subset = f"training subset {p.train_subset:,} images" if p.train_subset else "training set: all images"
    if p.test_subset:
        subset += f", test subset {p.test_subset:,} images"
    more = "; ".join(x for x in (subset, extra) if x)
    return style.caption(p.profile, dataset or p.dataset, model or p.model, p.iterations, p.epochs, list(p.seeds),
                         scope or p.scope, p.rank_weights, extra=more)


@dataclass
class AsniParams(FigureParams):
    """ASNI (docs/methods.md §4): sigmoid-schedule pruning in one training run of T epochs."""

    dataset: str = param("dataset", smoke="digits", quick="mnist", gpu="mnist", paper="cifar10")
    model: str = param("model", smoke="lenet300_100", quick="lenet300_100", gpu="lenet300_100", paper="resnet18")
    epochs: int = param("T: training epochs (ASNI prunes after each)", smoke=6, quick=20, gpu=50, paper=160)
    s_max: float = param("S_max: final target sparsity (percent)", smoke=90.0, quick=98.0, gpu=98.0, paper=97.0)
    kappa: float = param("kappa: sigmoid temperature in epochs", smoke=1.0, quick=2.0, gpu=5.0, paper=16.0)
    tau: float = param("tau: sigmoid midpoint as a fraction of T", default=0.5)
    seeds: list[int] = param("seeds", smoke=[0], quick=[0], gpu=[0, 1, 2, 3], paper=[0, 1, 2, 3])
    train_subset: int = param("train on this many training images (0: all)", quick=20000, default=0)
    optimizer: str = param("optimizer", default="adam", paper="sgd", choices=("sgd", "adam", "adamw"))
    lr: float = param("learning rate", default=1e-3, paper=0.05)
    batch_size: int = param("batch size", smoke=64, quick=60, gpu=60, paper=128)
    weight_decay: float = param("weight decay", default=0.0, paper=5e-4)
    lr_schedule: str = param("learning-rate schedule", default="constant", paper="cosine",
                             choices=("constant", "cosine", "step"))


def asni_config(p: AsniParams, variant: str, seed: int) -> AsniConfig:
    """The AsniConfig of one (variant, seed) of an ASNI figure."""
    train = TrainSettings(optimizer=p.optimizer, lr=p.lr, momentum=0.9, nesterov=False, weight_decay=p.weight_decay,
                          epochs=p.epochs, batch_size=p.batch_size, lr_schedule=p.lr_schedule, grad_clip=None)
    return AsniConfig(dataset=p.dataset, model=p.model, variant=variant, seed=seed, s_max=p.s_max, kappa=p.kappa,
                      tau=p.tau, train_subset=p.train_subset, train=train)


def asni_caption(p: AsniParams, extra: str = "") -> str:
    """ASNI prunes after every epoch of one run: T = epochs, E = 1 epoch per pruning step, global scope."""
    subset = f"training subset {p.train_subset:,} images" if p.train_subset else "training set: all images"
    fields = [f"S_max={p.s_max:g} %", f"κ={p.kappa:g}", f"τ={p.tau:g}",
              f"{p.optimizer} lr {p.lr:g}, batch {p.batch_size}", subset]
    if extra:
        fields.append(extra)
    return style.caption(p.profile, p.dataset, p.model, T=f"{p.epochs} epochs", E="1 epoch per pruning step",
                         seeds=list(p.seeds), scope="global (ASNI)", ranked="n/a (one run)",
                         extra=" · ".join(fields))


def replace(p: Any, **changes: Any) -> Any:
    return dataclasses.replace(p, **changes)
