"""The three budgets every figure notebook runs under (FIGURES.md "Profiles").

- ``smoke``: seconds per notebook on 2 CPU cores; scikit-learn's bundled digits; used by the tests.
- ``quick``: the default of ``make figures``; real FashionMNIST / MNIST with reduced budgets chosen so
  the whole batch runs in about 15 minutes on a 2-core CPU while each figure's phenomenon stays visible.
- ``paper``: the papers' protocols (METHODS.md §3-4); a GPU job.

``figure_params(figure, profile, **overrides)`` returns the parameters of one figure: a notebook's
``parameters`` cell may override any of them field by field.
"""

from __future__ import annotations

from typing import Any

from sparsity_lab.train import TrainSettings

PROFILES = ("smoke", "quick", "paper")

#: Training settings per profile for the SAP-paper experiments (SGD, Nesterov, cosine, clip 1.0).
SAP_TRAIN: dict[str, TrainSettings] = {
    "smoke": TrainSettings(epochs=1, batch_size=64),
    "quick": TrainSettings(epochs=2, batch_size=250),
    "paper": TrainSettings(epochs=200, batch_size=250),
}

#: ASNI training settings per profile (T = train.epochs). smoke/quick: Adam, batch 60, as the authors' MNIST
#: LeNet-300-100 runs; paper: the authors' CIFAR10 ResNet-18 protocol (METHODS.md §4: SGD 0.05, momentum 0.9,
#: weight decay 5e-4, batch 128, cosine, T = 160; mixed precision = the engine's bf16 autocast on CUDA).
ASNI_TRAIN: dict[str, TrainSettings] = {
    "smoke": TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=6,
                           batch_size=64, lr_schedule="constant", grad_clip=None),
    "quick": TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=20,
                           batch_size=60, lr_schedule="constant", grad_clip=None),
    "paper": TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=False, weight_decay=5e-4,
                           epochs=160, batch_size=128, lr_schedule="cosine", grad_clip=None),
}

_SAP_BASE: dict[str, dict[str, Any]] = {
    "smoke": {"dataset": "digits", "model": "mlp", "iterations": 3, "seeds": [0], "train_subset": 0},
    "quick": {"dataset": "fashionmnist", "model": "mlp", "iterations": 15, "seeds": [0, 1], "train_subset": 20000},
    "paper": {"dataset": "cifar10", "model": "cnn", "iterations": 30, "seeds": [0, 1, 2, 3], "train_subset": 0},
}

_ASNI_BASE: dict[str, dict[str, Any]] = {
    "smoke": {"dataset": "digits", "model": "lenet300_100", "s_max": 90.0, "kappa": 1.0, "seeds": [0],
              "train_subset": 0},
    "quick": {"dataset": "mnist", "model": "lenet300_100", "s_max": 98.0, "kappa": 2.0, "seeds": [0],
              "train_subset": 20000},
    "paper": {"dataset": "cifar10", "model": "resnet18", "s_max": 97.0, "kappa": 16.0, "seeds": [0, 1, 2, 3],
              "train_subset": 0},
}

#: The four methods of FIGURES.md 1-2 as (label, IterativeConfig overrides).
SAP_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("SAP (p=0.5, q=1)", {"method": "sap", "p": 0.5, "q": 1.0}),
    ("SAP (p=1, q=2)", {"method": "sap", "p": 1.0, "q": 2.0}),
    ("LT (P=0.2)", {"method": "lt", "prune_fraction": 0.2}),
    ("OS (P=0.2)", {"method": "oneshot", "prune_fraction": 0.2}),
]

_FIGURE_EXTRAS: dict[str, dict[str, dict[str, Any]]] = {
    "sap_trajectories": {},
    "pruning_scopes": {"smoke": {"seeds": [0]}, "quick": {"seeds": [0]}, "paper": {"model": "cnn"}},
    "pq_ablation": {"smoke": {"seeds": [0]}, "quick": {"seeds": [0]}},
    "eta_gamma_ablation": {"smoke": {"seeds": [0]}, "quick": {"seeds": [0]}},
    "pq_heatmaps": {"smoke": {"seeds": [0]}, "quick": {"seeds": [0]}},
    "sap_vs_lth": {
        "smoke": {"setups": [("digits", "mlp")]},
        "quick": {"setups": [("fashionmnist", "mlp"), ("mnist", "lenet300_100")]},
        "paper": {"setups": [("cifar10", "resnet18")], "iterations": 15},
    },
}

_ASNI_FIGURES = ("asni_schedule", "asni_concentration", "asni2")


def figure_params(figure: str, profile: str = "quick", **overrides: Any) -> dict[str, Any]:
    """Parameters of ``figure`` under ``profile``, with ``overrides`` (None values ignored) applied last."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: allowed {PROFILES}")
    if figure in _ASNI_FIGURES:
        params = {**_ASNI_BASE[profile], "train": ASNI_TRAIN[profile]}
    elif figure in _FIGURE_EXTRAS:
        params = {**_SAP_BASE[profile], "train": SAP_TRAIN[profile], "scope": "global",
                  **_FIGURE_EXTRAS[figure].get(profile, {})}
    else:
        raise ValueError(f"unknown figure {figure!r}: allowed {sorted([*_FIGURE_EXTRAS, *_ASNI_FIGURES])}")
    params["profile"] = profile
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params
