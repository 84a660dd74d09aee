"""Plain convolutional models: the SAP paper's `cnn`, LTH's Conv-2/4/6 and CIFAR VGG-11/16 with BN.

- cnn (docs/methods.md §3): four Conv3×3(pad 1, bias) → BN → ReLU blocks of widths 64, 128, 256, 512,
  2×2 max-pool after the first three, global average pool → Linear(512, C). cnn_small (16, 32, 64, 128)
  and cnn_tiny (8, 16, 32, 64) are the same layout, narrower, so the `quick` profile can train a model
  with batch norm on a CPU (docs/quick-retune.md).
- conv2/conv4/conv6 (Frankle & Carbin 2019, Fig. 2): pairs of Conv3×3 ('same' padding, bias) →
  ReLU of widths 64 / 64,128 / 64,128,256, a 2×2 max-pool after each pair, then FC 256 → 256 → C.
  Designed for 32×32 (flattened 16384 / 8192 / 4096 features); on 28×28 the flattened size follows
  the input (14·14·64 = 12544 / 7·7·128 = 6272 / 3·3·256 = 2304). LTH used Glorot init and no BN;
  here they get the package-wide init of docs/methods.md §3 (registry.init_weights).
- vgg11/vgg16 (CIFAR variants, as in the LTH papers' VGG): Conv3×3 → BN → ReLU stages
  [64] [128] [256×2] [512×2] [512×2] (VGG-11) or [64×2] [128×2] [256×3] [512×3] [512×3] (VGG-16),
  2×2 max-pool after each of the first four stages, global average pool, one Linear(512, C).
  Conv bias is omitted because BN follows.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import register_model


def _conv_bn_relu(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), nn.BatchNorm2d(c_out), nn.ReLU()]


class ConvClassifier(nn.Module):
    """features → (global average pool | flatten) → classifier."""

    def __init__(self, features: nn.Sequential, classifier: nn.Module, global_pool: bool) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1) if global_pool else nn.Identity()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def bn_stages(in_channels: int, stages: list[list[int]], pools: int, bias: bool) -> tuple[nn.Sequential, int]:
    """Conv-BN-ReLU stages with a 2×2 max-pool after each of the first `pools` stages."""
    layers: list[nn.Module] = []
    c = in_channels
    for i, widths in enumerate(stages):
        for w in widths:
            layers += _conv_bn_relu(c, w, bias)
            c = w
        if i < pools:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers), c


#: Block widths of the SAP `cnn` (the paper's) and of its narrow variants for CPU budgets.
CNN_WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "cnn": (64, 128, 256, 512),
    "cnn_small": (16, 32, 64, 128),
    "cnn_tiny": (8, 16, 32, 64),
}


def sap_cnn(input_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...]) -> nn.Module:
    """The SAP CNN's layout with the given block widths: Conv-BN-ReLU per width, a 2×2 max-pool after
    every block but the last, global average pool, Linear(widths[-1], C)."""
    features, c = bn_stages(input_shape[0], [[w] for w in widths], pools=len(widths) - 1, bias=True)
    return ConvClassifier(features, nn.Linear(c, num_classes), global_pool=True)


@register_model("cnn", min_size=8, description="SAP CNN: 4 conv-BN-ReLU blocks 64..512, 3 max-pools, GAP, Linear")
def cnn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """SAP paper's CNN (docs/methods.md §3)."""
    return sap_cnn(input_shape, num_classes, CNN_WIDTHS["cnn"])


@register_model("cnn_small", min_size=8, description="SAP CNN at 1/4 width (16, 32, 64, 128), for CPU budgets")
def cnn_small(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The SAP CNN with a quarter of its channels per block (the `quick` profile's CPU-sized stand-in)."""
    return sap_cnn(input_shape, num_classes, CNN_WIDTHS["cnn_small"])


@register_model("cnn_tiny", min_size=8, description="SAP CNN at 1/8 width (8, 16, 32, 64), for CPU budgets")
def cnn_tiny(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The SAP CNN with an eighth of its channels per block."""
    return sap_cnn(input_shape, num_classes, CNN_WIDTHS["cnn_tiny"])


def lth_conv(input_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...]) -> nn.Module:
    """Conv-2/4/6: per width w, Conv3×3(w) → ReLU → Conv3×3(w) → ReLU → MaxPool2; FC 256-256-C."""
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
        c, h, w = width, h // 2, w // 2
    classifier = nn.Sequential(
        nn.Linear(c * h * w, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, num_classes)
    )
    return ConvClassifier(nn.Sequential(*layers), classifier, global_pool=False)


@register_model("conv2", min_size=2, description="LTH Conv-2: 64-64-pool, FC 256-256-C")
def conv2(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LTH Conv-2."""
    return lth_conv(input_shape, num_classes, (64,))


@register_model("conv4", min_size=4, description="LTH Conv-4: 64-64-pool-128-128-pool, FC 256-256-C")
def conv4(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LTH Conv-4."""
    return lth_conv(input_shape, num_classes, (64, 128))


@register_model("conv6", min_size=8, description="LTH Conv-6: 64-64-pool-128-128-pool-256-256-pool, FC 256-256-C")
def conv6(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LTH Conv-6."""
    return lth_conv(input_shape, num_classes, (64, 128, 256))


VGG_STAGES = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
}


def vgg(input_shape: tuple[int, int, int], num_classes: int, depth_name: str) -> nn.Module:
    """CIFAR VGG with BN: 4 max-pools, global average pool, Linear(512, C)."""
    features, c = bn_stages(input_shape[0], VGG_STAGES[depth_name], pools=4, bias=False)
    return ConvClassifier(features, nn.Linear(c, num_classes), global_pool=True)


@register_model("vgg11", min_size=16, description="CIFAR VGG-11 with BN, GAP, one Linear")
def vgg11(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """VGG-11 (BN) for CIFAR-sized images."""
    return vgg(input_shape, num_classes, "vgg11")


@register_model("vgg16", min_size=16, description="CIFAR VGG-16 with BN, GAP, one Linear")
def vgg16(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """VGG-16 (BN) for CIFAR-sized images."""
    return vgg(input_shape, num_classes, "vgg16")
