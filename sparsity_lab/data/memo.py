"""An in-process memo of decoded datasets, so a persistent sweep worker reads each dataset once.

``load_splits`` reads the decoded-tensor cache file (``<root>/sparsity_lab_cache/<name>.pt``) and checks
it (shapes, labels); ``load_dataset`` then copies the splits to the training device. A sweep
worker runs many configs one after another on one device, so both are remembered here: the checked CPU
splits per (dataset, cache file), and their copies on each device. An entry is valid only while the cache
file keeps the (mtime, size, inode) it had when it was read, so a cache rebuilt or damaged since is read
and checked again. At most :data:`MAX_ENTRIES` datasets are kept (least recently used dropped first).

The tensors handed out are shared between the calls: callers must not modify them in place (nothing in
sparsity_lab does; subsets and validation splits are new tensors made by indexing).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .sources import Splits

#: Datasets kept in memory (with their device copies); FashionMNIST is 55 MB, CIFAR-10 184 MB per copy.
MAX_ENTRIES = 2

Signature = tuple[int, int, int]


def file_signature(path: Path) -> Signature | None:
    """(mtime in ns, size, inode) of ``path``, or None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclass
class _Entry:
    signature: Signature
    splits: Splits
    on_device: dict[torch.device, Splits] = field(default_factory=dict)


class SplitsMemo:
    """Checked CPU splits per (dataset key, resolved cache path), and their copies per device (LRU, thread-safe)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str, path: Path) -> tuple[str, str]:
        return name, str(path.resolve())

    def get(self, name: str, path: Path) -> Splits | None:
        """The splits remembered for ``name`` read from ``path``, if that file has not changed since."""
        key, now = self._key(name, path), file_signature(path)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now is None or entry.signature != now:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return entry.splits

    def put(self, name: str, path: Path, signature: Signature | None, splits: Splits) -> None:
        """Remember ``splits`` read from ``path`` when it had ``signature`` (taken before reading it)."""
        if signature is None or self.max_entries < 1 or file_signature(path) != signature:
            return  # no file, or it changed while being read: do not trust the pair
        with self._lock:
            self._entries[self._key(name, path)] = _Entry(signature, splits)
            self._entries.move_to_end(self._key(name, path))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def on_device(self, splits: Splits, device: torch.device) -> Splits:
        """``splits`` on ``device``: a remembered copy if ``splits`` came from this memo, else a fresh copy."""
        if device.type == "cpu":
            return Splits(*(t.to(device) for t in splits))
        with self._lock:
            entry = next((e for e in self._entries.values() if e.splits is splits), None)
            if entry is not None and device in entry.on_device:
                return entry.on_device[device]
        moved = Splits(*(t.to(device) for t in splits))
        if entry is not None:
            with self._lock:
                entry.on_device[device] = moved
        return moved

    def clear(self) -> None:
        """Forget everything (frees the device copies once no DeviceData holds them)."""
        with self._lock:
            self._entries.clear()


#: The memo ``load_splits`` and ``load_dataset`` use.
MEMO = SplitsMemo()
