"""Bit-packed masks inside safetensors files: 1 bit per mask entry instead of 1 byte.

A run stores its masks (``bool``, or ``uint8`` holding only 0 and 1) at every pruning iteration; as
bytes they dominate a run directory (a ``cnn`` run: 1.5 MB per step). ``pack`` replaces every such
tensor by ``numpy.packbits`` of its flattened values (little bit order, the last byte zero-padded)
and lists it in the file's safetensors metadata under ``METADATA_KEY`` as
``{name: {"shape": [...], "dtype": "bool" | "uint8"}}``; ``unpack`` restores the exact tensors.
Files without that metadata key (written before packing existed) pass through unchanged, so old
stores still load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

#: The safetensors ``__metadata__`` key listing the packed tensors (a JSON object as a string).
METADATA_KEY = "sparsity_lab.packed"
_DTYPES: dict[str, torch.dtype] = {"bool": torch.bool, "uint8": torch.uint8}


def is_binary(tensor: torch.Tensor) -> bool:
    """True for a ``bool`` tensor, or a ``uint8`` tensor holding only 0 and 1 (how masks are stored)."""
    if tensor.dtype == torch.bool:
        return True
    return tensor.dtype == torch.uint8 and (tensor.numel() == 0 or int(tensor.max()) <= 1)


def pack_bits(tensor: torch.Tensor) -> torch.Tensor:
    """The flattened 0/1 values of ``tensor`` as ``uint8`` bytes, 8 entries a byte (little bit order)."""
    flat = tensor.detach().to("cpu").reshape(-1).numpy().astype(np.bool_)
    return torch.from_numpy(np.packbits(flat, bitorder="little"))


def unpack_bits(packed: torch.Tensor, shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    """Inverse of ``pack_bits``: a tensor of ``shape`` and ``dtype`` (``bool`` or ``uint8``)."""
    count = int(np.prod(shape, dtype=np.int64))
    bits = np.unpackbits(packed.numpy().astype(np.uint8, copy=False), count=count, bitorder="little")
    return torch.from_numpy(bits.reshape(shape)).to(dtype)


def pack(tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors with every binary one bit-packed, safetensors metadata describing them)."""
    out: dict[str, torch.Tensor] = {}
    described: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        if is_binary(value):
            described[key] = {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
            out[key] = pack_bits(value)
        else:
            out[key] = value
    return out, ({METADATA_KEY: json.dumps(described, sort_keys=True)} if described else {})


def unpack(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None) -> dict[str, torch.Tensor]:
    """The tensors as they were given to ``pack`` (key order kept); no metadata key: returned as they are."""
    described = json.loads((metadata or {}).get(METADATA_KEY, "{}"))
    out = dict(tensors)
    for key, spec in described.items():
        if key not in out or spec.get("dtype") not in _DTYPES:
            raise ValueError(f"packed tensor {key!r}: missing from the file or unknown dtype {spec.get('dtype')!r}")
        out[key] = unpack_bits(out[key], list(spec["shape"]), _DTYPES[spec["dtype"]])
    return out


def _header_size(data: bytes) -> int:
    """The length of the JSON header of safetensors bytes (8-byte little-endian header length, JSON header)."""
    if len(data) < 8:
        raise ValueError(f"not a safetensors file: {len(data)} bytes")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError(f"not a safetensors file: header of {size} bytes in {len(data)} bytes")
    return size


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (8-byte little-endian header length, JSON header)."""
    size = _header_size(data)
    return dict(json.loads(data[8:8 + size]).get("__metadata__") or {})
