"""The narrow SAP CNNs (`cnn_small`, `cnn_tiny`) for CPU budgets (docs/quick-retune.md): same layout as
`cnn`, fewer channels, and the paper's `cnn` itself unchanged (architecture, init, run ids)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.models import create_model, init_weights
from sparsity_lab.models.convnets import CNN_WIDTHS, ConvClassifier, bn_stages


def prunable(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters() if n.endswith(".weight") and p.dim() > 1}


def test_paper_cnn_unchanged() -> None:
    """The default cnn keeps the paper's layers, names, shapes and seeded init: equal, tensor for tensor,
    to the model built as before the width variants existed (bn_stages 64..512, 3 pools, GAP, Linear)."""
    model = create_model("cnn", "fashionmnist")
    assert prunable(model) == {"features.0.weight": (64, 1, 3, 3), "features.4.weight": (128, 64, 3, 3),
                               "features.8.weight": (256, 128, 3, 3), "features.12.weight": (512, 256, 3, 3),
                               "classifier.weight": (10, 512)}
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    torch.manual_seed(0)
    new = create_model("cnn", "fashionmnist").state_dict()
    torch.manual_seed(0)
    features, c = bn_stages(1, [[64], [128], [256], [512]], pools=3, bias=True)
    old = init_weights(ConvClassifier(features, nn.Linear(c, 10), global_pool=True)).state_dict()
    assert list(new) == list(old)
    assert all(torch.equal(new[k], old[k]) for k in old)


def test_cnn_run_id_unchanged() -> None:
    """The width variants are new model names, not a config field: a cnn config keeps its id from before."""
    assert IterativeConfig(model="cnn", iterations=30).run_id == "iterative_1768ade61b83"


@pytest.mark.parametrize("name", ["cnn_small", "cnn_tiny"])
def test_narrow_cnn_layout(name: str) -> None:
    w = CNN_WIDTHS[name]
    model = create_model(name, "fashionmnist")
    assert list(prunable(model).values()) == [(w[0], 1, 3, 3), (w[1], w[0], 3, 3), (w[2], w[1], 3, 3),
                                              (w[3], w[2], 3, 3), (10, w[3])]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 4
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    IterativeConfig(model=name, iterations=2).validate()


def test_narrow_widths_are_fractions_of_the_paper_cnn() -> None:
    paper = CNN_WIDTHS["cnn"]
    assert CNN_WIDTHS["cnn_small"] == tuple(c // 4 for c in paper)
    assert CNN_WIDTHS["cnn_tiny"] == tuple(c // 8 for c in paper)
