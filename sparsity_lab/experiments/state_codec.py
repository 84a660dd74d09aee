"""Encode nested training state (dicts/lists of tensors and scalars) as a flat tensor dict, without pickle.

Tensors go to keys ``t.<n>``; the structure, with scalars and strings, goes to a JSON skeleton stored as
a uint8 tensor under ``skeleton``. safetensors can then write it and loading never runs arbitrary code.
"""

from __future__ import annotations

import json
from typing import Any

import torch

_SKELETON = "skeleton"


def encode_state(state: Any) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            key = f"t.{len(tensors)}"
            tensors[key] = obj.detach().to("cpu").contiguous()
            return {"__tensor__": key}
        if isinstance(obj, dict):
            return {"__dict__": [[walk(k), walk(v)] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return {"__list__": [walk(v) for v in obj], "tuple": isinstance(obj, tuple)}
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"cannot encode state value of type {type(obj).__name__}")

    skeleton = json.dumps(walk(state)).encode()
    tensors[_SKELETON] = torch.frombuffer(bytearray(skeleton), dtype=torch.uint8).clone()
    return tensors


def decode_state(tensors: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> Any:
    skeleton = json.loads(bytes(tensors[_SKELETON].tolist()).decode())

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            if "__tensor__" in obj:
                return tensors[obj["__tensor__"]].to(device)
            if "__dict__" in obj:
                return {walk(k): walk(v) for k, v in obj["__dict__"]}
            if "__list__" in obj:
                items = [walk(v) for v in obj["__list__"]]
                return tuple(items) if obj.get("tuple") else items
        return obj

    return walk(skeleton)
