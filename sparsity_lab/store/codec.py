"""Serialisation of what a step stores: tidy records as parquet, tensors as safetensors (never pickle).

Both are encoded to bytes in memory so the store hashes exactly the bytes it writes, and decoded
from bytes it has just verified against the manifest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from sparsity_lab.masks import sorted_metadata
from sparsity_lab.store import packed
from sparsity_lab.store.errors import StoreError

#: safetensors metadata key holding the tensors' order at save time (safetensors itself loads in hash order)
_ORDER_KEY = "sparsity_lab.order"

#: The long, tidy records columns every step must have (README "Stored records").
RECORD_COLUMNS = ("iteration", "stage", "metric", "scope", "group", "p", "q", "value")


def check_records(records: pd.DataFrame) -> None:
    if not isinstance(records, pd.DataFrame):
        raise StoreError(f"records must be a pandas DataFrame, got {type(records).__name__}")
    missing = [c for c in RECORD_COLUMNS if c not in records.columns]
    if missing:
        raise StoreError(f"records lack the columns {missing} (README 'Stored records' requires {list(RECORD_COLUMNS)})")


def records_to_bytes(records: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    records.reset_index(drop=True).to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def table_to_bytes(table: Any) -> bytes:
    """Parquet bytes of records already held as an Arrow table (a step cut from a bundle's records table,
    store/bundle_records.py): written as ``records_to_bytes`` writes them (pyarrow, default compression),
    without a pandas round trip, which costs more than the write; reading them back gives the same frame."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def records_from_bytes(data: bytes) -> pd.DataFrame:
    """Records of one step, read without Arrow's thread pools: a step's file is small, and a process that
    exits while an Arrow reader thread is still alive can abort with "terminate called without an active
    exception" (apache/arrow#34314; seen once in a fresh-clone test run)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data), use_threads=False, pre_buffer=False)
    return table.to_pandas(use_threads=False)


def tensors_to_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """safetensors bytes of detached, contiguous CPU copies (safetensors refuses shared storage);
    masks (bool, or uint8 holding 0/1) are bit-packed (store/packed.py)."""
    out = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise StoreError(f"tensor {key!r} is a {type(value).__name__}, not a torch.Tensor")
        out[str(key)] = value.detach().to("cpu").contiguous().clone()
    tensors_out, metadata = packed.pack(out)
    return sorted_metadata(_st_save(tensors_out, metadata={**metadata, _ORDER_KEY: json.dumps(list(out))}))


def tensors_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors in the order they were saved, bit-packed masks restored (files written before packing
    load as they are; files written without an order come back sorted by name)."""
    metadata = packed.safetensors_metadata(data)
    tensors = packed.unpack(_st_load(data), metadata)
    return {k: tensors[k] for k in _saved_order(metadata, tensors)}


def _saved_order(metadata: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The key order recorded in the safetensors metadata at save time."""
    try:
        order = json.loads(metadata.get(_ORDER_KEY, "null"))
    except (TypeError, ValueError):
        order = None
    return order if isinstance(order, list) and sorted(order) == sorted(tensors) else sorted(tensors)
