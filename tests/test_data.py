"""Tests for sparsity_lab.data: real MNIST/FashionMNIST through torchvision, digits, synthetic data,
on-device normalisation/augmentation, seeded batching, validation split, errors and the cache."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from sparsity_lab.data import (
    DATASETS,
    DatasetInfo,
    DatasetUnavailableError,
    DeviceData,
    cache_path,
    crop_flip,
    data_root,
    dataset_info,
    epoch_generator,
    load_dataset,
    load_digits,
)

REPO = Path(__file__).resolve().parents[1]
RAW_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
# Class counts and mean pixels from shared/data/README.md.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _raw_source(folder: str) -> Path | None:
    candidates = [os.environ.get("SPARSITY_LAB_DATA"), REPO / "data", REPO.parent / "shared" / "data",
                  "/work/shared/data"]
    for c in candidates:
        if c and all((Path(c) / folder / "raw" / f).is_file() for f in RAW_FILES):
            return Path(c)
    return None


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable temp data root holding copies of the original MNIST/FashionMNIST .gz files."""
    root = tmp_path_factory.mktemp("data")
    for folder in ("MNIST", "FashionMNIST"):
        src = _raw_source(folder)
        if src is None:
            pytest.skip(f"no {folder}/raw/*.gz files found (set SPARSITY_LAB_DATA or run `make data`)")
        (root / folder / "raw").mkdir(parents=True)
        for f in RAW_FILES:
            shutil.copyfile(src / folder / "raw" / f, root / folder / "raw" / f)
    return root


def test_dataset_info_without_loading() -> None:
    assert dataset_info("mnist") == DatasetInfo("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,), "none")
    assert dataset_info("FashionMNIST").name == "fashionmnist"
    c10 = dataset_info("cifar10")
    assert (c10.input_shape, c10.num_classes, c10.augment) == ((3, 32, 32), 10, "crop_flip")
    assert dataset_info("cifar100").num_classes == 100
    assert dataset_info("digits").input_shape == (1, 8, 8)
    syn = dataset_info("synthetic:cifar10:4096")
    assert (syn.name, syn.input_shape, syn.mean, syn.augment) == ("synthetic:cifar10:4096", (3, 32, 32), c10.mean,
                                                                 "crop_flip")
    assert set(DATASETS) == {"mnist", "fashionmnist", "cifar10", "cifar100", "digits"}


@pytest.mark.parametrize("bad", ["imagenet", "synthetic:imagenet", "synthetic:mnist:0", "synthetic:mnist:x",
                                 "synthetic:mnist:5:6:7", "synthetic:mnist:5:0"])
def test_unknown_dataset_names(bad: str) -> None:
    with pytest.raises(ValueError, match="synthetic") as err:
        dataset_info(bad)
    assert bad in str(err.value)


def test_real_mnist(real_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset("mnist", root=real_root)
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert data.train_x.dtype == torch.uint8 and data.train_y.dtype == torch.int64
    assert torch.bincount(data.train_y).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(data.test_y).tolist() == MNIST_TEST_COUNTS
    assert data.train_x.double().mean().item() == pytest.approx(33.32, abs=0.01)
    assert data.test_x.double().mean().item() == pytest.approx(33.79, abs=0.01)
    # Normalised training pixels have mean ~0 and std ~1 with MNIST's published statistics.
    x = data.normalize(data.train_x)
    assert x.mean().item() == pytest.approx(0.0, abs=1e-3) and x.std().item() == pytest.approx(1.0, abs=1e-3)
    # Second load comes from the cache: torchvision is not consulted at all.
    assert cache_path("mnist", real_root).is_file()
    import torchvision.datasets

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torchvision used despite the cache")

    monkeypatch.setattr(torchvision.datasets, "MNIST", refuse)
    again = load_dataset("mnist", root=real_root)
    assert torch.equal(again.train_x, data.train_x) and torch.equal(again.test_y, data.test_y)


def test_real_fashionmnist(real_root: Path) -> None:
    data = load_dataset("fashionmnist", root=real_root)
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.train_y).tolist() == [6000] * 10
    assert torch.bincount(data.test_y).tolist() == [1000] * 10
    assert data.train_x.double().mean().item() == pytest.approx(72.94, abs=0.01)
    assert data.test_x.double().mean().item() == pytest.approx(73.15, abs=0.01)
    x = data.normalize(data.train_x)
    assert x.mean().item() == pytest.approx(0.0, abs=1e-3) and x.std().item() == pytest.approx(1.0, abs=2e-3)


def test_corrupt_cache_is_rebuilt(real_root: Path) -> None:
    load_dataset("mnist", root=real_root)
    path = cache_path("mnist", real_root)
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="rebuilding"):
        data = load_dataset("mnist", root=real_root)
    assert data.num_examples("train") == 60000
    assert torch.load(path, weights_only=True)["train_x"].shape == (60000, 1, 28, 28)


