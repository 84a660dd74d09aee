"""Datasets by name, held whole on the training device (README "Architecture": data.py).

Names: mnist, fashionmnist, cifar10, cifar100 (torchvision, download=True into the data root),
digits (scikit-learn's bundled 8×8 digits, seeded 1437/360 split) and synthetic:<name>[:<train
size>] (seeded learnable random data with that dataset's shape, 1024 train / 256 test by default).
"""

from .device_data import AUGMENTERS, SPLITS, DeviceData, crop_flip, epoch_generator
from .info import (
    BASE_INFOS,
    DatasetInfo,
    DatasetUnavailableError,
    dataset_info,
    num_test_examples,
    train_size,
    valid_names_text,
)
from .loading import DATA_ENV, cache_path, data_root, ensure_available, load_dataset, load_splits
from .sources import DATASETS, DatasetSource, Splits, load_digits, load_synthetic

__all__ = [
    "AUGMENTERS",
    "BASE_INFOS",
    "DATASETS",
    "DATA_ENV",
    "SPLITS",
    "DatasetInfo",
    "DatasetSource",
    "DatasetUnavailableError",
    "DeviceData",
    "Splits",
    "cache_path",
    "crop_flip",
    "data_root",
    "dataset_info",
    "ensure_available",
    "epoch_generator",
    "load_dataset",
    "load_digits",
    "load_splits",
    "load_synthetic",
    "num_test_examples",
    "train_size",
    "valid_names_text",
]
