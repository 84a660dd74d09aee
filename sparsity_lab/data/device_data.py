"""A whole dataset held as uint8 tensors on the training device, with on-device batching.

Batches are normalised on the device, x = (u / 255 − mean_c) / std_c (docs/methods.md §3), and for
CIFAR-style datasets (info.augment == "crop_flip") optionally augmented by a random 32×32 crop of
the 4-pixel reflect-padded image plus a horizontal flip with probability 1/2, vectorised as one
gather. Every random number (batch order, crop offsets, flips) is drawn from a CPU
`torch.Generator` and then moved to the device, so one seed gives the same batches on CPU and GPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from .info import DatasetInfo

SPLITS = ("train", "val", "test")
CROP_PADDING = 4


def canonical_device(device: str | torch.device) -> torch.device:
    """The device a tensor placed on `device` reports ("cuda" -> "cuda:0" on GPU 0)."""
    return torch.empty(0, device=device).device


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded by a hash of (seed, epoch): distinct pairs give unrelated streams."""
    digest = hashlib.sha256(f"sparsity_lab:{int(seed)}:{int(epoch)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def draw_crop_flip(b: int, generator: torch.Generator | None = None,
                   padding: int = CROP_PADDING) -> tuple[torch.Tensor, torch.Tensor]:
    """The random numbers of one `crop_flip` batch of `b` images, on the CPU: B row offsets and B column
    offsets ([2, B], each uniform in 0..2·padding) and then B flip bits ([B] bool), in this order."""
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator)
    flips = torch.randint(0, 2, (b,), generator=generator).bool()
    return offsets, flips


