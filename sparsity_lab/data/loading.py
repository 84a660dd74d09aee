"""`load_dataset`: data root resolution, the decoded-tensor cache, validation split and subsets.

Data root: the `root` argument, else $SPARSITY_LAB_DATA, else the checkout's data/ (_roots.py). After the first decode of a
downloadable dataset, its uint8 tensors are cached as <root>/sparsity_lab_cache/<name>.pt
(torch.save of plain tensors, read back with weights_only=True); delete that folder to force a
re-decode. A cache that cannot be read or does not match the dataset's shape is rebuilt.

Preparing a dataset (torchvision's download/extract, then the cache write) holds a file lock
<root>/sparsity_lab_cache/<name>.lock, so sweep workers starting together never read files another
worker is still extracting: the first prepares, the others wait and then read the cache.

A process remembers the checked splits and their device copies (``memo``), so a persistent sweep worker
reads and checks each dataset once while its cache file is unchanged, and copies it to its device once.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from filelock import FileLock

from sparsity_lab import _roots

from .device_data import DeviceData, canonical_device
from .info import SYNTHETIC_PREFIX, DatasetUnavailableError, canonical_name, dataset_info
from .integrity import check_labels, check_local_files
from .memo import MEMO, file_signature
from .preflight import check_root, missing_root_error, permission_error
from .sources import DATASETS, Splits, load_synthetic

DATA_ENV = "SPARSITY_LAB_DATA"
CACHE_DIR = "sparsity_lab_cache"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root` if given, else $SPARSITY_LAB_DATA, else the checkout's data/ (``_roots``)."""
    if root is not None:
        return Path(root)
    return _roots.data_root()


def cache_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the decoded tensors of dataset `name` are cached."""
    return data_root(root) / CACHE_DIR / f"{canonical_name(name)}.pt"


def _read_cache(path: Path, input_shape: tuple[int, int, int], key: str = "") -> Splits | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        splits = Splits(*(blob[k] for k in Splits._fields))
    except Exception as exc:  # corrupt or foreign file: rebuild it
        warnings.warn(f"ignoring unreadable dataset cache {path} ({exc}); rebuilding it", stacklevel=3)
        return None
    ok = all(
        x.dtype == torch.uint8 and tuple(x.shape[1:]) == input_shape and y.dtype == torch.int64
        and y.shape == (x.shape[0],)
        for x, y in ((splits.train_x, splits.train_y), (splits.test_x, splits.test_y))
    )
    if not ok:
        warnings.warn(f"dataset cache {path} does not match shape {input_shape}; rebuilding it", stacklevel=3)
        return None
    problem = check_labels(key, splits.train_y, splits.test_y)
    if problem:
        warnings.warn(f"dataset cache {path}: {problem}; rebuilding it from the dataset's files", stacklevel=3)
        return None
    return splits


def _write_cache(path: Path, splits: Splits) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dict(splits._asdict()), tmp)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"could not write dataset cache {path} ({exc}); continuing without it", stacklevel=3)
        tmp.unlink(missing_ok=True)


def load_splits(name: str, root: str | os.PathLike | None = None) -> Splits:
    """Decoded CPU tensors of dataset `name` (from the cache when possible; remembered in this process while
    the cache file is unchanged, see ``memo``: do not modify them in place)."""
    key = canonical_name(name)
    info = dataset_info(key)  # ValueError for unknown names
    if key.startswith(SYNTHETIC_PREFIX):
        return load_synthetic(key)
    source = DATASETS[key]
    base = data_root(root)
    if not source.cache:
        return source.load(base)
    check_root(base, key)
    path = cache_path(key, base)
    existed = base.exists()
    remembered = MEMO.get(key, path)
    if remembered is not None:
        return remembered
    try:
        signature = file_signature(path)  # before reading: a file replaced meanwhile is not remembered
        cached = _read_cache(path, info.input_shape, key)
        if cached is not None:
            MEMO.put(key, path, signature, cached)
            return cached
        with _preparing(path):
            signature = file_signature(path)
            cached = _read_cache(path, info.input_shape, key)  # another process may have finished meanwhile
            if cached is not None:
                MEMO.put(key, path, signature, cached)
                return cached
            splits = _load_checked(key, source.load, base)
            _write_cache(path, splits)
            MEMO.put(key, path, file_signature(path), splits)
    except PermissionError as err:
        raise permission_error(err, base, key) from err
    except DatasetUnavailableError as err:
        raise (err if existed else missing_root_error(err, base, key, source.fix_hint)) from err.__cause__
    return splits


def _load_checked(key: str, load: Callable[[Path], Splits], base: Path) -> Splits:
    """The source's splits after checking its local files (checksums) and decoded labels."""
    check_local_files(key, base)
    splits = load(base)
    problem = check_labels(key, splits.train_y, splits.test_y)
    if problem:
        raise DatasetUnavailableError(f"dataset {key!r} under data root {str(base)!r}: {problem}; its files are "
                                      "not the official ones: delete them so they are downloaded again")
    return splits


