"""Dataset descriptions that need no data: shapes, class counts, normalisation, augmentation.

`dataset_info(name)` is what config validation uses; it never touches the disk. Per-dataset
mean/std and the CIFAR augmentation policy follow docs/methods.md §3 ("Normalise with per-dataset
mean/std"; "random crop 32 with 4 reflect padding + horizontal flip for CIFAR").
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsity_lab.errors import UserError

AUGMENTATIONS = ("none", "crop_flip")
SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_DEFAULT_TRAIN = 1024
SYNTHETIC_DEFAULT_TEST = 256
SYNTHETIC_MAX_TRAIN = 1_000_000  # a typo such as synthetic:cifar10:40960000 must not allocate 126 GB


class DatasetUnavailableError(UserError, RuntimeError):
    """The dataset's files are missing and could not be downloaded (one message says how to fix it)."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    input_shape is (C, H, W); mean/std are per-channel on the [0, 1] pixel scale;
    augment is "none" or "crop_flip" (random 32-crop of the 4-reflect-padded image + horizontal flip).
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment={self.augment!r} is not one of {AUGMENTATIONS}")
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"{self.name}: mean/std need {channels} values (one per channel), got {self.mean}, {self.std}"
            )


# Real datasets. digits' mean/std are the pixel statistics of its seeded 1437-image training split
# (sources.DIGITS_SPLIT_SEED), on the uint8 scale produced by sources.load_digits; tests recompute them.
BASE_INFOS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,)),
    "fashionmnist": DatasetInfo("fashionmnist", (1, 28, 28), 10, (0.2860,), (0.3530,)),
    "cifar10": DatasetInfo(
        "cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "crop_flip"
    ),
    "cifar100": DatasetInfo(
        "cifar100", (3, 32, 32), 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "crop_flip"
    ),
    "digits": DatasetInfo("digits", (1, 8, 8), 10, (0.3057,), (0.3759,)),
}


#: (train, test) examples of each real dataset (torchvision's splits; digits: sources.DIGITS_TEST_SIZE).
SPLIT_SIZES: dict[str, tuple[int, int]] = {"mnist": (60_000, 10_000), "fashionmnist": (60_000, 10_000),
                                           "cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
                                           "digits": (1437, 360)}


def train_size(name: str) -> int:
    """Training examples of dataset ``name`` without loading it (config validation bounds train_subset)."""
    key = canonical_name(name)
    if key.startswith(SYNTHETIC_PREFIX):
        return parse_synthetic(key)[1]
    return SPLIT_SIZES[dataset_info(key).name][0]


def num_test_examples(name: str) -> int:
    """Test examples of dataset ``name`` without loading it (config validation bounds test_subset)."""
    key = canonical_name(name)
    if key.startswith(SYNTHETIC_PREFIX):
        return parse_synthetic_sizes(key)[2]
    return SPLIT_SIZES[dataset_info(key).name][1]


def valid_names_text() -> str:
    """Human-readable list of accepted dataset names (used in error messages)."""
    names = ", ".join(sorted(BASE_INFOS))
    return f"{names}, or synthetic:<one of those>[:<train size>[:<test size>]] (e.g. synthetic:cifar10:4096)"


def parse_synthetic(name: str) -> tuple[str, int]:
    """Split 'synthetic:<base>[:<train size>[:<test size>]]' into (base, train size); ValueError if malformed."""
    return parse_synthetic_sizes(name)[:2]


def parse_synthetic_sizes(name: str) -> tuple[str, int, int]:
    """(base, train size, test size) of 'synthetic:<base>[:<train size>[:<test size>]]' (test size 256 unless
    given: a smaller one keeps CPU rehearsals of big models cheap); ValueError naming the bad part."""
    parts = name[len(SYNTHETIC_PREFIX):].split(":")
    if len(parts) > 3 or parts[0] not in BASE_INFOS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {valid_names_text()}")
    sizes = [SYNTHETIC_DEFAULT_TRAIN, SYNTHETIC_DEFAULT_TEST]
    for i, (text, what) in enumerate(zip(parts[1:], ("train", "test"))):
        if not text.isdigit() or not 1 <= int(text) <= SYNTHETIC_MAX_TRAIN:
            raise ValueError(
                f"dataset {name!r}: synthetic {what} size {text!r} must be an integer in [1, {SYNTHETIC_MAX_TRAIN}] "
                f"(e.g. synthetic:{parts[0]}:4096)"
            )
        sizes[i] = int(text)
    return parts[0], sizes[0], sizes[1]


def canonical_name(name: str) -> str:
    """Lower-case, stripped form of a dataset name ('FashionMNIST' -> 'fashionmnist')."""
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {name!r}; valid names: {valid_names_text()}")
    return name.strip().lower()


def dataset_info(name: str) -> DatasetInfo:
    """Describe dataset `name` without loading it; ValueError listing the valid names if unknown.

    A synthetic dataset has the shape, class count, mean/std and augmentation of its base dataset.
    """
    key = canonical_name(name)
    if key in BASE_INFOS:
        return BASE_INFOS[key]
    if key.startswith(SYNTHETIC_PREFIX):
        base, _ = parse_synthetic(key)
        b = BASE_INFOS[base]
        return DatasetInfo(key, b.input_shape, b.num_classes, b.mean, b.std, b.augment)
    raise ValueError(f"unknown dataset {name!r}; valid names: {valid_names_text()}")
