"""Model registry: `@register_model(name, ...)`, `create_model`, `check_model_fits`, and the init.

Every model is built by a factory `factory(input_shape=(C, H, W), num_classes=K) -> nn.Module`
and then initialised by `init_weights` as docs/methods.md §3 prescribes: conv weights Kaiming-normal
(fan_out, ReLU gain) with zero bias, BatchNorm weight 1 and bias 0, linear weights PyTorch's
default (Kaiming-uniform, a=√5) with zero bias. Seed with torch.manual_seed before create_model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from ..data.info import DatasetInfo, dataset_info

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its factory and what input it accepts.

    min_size: smallest H and W the architecture handles (each 2×2 max-pool halves the size);
    channels: required number of input channels, or None for any.
    """

    name: str
    factory: Factory
    min_size: int = 1
    channels: int | None = None
    description: str = ""


MODELS: dict[str, Factory] = {}
MODEL_SPECS: dict[str, ModelSpec] = {}


def register_model(
    name: str, *, min_size: int = 1, channels: int | None = None, description: str = ""
) -> Callable[[Factory], Factory]:
    """Decorator adding `factory(input_shape, num_classes)` to MODELS under `name`."""

    def wrap(factory: Factory) -> Factory:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = factory
        MODEL_SPECS[name] = ModelSpec(name, factory, min_size, channels, description or (factory.__doc__ or ""))
        return factory

    return wrap


def _spec(name: str) -> ModelSpec:
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODEL_SPECS))}")
    return MODEL_SPECS[name]


def check_model_fits(name: str, input_shape: tuple[int, ...]) -> None:
    """ValueError naming the model, the input shape and what it needs if the model cannot take it."""
    spec = _spec(name)
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"model {name!r}: input_shape must be (C, H, W) of positive integers, got {input_shape!r}")
    c, h, w = shape
    if spec.channels is not None and c != spec.channels:
        raise ValueError(f"model {name!r} needs {spec.channels} input channels, got input shape {shape}")
    if min(h, w) < spec.min_size:
        raise ValueError(
            f"model {name!r} needs images of at least {spec.min_size}x{spec.min_size} pixels, got input shape {shape}"
        )


def init_weights(model: nn.Module) -> nn.Module:
    """docs/methods.md §3 init, in place: conv Kaiming-normal(fan_out, relu), BN (1, 0), linear bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            m.reset_parameters()
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def create_model(
    name: str,
    dataset: str | DatasetInfo | None,
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """Build and initialise model `name` for `dataset` (a name or DatasetInfo).

    input_shape / num_classes override the dataset's; with dataset=None both must be given.
    """
    spec = _spec(name)
    if dataset is None:
        if input_shape is None or num_classes is None:
            raise ValueError(f"create_model({name!r}, None): give a dataset or both input_shape and num_classes")
        shape, classes = tuple(input_shape), num_classes
    else:
        info = dataset if isinstance(dataset, DatasetInfo) else dataset_info(dataset)
        shape = tuple(input_shape) if input_shape is not None else info.input_shape
        classes = num_classes if num_classes is not None else info.num_classes
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"model {name!r}: num_classes must be a positive integer, got {classes!r}")
    check_model_fits(name, shape)
    return init_weights(spec.factory(input_shape=shape, num_classes=classes))
