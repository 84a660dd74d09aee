"""Checks of a dataset's local files and decoded labels against known checksums and class counts.

Refused with one line naming the file: a corrupt or truncated ``.gz``, a zero-filled extracted file, or labels shifted by one
must be named with how to fix them, never reported as a failed download or trained on silently.
Archive md5s are torchvision's own (``resources``, ``tgz_md5``, ``train_list``/``test_list``); the
md5s of the extracted MNIST/FashionMNIST files and of their label bytes were computed from the
archives that match torchvision's md5s; class counts are those of the official splits.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from .info import DatasetUnavailableError

#: md5 of the extracted idx files of torchvision's MNIST-style folders.
EXTRACTED_MD5 = {
    "MNIST": {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
              "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
              "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
              "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
    "FashionMNIST": {"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                     "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
                     "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
                     "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"},
}
#: md5 of the label bytes (train, test) as uint8, which decoded labels (cache or files) must match.
LABEL_MD5 = {"mnist": ("e86ee40d66677c011a9abda399ec8c4d", "073c3904dfbd3e141ff8aa01cfde6b15"),
             "fashionmnist": ("3236f6424fc25388b2834cb19942cf7e", "8dea97a4e78c1bd1b5a6e8efbb870b6e")}
#: Examples per class (train, test).
CLASS_COUNTS: dict[str, tuple[list[int], list[int]]] = {
    "mnist": ([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
              [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    "fashionmnist": ([6000] * 10, [1000] * 10),
    "cifar10": ([5000] * 10, [1000] * 10),
    "cifar100": ([500] * 100, [100] * 100),
}
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def known_files(key: str, root: Path) -> dict[Path, str]:
    """``{local file: md5}`` of every file torchvision reads or extracts for dataset ``key`` under ``root``."""
    if key not in _TORCHVISION_CLASS:
        return {}
    import torchvision.datasets as tvd

    cls = getattr(tvd, _TORCHVISION_CLASS[key])
    if hasattr(cls, "resources"):  # MNIST family: root/<Class>/raw/<file>.gz and the extracted file
        raw = root / cls.__name__ / "raw"
        files = {raw / name: md5 for name, md5 in cls.resources}
        files.update({raw / name: md5 for name, md5 in EXTRACTED_MD5.get(cls.__name__, {}).items()})
        return files
    files = {root / cls.filename: cls.tgz_md5}
    files.update({root / cls.base_folder / name: md5 for name, md5 in cls.train_list + cls.test_list})
    return files


def check_local_files(key: str, root: Path) -> None:
    """DatasetUnavailableError naming the first present file whose md5 is wrong (corrupt, truncated)."""
    for path, expected in known_files(key, root).items():
        if path.is_file() and md5_of(path) != expected:
            size = os.path.getsize(path)
            raise DatasetUnavailableError(
                f"dataset {key!r}: file {str(path)!r} is corrupt or truncated ({size} bytes, md5 differs from "
                f"the official file's {expected}); delete it so it is extracted or downloaded again, "
                "or replace it with a good copy")


def check_labels(key: str, train_y: torch.Tensor, test_y: torch.Tensor) -> str | None:
    """Why the decoded labels are not the official ones (class counts, label checksum), or None."""
    for split, y, counts in zip(("train", "test"), (train_y, test_y), CLASS_COUNTS.get(key, ((), ()))):
        if not counts:
            continue
        if y.numel() != sum(counts) or int(y.min()) < 0 or int(y.max()) >= len(counts):
            return f"{split} labels: {y.numel()} labels in [{int(y.min())}, {int(y.max())}], expected " \
                   f"{sum(counts)} in [0, {len(counts) - 1}]"
        found = torch.bincount(y, minlength=len(counts)).tolist()
        if found != counts:
            return f"{split} labels: class counts {found}, expected {counts}"
    for split, y, expected in zip(("train", "test"), (train_y, test_y), LABEL_MD5.get(key, ())):
        if hashlib.md5(y.to(torch.uint8).numpy().tobytes()).hexdigest() != expected:
            return f"{split} labels differ from the official ones (checksum)"
    return None
