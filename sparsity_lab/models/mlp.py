"""Fully connected models: the SAP paper's `linear` and `mlp` (docs/methods.md §3) and LTH's LeNet-300-100.

All flatten the (C, H, W) input, so they accept any input shape.
"""

from __future__ import annotations

from collections import OrderedDict
from math import prod

import torch.nn as nn

from .registry import register_model


def fully_connected(in_features: int, hidden: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """flatten → [Linear → ReLU]·len(hidden) → Linear(…, num_classes); layers named fc1, fc2, …"""
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    widths = (in_features, *hidden)
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        layers += [(f"fc{i}", nn.Linear(a, b)), (f"relu{i}", nn.ReLU())]
    layers.append((f"fc{len(hidden) + 1}", nn.Linear(widths[-1], num_classes)))
    return nn.Sequential(OrderedDict(layers))


@register_model("linear", description="flatten → Linear(in, C)")
def linear(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """SAP paper's linear model: flatten → Linear(in, C)."""
    return fully_connected(prod(input_shape), (), num_classes)


@register_model("mlp", description="Linear(in,128)-ReLU-Linear(128,256)-ReLU-Linear(256,C)")
def mlp(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """SAP paper's MLP: Linear(in,128) → ReLU → Linear(128,256) → ReLU → Linear(256,C)."""
    return fully_connected(prod(input_shape), (128, 256), num_classes)


@register_model("lenet300_100", description="LeNet-300-100 (Frankle & Carbin 2019): in-300-100-C")
def lenet300_100(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LTH's LeNet-300-100: Linear(in,300) → ReLU → Linear(300,100) → ReLU → Linear(100,C) (in = 784 on MNIST)."""
    return fully_connected(prod(input_shape), (300, 100), num_classes)
