"""Where each dataset's uint8 tensors come from: torchvision, scikit-learn's digits, or a generator.

Every loader returns CPU tensors `Splits(train_x, train_y, test_x, test_y)` with images as
uint8 [N, C, H, W] and labels as int64 [N]. `DATASETS` is the registry keyed by dataset name.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .info import (
    BASE_INFOS,
    DatasetInfo,
    DatasetUnavailableError,
    parse_synthetic_sizes,
)

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 360  # 1797 images -> 1437 train / 360 test


class Splits(NamedTuple):
    """Decoded dataset on the CPU: uint8 images [N, C, H, W] and int64 labels [N]."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: its info, a loader `load(root) -> Splits`, whether decoded tensors
    are worth caching under the data root, and how a user supplies missing files."""

    info: DatasetInfo
    load: Callable[[Path], Splits]
    cache: bool
    fix_hint: str


def _to_nchw_uint8(data: object) -> torch.Tensor:
    """torchvision keeps MNIST as a uint8 tensor [N, H, W] and CIFAR as a numpy array [N, H, W, C]."""
    x = torch.as_tensor(data)
    if x.dim() == 3:
        return x.unsqueeze(1).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()


def _torchvision_loader(class_name: str, key: str) -> Callable[[Path], Splits]:
    def load(root: Path) -> Splits:
        import torchvision.datasets as tvd

        cls = getattr(tvd, class_name)
        try:
            train = cls(root=str(root), train=True, download=True)
            test = cls(root=str(root), train=False, download=True)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise DatasetUnavailableError(
                f"dataset {key!r} is not available under data root {str(root)!r} and could not be "
                f"downloaded ({type(exc).__name__}: {first_line}). To fix: {DATASETS[key].fix_hint}"
            ) from exc
        return Splits(
            _to_nchw_uint8(train.data),
            torch.as_tensor(train.targets, dtype=torch.int64),
            _to_nchw_uint8(test.data),
            torch.as_tensor(test.targets, dtype=torch.int64),
        )

    return load


def load_digits(root: Path | None = None) -> Splits:
    """scikit-learn's bundled 8x8 digits (UCI optdigits, 1797 images, grey levels 0..16).

    Pixels are scaled to uint8 by round(v * 255 / 16); a permutation seeded with DIGITS_SPLIT_SEED
    sends 360 images to test and 1437 to train (each kept in the original order).
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float64)
    x = torch.round(images * (255.0 / 16.0)).to(torch.uint8).unsqueeze(1)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    test_idx = perm[:DIGITS_TEST_SIZE].sort().values
    train_idx = perm[DIGITS_TEST_SIZE:].sort().values
    return Splits(x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def synthetic_templates(base: str, generator: torch.Generator) -> torch.Tensor:
    """One smooth, left-right symmetric unit-variance template per class, [K, C, H, W].

    Templates are random low-resolution grids (about H/8 cells a side) upsampled bilinearly, so
    crops shifted by a few pixels and horizontal flips keep the class signal (CIFAR augmentation).
    """
    info = BASE_INFOS[base]
    c, h, w = info.input_shape
    grid = max(2, h // 8)
    low = torch.randn(info.num_classes, c, grid, grid, generator=generator)
    low = (low + low.flip(-1)) / 2
    t = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    t = t - t.mean(dim=(1, 2, 3), keepdim=True)
    return t / t.std(dim=(1, 2, 3), keepdim=True)


def _synthetic_sample(info: DatasetInfo, templates: torch.Tensor, n: int, g: torch.Generator) -> tuple:
    """n images x = 255 * (mean + std * (0.6 * template[y] + 0.8 * noise)), clipped to uint8; balanced labels."""
    k = info.num_classes
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    noise = torch.randn((n, *info.input_shape), generator=g)
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    x = 255.0 * (mean + std * (0.6 * templates[y] + 0.8 * noise))
    return x.round().clamp(0, 255).to(torch.uint8), y.to(torch.int64)


def load_synthetic(name: str) -> Splits:
    """Random but learnable data for 'synthetic:<base>[:<train size>[:<test size>]]' (test size 256 by default).

    Fixed seeds (from the base name) make the templates and the test set identical for every
    train size; train images come from their own seeded stream.
    """
    base, n_train, n_test = parse_synthetic_sizes(name)
    info = BASE_INFOS[base]
    seed = zlib.crc32(base.encode())
    templates = synthetic_templates(base, torch.Generator().manual_seed(seed))
    train = _synthetic_sample(info, templates, n_train, torch.Generator().manual_seed(seed + 1))
    test = _synthetic_sample(info, templates, n_test, torch.Generator().manual_seed(seed + 2))
    return Splits(*train, *test)


def _mnist_hint(folder: str) -> str:
    return (
        f"set SPARSITY_LAB_DATA (or pass root=) to a folder containing {folder}/raw/ with torchvision's "
        f"files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        f"t10k-labels-idx1-ubyte.gz), or copy those raw/ files into <data root>/{folder}/raw/, "
        f"or allow internet access so torchvision can download them."
    )


def _cifar_hint(archive: str, folder: str) -> str:
    return (
        f"set SPARSITY_LAB_DATA (or pass root=) to a folder containing torchvision's {archive} "
        f"(or its extracted {folder}/), or copy those files into the data root, "
        f"or allow internet access so torchvision can download them."
    )


DATASETS: dict[str, DatasetSource] = {
    "mnist": DatasetSource(BASE_INFOS["mnist"], _torchvision_loader("MNIST", "mnist"), True, _mnist_hint("MNIST")),
    "fashionmnist": DatasetSource(
        BASE_INFOS["fashionmnist"],
        _torchvision_loader("FashionMNIST", "fashionmnist"),
        True,
        _mnist_hint("FashionMNIST"),
    ),
    "cifar10": DatasetSource(
        BASE_INFOS["cifar10"],
        _torchvision_loader("CIFAR10", "cifar10"),
        True,
        _cifar_hint("cifar-10-python.tar.gz", "cifar-10-batches-py"),
    ),
    "cifar100": DatasetSource(
        BASE_INFOS["cifar100"],
        _torchvision_loader("CIFAR100", "cifar100"),
        True,
        _cifar_hint("cifar-100-python.tar.gz", "cifar-100-python"),
    ),
    # Cached too, though decoding takes milliseconds: importing scikit-learn's loader costs about 0.8 s (scipy),
    # paid by every process that trains on digits (CLI runs, sweep workers, cluster jobs) but the first.
    "digits": DatasetSource(BASE_INFOS["digits"], load_digits, True, "reinstall scikit-learn (it bundles digits)."),
}