def ensure_available(name: str, root: str | os.PathLike | None = None) -> None:
    """Make sure dataset ``name`` can be loaded (cache present, else decode and cache it) before a run
    directory is created; DatasetUnavailableError (one line, how to fix) otherwise."""
    key = canonical_name(name)
    if key.startswith(SYNTHETIC_PREFIX) or not DATASETS[dataset_info(key).name].cache:
        return
    base = data_root(root)
    check_root(base, key)
    path = cache_path(key, base)
    try:
        if path.is_file() and os.access(path, os.R_OK):
            return
    except PermissionError as err:
        raise permission_error(err, base, key) from err
    load_splits(key, base)


@contextlib.contextmanager
def _preparing(cache_file: Path) -> Iterator[None]:
    """Hold ``<cache>.lock`` while a dataset is downloaded/extracted and cached (one process at a time).
    A data root where no lock file can be made (read-only) is prepared without one."""
    lock_path = cache_file.with_suffix(".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path))
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


#: Seed of the permutation test_subset takes its first examples from (fixed: one evaluation set for all runs).
TEST_SUBSET_SEED = 0


def _check_count(label: str, value: object, low: int, high: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{label}={value!r} must be an integer in [{low}, {high}]")


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    val_size: int = 0,
    val_seed: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
) -> DeviceData:
    """Load dataset `name` onto `device` as uint8 tensors.

    val_size > 0 holds out that many training examples as the "val" split and train_subset keeps
    that many of the remaining ones; both come from one permutation of the training set seeded by
    val_seed (so they are disjoint), and each keeps the original order of its examples.
    test_subset keeps that many test examples: the first of a permutation seeded by TEST_SUBSET_SEED,
    the same examples for every run and seed (so methods are compared on one evaluation set), in their
    original order; a CPU budget's way to make evaluation cheap (docs/quick-retune.md).
    Raises ValueError for unknown names or bad sizes, DatasetUnavailableError if files are missing.
    """
    info = dataset_info(name)
    dev = canonical_device(device)
    splits = MEMO.on_device(load_splits(info.name, root), dev)  # the full splits on dev, copied once per process
    n_train = int(splits.train_y.shape[0])
    _check_count("val_size", val_size, 0, n_train - 1)
    _check_count("train_subset", train_subset, 1, n_train - val_size, allow_none=True)
    if isinstance(val_seed, bool) or not isinstance(val_seed, int):
        raise ValueError(f"val_seed={val_seed!r} must be an integer")
    train_x, train_y, val_x, val_y = splits.train_x, splits.train_y, None, None
    if val_size > 0 or train_subset is not None:
        perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(val_seed))
        rest = perm[val_size:] if train_subset is None else perm[val_size : val_size + train_subset]
        train_idx = rest.sort().values.to(dev)
        train_x, train_y = splits.train_x[train_idx], splits.train_y[train_idx]
        if val_size > 0:
            val_idx = perm[:val_size].sort().values.to(dev)
            val_x, val_y = splits.train_x[val_idx], splits.train_y[val_idx]
    test_x, test_y = splits.test_x, splits.test_y
    _check_count("test_subset", test_subset, 1, int(test_y.shape[0]), allow_none=True)
    if test_subset is not None:
        perm = torch.randperm(int(test_y.shape[0]), generator=torch.Generator().manual_seed(TEST_SUBSET_SEED))
        keep = perm[:test_subset].sort().values.to(dev)
        test_x, test_y = test_x[keep], test_y[keep]
    return DeviceData(info=info, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, val_x=val_x,
                      val_y=val_y, device=dev)