def apply_crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor,
                    padding: int = CROP_PADDING) -> torch.Tensor:
    """Crop + flip `x` [B, C, H, W] with drawn `offsets` [2, B] and `flips` [B] already on x's device: pure
    device work (one pad, one gather), so it can run inside a captured CUDA graph."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding), mode="reflect")
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[0, :, None] + ar_h  # [B, H]
    cols = offsets[1, :, None] + torch.where(flips[:, None], w - 1 - ar_w, ar_w)  # [B, W]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, padding: int = CROP_PADDING) -> torch.Tensor:
    """Random H×W crop of the reflect-padded batch + horizontal flip w.p. 1/2, per image, in one gather.

    Draws (`draw_crop_flip`) from `generator` (CPU; None = torch's global RNG), moves the draws to x's
    device and applies them (`apply_crop_flip`).
    """
    offsets, flips = draw_crop_flip(x.shape[0], generator, padding)
    return apply_crop_flip(x, offsets.to(x.device), flips.to(x.device), padding)


@dataclass(frozen=True)
class Augmenter:
    """An augmentation split into its CPU draws (`draw(batch_size, generator) -> tensors`) and its device
    work (`apply(x, *draws)`), so a trainer can draw a whole epoch up front and apply inside a graph."""

    draw: Callable[..., tuple[torch.Tensor, ...]]
    apply: Callable[..., torch.Tensor]


AUGMENTATION_STEPS: dict[str, Augmenter] = {"crop_flip": Augmenter(draw_crop_flip, apply_crop_flip)}
AUGMENTERS = {"crop_flip": crop_flip}


@dataclass
class DeviceData:
    """Train/val/test images (uint8 [N, C, H, W]) and labels (int64 [N]) on one device."""

    info: DatasetInfo
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    val_x: torch.Tensor | None = field(default=None, repr=False)
    val_y: torch.Tensor | None = field(default=None, repr=False)
    device: torch.device | None = None

    def __post_init__(self) -> None:
        self.device = canonical_device(self.device) if self.device is not None else self.train_x.device
        if (self.val_x is None) != (self.val_y is None):
            raise ValueError("val_x and val_y must both be tensors or both be None")
        for split in self.splits():
            x, y = self.tensors(split)
            if x.dtype != torch.uint8 or tuple(x.shape[1:]) != self.info.input_shape or x.dim() != 4:
                raise ValueError(
                    f"{split}_x must be uint8 [N, {', '.join(map(str, self.info.input_shape))}], "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y.shape != (x.shape[0],):
                raise ValueError(f"{split}_y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
            if x.device != self.device or y.device != self.device:
                raise ValueError(f"{split} tensors are on {x.device}/{y.device}, expected {self.device}")
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.info.mean, dtype=torch.float32).view(shape)
        std = torch.tensor(self.info.std, dtype=torch.float32).view(shape)
        self._scale = (1.0 / (255.0 * std)).to(self.device)
        self._shift = (-mean / std).to(self.device)

    def splits(self) -> tuple[str, ...]:
        """The splits present: ("train", "test") plus "val" when a validation split was held out."""
        return ("train", "val", "test") if self.val_x is not None else ("train", "test")

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (uint8 images, int64 labels) of a split; ValueError for an unknown or absent split."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        if split == "val" and self.val_x is None:
            raise ValueError("split 'val' is absent: load the dataset with val_size > 0 to hold one out")
        return getattr(self, f"{split}_x"), getattr(self, f"{split}_y")

    def num_examples(self, split: str) -> int:
        """Number of examples in split "train", "val" or "test"."""
        return int(self.tensors(split)[1].shape[0])

    def to(self, device: str | torch.device) -> DeviceData:
        """A copy with every tensor on `device` (the same object if already there)."""
        device = canonical_device(device)
        if device == self.device:
            return self
        moved = {
            name: (None if getattr(self, name) is None else getattr(self, name).to(device))
            for name in ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y")
        }
        return replace(self, device=device, **moved)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32 (u/255 − mean)/std per channel, computed on x's device."""
        return torch.addcmul(self._shift, x.float(), self._scale)

    def batch_indices(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> list[torch.Tensor]:
        """Index tensors (int64, on the data device) of one pass over `split`.

        shuffle draws one permutation from `generator` (CPU; None = torch's global RNG); without it
        the order is 0..N−1. drop_last drops a final short batch (so N < batch_size gives []).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        n = self.num_examples(split)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        chunks = list(order.to(self.device).split(batch_size))
        if drop_last and chunks and chunks[-1].numel() < batch_size:
            chunks.pop()
        return chunks

    def get_batch(
        self,
        split: str,
        idx: torch.Tensor,
        *,
        augment: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x float32 normalised [B, C, H, W], y int64 [B]) for the examples `idx` of `split`.

        augment applies the dataset's augmentation (crop_flip for CIFAR; a no-op when
        info.augment == "none"), drawing its random numbers from `generator`.
        """
        x_all, y_all = self.tensors(split)
        idx = idx.to(self.device)
        x = self.normalize(x_all[idx])
        if augment and self.info.augment != "none":
            x = AUGMENTERS[self.info.augment](x, generator)
        return x, y_all[idx]

    def epoch_draws(self, batches: list[torch.Tensor], generator: torch.Generator | None) -> list[tuple[torch.Tensor, ...]]:
        """The augmentation draws of each training batch (index tensors `batches`), drawn from `generator` in
        the order `get_batch(..., augment=True)` would draw them batch after batch, and moved to the device
        in one copy per tensor kind (pinned on CUDA, so the copy does not stall the host every step).
        Empty tuples when the dataset has no augmentation."""
        if self.info.augment == "none" or not batches:
            return [() for _ in batches]
        augmenter = AUGMENTATION_STEPS[self.info.augment]
        draws = [augmenter.draw(int(idx.numel()), generator) for idx in batches]
        pin = self.device is not None and torch.device(self.device).type == "cuda"
        kinds = []
        for parts in zip(*draws):  # per kind (offsets, flips): concatenate along the batch dimension
            joined = torch.cat(parts, dim=-1)
            joined = joined.pin_memory() if pin else joined
            kinds.append(joined.to(self.device, non_blocking=pin).split([p.shape[-1] for p in parts], dim=-1))
        return [tuple(kind[i] for kind in kinds) for i in range(len(batches))]

    def get_drawn_batch(self, split: str, idx: torch.Tensor, *draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`get_batch(split, idx, augment=True)` with the augmentation's random numbers given (`epoch_draws`):
        pure device work, the same images as drawing them inside `get_batch`."""
        x, y = self.get_batch(split, idx, augment=False)
        if draws:
            x = AUGMENTATION_STEPS[self.info.augment].apply(x, *draws)
        return x, y

    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate over (x, y) batches of one pass over `split` (see batch_indices and get_batch)."""
        for idx in self.batch_indices(split, batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last):
            yield self.get_batch(split, idx, augment=augment, generator=generator)

    epoch_generator = staticmethod(epoch_generator)
