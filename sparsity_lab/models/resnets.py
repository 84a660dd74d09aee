"""Residual networks: the SAP paper's pre-activation ResNet-18 and WRN-28-8 (docs/methods.md §3) and
the CIFAR ResNet-20 of He et al. (2016, §4.2).

Pre-activation block (He et al. 2016b): BN → ReLU → Conv3×3(stride) → BN → ReLU → Conv3×3, plus a
shortcut that is the identity, or a 1×1 stride-s conv of the pre-activated input when the shape
changes. No conv has a bias. The networks end with BN → ReLU → global average pool → Linear.
- resnet18: 3×3 stride-1 stem (64), no max-pool, stages of [2, 2, 2, 2] blocks
  with widths 64, 128, 256, 512 and strides 1, 2, 2, 2.
- wresnet28x8 (Zagoruyko & Komodakis 2016): 3×3 stem (16), (28 − 4)/6 = 4 blocks per stage,
  widths 16·8 = 128, 256, 512, strides 1, 2, 2, no dropout.
- resnet20: post-activation basic blocks (Conv → BN → ReLU → Conv → BN, add, ReLU), stem Conv3×3(16)
  → BN → ReLU, 3 stages of 3 blocks, widths 16, 32, 64, strides 1, 2, 2, GAP, Linear(64, C). The
  shortcut on a shape change is a 1×1 conv + BN (He et al.'s option B; their CIFAR runs used the
  parameter-free option A), so the 1×1 convs are prunable weights here.
The size limits (min_size) keep the last feature map ≥ 1×1 without striding over a 1×1 map.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class PreActBlock(nn.Module):
    """Pre-activation basic block; `shortcut` is a 1×1 conv when stride ≠ 1 or widths differ."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.shortcut = conv1x1(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    """3×3 stem → stages of PreActBlocks → BN → ReLU → global average pool → Linear."""

    def __init__(
        self,
        in_channels: int,
        stem_width: int,
        widths: tuple[int, ...],
        blocks: tuple[int, ...],
        strides: tuple[int, ...],
        num_classes: int,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, stem_width)
        stages: list[nn.Module] = []
        c = stem_width
        for width, n, stride in zip(widths, blocks, strides):
            layers = []
            for i in range(n):
                layers.append(PreActBlock(c, width, stride if i == 0 else 1))
                c = width
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.layers(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


@register_model("resnet18", min_size=8, description="pre-activation ResNet-18 for 32×32 (SAP paper)")
def resnet18(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """SAP paper's pre-activation ResNet-18."""
    return PreActResNet(input_shape[0], 64, (64, 128, 256, 512), (2, 2, 2, 2), (1, 2, 2, 2), num_classes)


def wide_resnet(input_shape: tuple[int, int, int], num_classes: int, depth: int, widen: int) -> nn.Module:
    """Pre-activation WRN-depth-widen without dropout: (depth − 4)/6 blocks per stage."""
    if (depth - 4) % 6:
        raise ValueError(f"wide ResNet depth must be 6n + 4, got {depth}")
    n = (depth - 4) // 6
    widths = (16 * widen, 32 * widen, 64 * widen)
    return PreActResNet(input_shape[0], 16, widths, (n, n, n), (1, 2, 2), num_classes)


@register_model("wresnet28x8", min_size=4, description="pre-activation Wide ResNet 28-8, no dropout (SAP paper)")
def wresnet28x8(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """SAP paper's WRN-28-8."""
    return wide_resnet(input_shape, num_classes, depth=28, widen=8)


class BasicBlock(nn.Module):
    """Post-activation block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet-(6n+2): stem 16, stages 16/32/64 of n BasicBlocks, GAP, Linear."""

    def __init__(self, in_channels: int, n: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        stages: list[nn.Module] = []
        c = 16
        for width, stride in zip((16, 32, 64), (1, 2, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(c, width, stride if i == 0 else 1))
                c = width
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


@register_model("resnet20", min_size=4, description="CIFAR ResNet-20 (He et al. 2016), 1×1-conv shortcuts")
def resnet20(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR ResNet-20 (n = 3)."""
    return CifarResNet(input_shape[0], 3, num_classes)
