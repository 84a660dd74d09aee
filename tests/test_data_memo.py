"""The in-process memo of decoded datasets (data/memo.py): read and checked once per unchanged cache file,
copied to a device once, bounded in size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from sparsity_lab.data import DATASETS, cache_path, integrity, load_dataset, sources
from sparsity_lab.data.memo import MEMO, SplitsMemo, file_signature


def _splits(n: int, fill: int = 0) -> sources.Splits:
    x = torch.full((n, 1, 28, 28), fill, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    y = torch.arange(n, dtype=torch.int64) % 10
    return sources.Splits(x, y, x[: n // 2].clone(), y[: n // 2].clone())


@pytest.fixture
def fake_mnist(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """MNIST replaced by 40 tiny decoded examples (label checks off); counts source decodes and torch.load calls."""
    calls = {"decode": 0, "torch.load": 0}

    def decode(root: Path) -> sources.Splits:
        calls["decode"] += 1
        return _splits(40)

    real_load = torch.load

    def counting_load(*args: object, **kwargs: object) -> object:
        calls["torch.load"] += 1
        return real_load(*args, **kwargs)

    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], load=decode))
    monkeypatch.delitem(integrity.CLASS_COUNTS, "mnist")
    monkeypatch.delitem(integrity.LABEL_MD5, "mnist")
    monkeypatch.setattr(torch, "load", counting_load)
    MEMO.clear()
    yield calls
    MEMO.clear()


def test_second_load_reads_nothing(tmp_path: Path, fake_mnist: dict[str, int]) -> None:
    first = load_dataset("mnist", root=tmp_path)
    assert fake_mnist == {"decode": 1, "torch.load": 0} and cache_path("mnist", tmp_path).is_file()
    MEMO.clear()  # a fresh worker: reads the cache file once
    again = load_dataset("mnist", root=tmp_path)
    assert fake_mnist == {"decode": 1, "torch.load": 1}
    third = load_dataset("mnist", root=tmp_path, val_size=5, train_subset=10, test_subset=4)
    assert fake_mnist == {"decode": 1, "torch.load": 1}  # memo hit, subsets are index operations on top
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    MEMO.clear()
    fresh = load_dataset("mnist", root=tmp_path, val_size=5, train_subset=10, test_subset=4)
    for split in ("train", "val", "test"):
        assert all(torch.equal(a, b) for a, b in zip(third.tensors(split), fresh.tensors(split)))


def test_a_changed_or_damaged_cache_file_is_read_again(tmp_path: Path, fake_mnist: dict[str, int]) -> None:
    load_dataset("mnist", root=tmp_path)
    path = cache_path("mnist", tmp_path)
    torch.save(dict(_splits(40, fill=7)._asdict()), path)  # same shapes, other pixels
    assert load_dataset("mnist", root=tmp_path).train_x[:, 0, 1, 1].unique().tolist() == [7]
    assert fake_mnist["torch.load"] == 1
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = load_dataset("mnist", root=tmp_path)
    assert fake_mnist["decode"] == 2 and rebuilt.train_x[:, 0, 1, 1].unique().tolist() == [0]


def test_device_copies_of_the_full_splits_are_made_once(tmp_path: Path, fake_mnist: dict[str, int]) -> None:
    """The meta device stands in for a GPU (no CUDA here): the same copy serves every load on that device."""
    a = load_dataset("mnist", root=tmp_path, device="meta")
    b = load_dataset("mnist", root=tmp_path, device="meta", train_subset=10)
    c = load_dataset("mnist", root=tmp_path, device="meta")
    assert a.train_x.device.type == "meta" and b.num_examples("train") == 10
    assert c.train_x is a.train_x and c.test_y is a.test_y


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_copies_are_reused(tmp_path: Path, fake_mnist: dict[str, int]) -> None:
    a, b = (load_dataset("mnist", root=tmp_path, device="cuda") for _ in range(2))
    assert b.train_x is a.train_x and b.train_x.is_cuda


def test_memo_keeps_at_most_max_entries_and_checks_the_file(tmp_path: Path) -> None:
    memo = SplitsMemo(max_entries=2)
    paths = [tmp_path / f"{i}.pt" for i in range(3)]
    for i, path in enumerate(paths):
        path.write_bytes(b"x" * (i + 1))
        memo.put(f"d{i}", path, file_signature(path), _splits(4, fill=i))
    assert memo.get("d0", paths[0]) is None  # least recently used, dropped
    assert memo.get("d1", paths[1]) is not None and memo.get("d2", paths[2]) is not None
    memo.put("d0", paths[0], (0, 0, 0), _splits(4))  # the file changed while it was being read
    assert memo.get("d0", paths[0]) is None
    paths[1].unlink()
    assert memo.get("d1", paths[1]) is None