def test_missing_data_gives_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def no_download(self: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("mnist", root=tmp_path)
    message = str(err.value)
    assert isinstance(err.value, RuntimeError)
    for needle in ("'mnist'", str(tmp_path), "SPARSITY_LAB_DATA", "MNIST/raw/", "internet", "no network"):
        assert needle in message
    assert not cache_path("mnist", tmp_path).exists()


def test_data_root_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPARSITY_LAB_DATA", raising=False)
    assert data_root() == Path(__file__).resolve().parents[1] / "data"  # the checkout's, from any directory
    monkeypatch.setenv("SPARSITY_LAB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("elsewhere") == Path("elsewhere")


def test_digits_real_and_seeded() -> None:
    from sklearn.datasets import load_digits as sk_digits

    data = load_dataset("digits")
    assert data.train_x.shape == (1437, 1, 8, 8) and data.test_x.shape == (360, 1, 8, 8)
    assert data.train_x.max().item() == 255 and data.train_x.min().item() == 0
    # The split partitions sklearn's 1797 images: class counts add up exactly.
    total = torch.bincount(data.train_y, minlength=10) + torch.bincount(data.test_y, minlength=10)
    assert total.tolist() == torch.bincount(torch.as_tensor(sk_digits().target)).tolist()
    assert torch.equal(load_digits().train_x, data.train_x)  # seeded split is reproducible
    # info's mean/std are the statistics of the training split (0..16 grey levels scaled to 0..255).
    x = data.train_x.double() / 255
    assert data.info.mean[0] == pytest.approx(x.mean().item(), abs=1e-4)
    assert data.info.std[0] == pytest.approx(x.std().item(), abs=1e-4)


def _images_as_rows(x: torch.Tensor) -> list[bytes]:
    return [bytes(row.tolist()) for row in x.flatten(1)]


def test_synthetic_shapes_determinism_and_signal() -> None:
    data = load_dataset("synthetic:cifar10")
    assert data.train_x.shape == (1024, 3, 32, 32) and data.test_x.shape == (256, 3, 32, 32)
    assert torch.bincount(data.train_y).tolist() == [103] * 4 + [102] * 6  # balanced labels
    again = load_dataset("synthetic:cifar10")
    assert torch.equal(again.train_x, data.train_x) and torch.equal(again.test_y, data.test_y)
    big = load_dataset("synthetic:cifar10:4096")
    assert big.num_examples("train") == 4096 and torch.equal(big.test_x, data.test_x)
    assert load_dataset("synthetic:mnist").train_x.shape == (1024, 1, 28, 28)
    assert load_dataset("synthetic:cifar100").num_examples("test") == 256
    # Learnable signal: nearest class mean (fitted on train) classifies test images, with and without augmentation.
    x_train = data.normalize(data.train_x).flatten(1)
    centroids = torch.stack([x_train[data.train_y == k].mean(0) for k in range(10)])
    x_test, y_test = data.get_batch("test", torch.arange(256))
    assert (torch.cdist(x_test.flatten(1), centroids).argmin(1) == y_test).float().mean() > 0.9
    x_aug, _ = data.get_batch("test", torch.arange(256), augment=True, generator=torch.Generator().manual_seed(0))
    assert (torch.cdist(x_aug.flatten(1), centroids).argmin(1) == y_test).float().mean() > 0.8


def test_synthetic_accuracy_rises_with_training() -> None:
    torch.manual_seed(0)
    data = load_dataset("synthetic:fashionmnist")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def accuracy() -> float:
        with torch.no_grad():
            return sum((model(x).argmax(1) == y).sum().item() for x, y in data.batches("test", 128)) / 256

    before = accuracy()
    for x, y in data.batches("train", 64, shuffle=True, generator=epoch_generator(0, 0)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert before < 0.3 and accuracy() > 0.8


def test_batches_normalise_exactly_and_cover_the_split() -> None:
    data = load_dataset("synthetic:cifar10")
    idx = torch.tensor([5, 0, 17])
    x, y = data.get_batch("train", idx)
    mean = torch.tensor(data.info.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.info.std).view(1, 3, 1, 1)
    expected = (data.train_x[idx].double() / 255 - mean.double()) / std.double()
    assert x.dtype == torch.float32 and torch.allclose(x.double(), expected, atol=1e-5)
    assert torch.equal(y, data.train_y[idx])
    plain = data.batch_indices("train", 100)
    assert [len(b) for b in plain] == [100] * 10 + [24] and torch.equal(torch.cat(plain), torch.arange(1024))
    shuffled = data.batch_indices("train", 100, shuffle=True, generator=epoch_generator(1, 0), drop_last=True)
    assert [len(b) for b in shuffled] == [100] * 10
    full = torch.cat(data.batch_indices("train", 100, shuffle=True, generator=epoch_generator(1, 0)))
    assert torch.equal(full.sort().values, torch.arange(1024))  # a permutation: every example once
    assert torch.equal(torch.cat(shuffled), full[:1000])
    assert data.batch_indices("test", 512, drop_last=True) == []


def test_same_seed_same_batches_and_epochs_differ() -> None:
    data = load_dataset("synthetic:cifar10")

    def epoch(seed: int, e: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        g = DeviceData.epoch_generator(seed, e)
        return list(data.batches("train", 256, shuffle=True, augment=True, generator=g))

    a, b = epoch(0, 3), epoch(0, 3)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    c = epoch(0, 4)
    assert not torch.equal(a[0][1], c[0][1])
    assert not torch.equal(a[0][1], epoch(1, 3)[0][1])
    first = torch.randint(0, 2**31, (4,), generator=epoch_generator(2, 5))
    assert torch.equal(first, torch.randint(0, 2**31, (4,), generator=epoch_generator(2, 5)))
    assert not torch.equal(first, torch.randint(0, 2**31, (4,), generator=epoch_generator(5, 2)))


def _reference_crop_flip(x: torch.Tensor, seed: int, pad: int = 4) -> torch.Tensor:
    """Per-image loop version of crop_flip drawing the same random numbers in the same order."""
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=g)
    flips = torch.randint(0, 2, (b,), generator=g).bool()
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    out = []
    for i in range(b):
        oy, ox = offsets[0, i].item(), offsets[1, i].item()
        crop = padded[i, :, oy : oy + h, ox : ox + w]
        out.append(crop.flip(-1) if flips[i] else crop)
    return torch.stack(out)


def test_crop_flip_matches_reference_and_varies() -> None:
    x = torch.randn(64, 3, 32, 32)
    out = crop_flip(x, torch.Generator().manual_seed(7))
    assert out.shape == x.shape
    assert torch.equal(out, _reference_crop_flip(x, 7))
    g = torch.Generator().manual_seed(7)
    offsets = torch.randint(0, 9, (2, 64), generator=g)
    flips = torch.randint(0, 2, (64,), generator=g).bool()
    centred = (offsets == 4).all(0)
    assert 10 < flips.sum() < 54 and (~centred).sum() > 50 and len(set(offsets.flatten().tolist())) == 9
    # Centred and unflipped images are unchanged; centred and flipped ones are exact mirror images.
    assert torch.equal(out[centred & ~flips], x[centred & ~flips])
    assert torch.equal(out[centred & flips], x[centred & flips].flip(-1))
    assert not torch.equal(out[~centred], x[~centred])


def test_augmentation_only_for_cifar_style_data() -> None:
    mnist = load_dataset("synthetic:mnist")
    idx = torch.arange(32)
    plain, _ = mnist.get_batch("train", idx)
    aug, _ = mnist.get_batch("train", idx, augment=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain, aug)
    cifar = load_dataset("synthetic:cifar10")
    plain, y = cifar.get_batch("train", idx)
    aug, y_aug = cifar.get_batch("train", idx, augment=True, generator=torch.Generator().manual_seed(0))
    assert aug.shape == (32, 3, 32, 32) and torch.equal(y, y_aug) and not torch.equal(plain, aug)


def test_validation_split_and_train_subset() -> None:
    full = load_dataset("synthetic:mnist")
    data = load_dataset("synthetic:mnist", val_size=200, val_seed=3)
    assert (data.num_examples("train"), data.num_examples("val"), data.num_examples("test")) == (824, 200, 256)
    train_rows, val_rows = _images_as_rows(data.train_x), _images_as_rows(data.val_x)
    assert not set(train_rows) & set(val_rows)
    assert Counter(train_rows) + Counter(val_rows) == Counter(_images_as_rows(full.train_x))
    assert torch.equal(load_dataset("synthetic:mnist", val_size=200, val_seed=3).val_x, data.val_x)
    assert not torch.equal(load_dataset("synthetic:mnist", val_size=200, val_seed=4).val_x, data.val_x)
    sub = load_dataset("synthetic:mnist", val_size=200, val_seed=3, train_subset=100)
    assert sub.num_examples("train") == 100 and torch.equal(sub.val_x, data.val_x)
    assert set(_images_as_rows(sub.train_x)) <= set(train_rows)
    x, y = next(data.batches("val", 50))
    assert x.shape == (50, 1, 28, 28) and torch.equal(y, data.val_y[:50])
    assert load_dataset("synthetic:mnist", train_subset=10).num_examples("train") == 10


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"val_size": 1024}, "val_size=1024"),
        ({"val_size": -1}, "val_size=-1"),
        ({"val_size": True}, "val_size=True"),
        ({"train_subset": 0}, "train_subset=0"),
        ({"val_size": 24, "train_subset": 1001}, r"\[1, 1000\]"),
        ({"val_seed": 1.5}, "val_seed=1.5"),
    ],
)
def test_bad_sizes_raise(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        load_dataset("synthetic:cifar10", **kwargs)


def test_split_and_batch_errors() -> None:
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="'valid'"):
        data.num_examples("valid")
    with pytest.raises(ValueError, match="val_size"):
        data.num_examples("val")
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices("train", 0)
    assert data.splits() == ("train", "test")
    assert data.to("cpu") is data
    with pytest.raises(ValueError, match="uint8"):
        DeviceData(data.info, data.train_x.float(), data.train_y, data.test_x, data.test_y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_same_batches_on_cpu_and_gpu() -> None:
    cpu = load_dataset("synthetic:cifar10")
    gpu = cpu.to("cuda")
    assert gpu.train_x.is_cuda and gpu.device == gpu.train_x.device and gpu.device.type == "cuda"
    assert load_dataset("synthetic:cifar10", device="cuda").device == gpu.device
    a = list(cpu.batches("train", 128, shuffle=True, augment=True, generator=epoch_generator(0, 1)))
    b = list(gpu.batches("train", 128, shuffle=True, augment=True, generator=epoch_generator(0, 1)))
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xb.is_cuda and torch.equal(ya, yb.cpu()) and torch.allclose(xa, xb.cpu(), atol=1e-6)


def test_workers_preparing_one_dataset_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweep workers starting together must not read files another is still extracting (seen on the H100:
    4 workers, fresh data root, torchvision's MNIST extraction raced). The first prepares under a lock and
    writes the cache; the others wait, then read the cache, so the source is loaded exactly once."""
    import dataclasses
    import threading
    import time

    from sparsity_lab.data import sources

    state = {"inside": 0, "most": 0, "calls": 0}
    guard = threading.Lock()

    def slow_load(root: Path) -> sources.Splits:
        with guard:
            state["inside"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["inside"])
        time.sleep(0.3)
        with guard:
            state["inside"] -= 1
        x = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
        y = torch.arange(4, dtype=torch.int64)
        return sources.Splits(x, y, x.clone(), y.clone())

    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], load=slow_load))
    from sparsity_lab.data import integrity  # the fake labels are not MNIST's: skip the label checks

    monkeypatch.delitem(integrity.CLASS_COUNTS, "mnist")
    monkeypatch.delitem(integrity.LABEL_MD5, "mnist")
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        load_dataset("mnist", root=tmp_path).train_y.numel())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [4, 4, 4]
    assert state["most"] == 1 and state["calls"] == 1
    assert cache_path("mnist", tmp_path).is_file()


def test_synthetic_test_size_is_optional_and_checked() -> None:
    from sparsity_lab.data.info import num_test_examples

    small = load_dataset("synthetic:cifar10:64:32")
    assert small.train_x.shape[0] == 64 and small.num_examples("test") == 32
    assert num_test_examples("synthetic:cifar10:64:32") == 32 and num_test_examples("synthetic:cifar10:64") == 256
    with pytest.raises(ValueError, match="synthetic test size 'x'"):
        load_dataset("synthetic:cifar10:64:x")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("synthetic:cifar10:64:32:1")
