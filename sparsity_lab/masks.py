"""What is prunable and the masks over it (docs/methods.md §2).

Prunable = every parameter named ``*.weight`` (or ``weight``) with dim > 1: conv kernels and linear matrices,
first and last layers included; biases, BatchNorm parameters and buffers never. A :class:`MaskSet` maps
parameter name → bool tensor of the parameter's shape. ``masks.apply_(model)`` zeroes the pruned weights
once (one-shot); in a hand-written training loop use ``masks.attach(optimizer, model)`` instead, which
re-applies the masks and zeroes the pruned entries' optimizer state after every ``optimizer.step()`` (by
hand: ``apply_`` then ``zero_optimizer_state_`` after each step). Weights pruned earlier with
``torch.nn.utils.prune`` (``weight_orig`` / ``weight_mask``) are handled: ``for_model`` starts from their mask.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as _st_save
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

_FORMAT = "sparsity_lab.MaskSet/1"
#: How one tensor file holds a model's weights beside its masks (the store's "final" artifact).
WEIGHT_PREFIX, MASK_PREFIX = "model.", "mask."
_PREFIXES = (WEIGHT_PREFIX, MASK_PREFIX)
_T = TypeVar("_T")


def _is_prunable(name: str, p: Tensor) -> bool:
    return (name == "weight" or name.endswith(".weight")) and p.dim() > 1


def _match(names: list[str], patterns: Sequence[str], role: str, available: list[str]) -> set[str]:
    """Names matching any fnmatch pattern; a pattern matching nothing is an error naming it."""
    hits: set[str] = set()
    for pat in patterns:
        found = fnmatch.filter(names, pat)
        if not found:
            raise ValueError(f"{role} pattern {pat!r} matches no prunable parameter; available: {available}")
        hits.update(found)
    return hits


def prunable_parameters(model: nn.Module, include: Sequence[str] | None = None,
                        exclude: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """Prunable parameters in model order, filtered by fnmatch ``include`` / ``exclude`` patterns. A weight
    pruned with ``torch.nn.utils.prune`` (parameter ``<name>_orig``, buffer ``<name>_mask``) counts under its
    plain name ``<name>``: its parameter is ``weight_orig`` and the weight is ``weight_orig * weight_mask``."""
    params = {}
    for n, p in model.named_parameters():
        key = n.removesuffix("_orig") if n.endswith("weight_orig") else n
        if _is_prunable(key, p):
            params[key] = p
    names = list(params)
    keep = _match(names, include, "include", names) if include is not None else set(names)
    if exclude is not None:
        keep -= _match(names, exclude, "exclude", names)
    return {n: p for n, p in params.items() if n in keep}


def in_model_order(tensors: Mapping[str, _T], model: nn.Module) -> dict[str, _T]:
    """``tensors`` re-keyed in the model's ``state_dict`` order (that of ``named_parameters`` for parameters).

    Whatever iterates over masks or weights (measures, record rows, global tie-breaking, random masks) must
    see one order however the tensors were read back (safetensors returns them in arbitrary order). Plain
    names come first, then ``model.<name>`` and ``mask.<name>`` keys (each in model order); a name the
    model lacks (``<name>_orig`` after a torch.nn.utils.prune export resolves to ``<name>``) goes last,
    sorted by name.
    """
    rank = {n: i for i, n in enumerate(model.state_dict(keep_vars=True))}
    rank.update({n[: -len("_orig")]: i for n, i in rank.items() if n.endswith("_orig")})

    def key(name: str) -> tuple[int, int, str]:
        if name in rank:
            return 0, rank[name], ""
        for j, prefix in enumerate(_PREFIXES, start=1):
            if name.startswith(prefix) and name[len(prefix):] in rank:
                return j, rank[name[len(prefix):]], ""
        return len(_PREFIXES) + 1, 0, name

    return {n: tensors[n] for n in sorted(tensors, key=key)}


def weights_and_masks(weights: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """One flat tensor dict: ``model.<name>`` for each weight (a state dict), ``mask.<name>`` (uint8) per mask."""
    flat = {f"{WEIGHT_PREFIX}{k}": v for k, v in weights.items()}
    flat.update({f"{MASK_PREFIX}{k}": v.to(torch.uint8) for k, v in masks.items()})
    return flat


def split_weights_and_masks(tensors: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Inverse of :func:`weights_and_masks`: (weights by name, boolean masks by name); other keys are ignored."""
    weights = {k[len(WEIGHT_PREFIX):]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    masks = {k[len(MASK_PREFIX):]: v.bool() for k, v in tensors.items() if k.startswith(MASK_PREFIX)}
    return weights, masks


def _module_and_attr(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, attr = name.rpartition(".")
    return (model.get_submodule(path) if path else model), attr


class MaskSet(dict):
    """Parameter name → bool mask (True = surviving weight)."""

    @classmethod
    def for_model(cls, model: nn.Module, include: Sequence[str] | None = None,
                  exclude: Sequence[str] | None = None) -> MaskSet:
        """All-True masks for the model's prunable parameters; a weight already pruned with
        ``torch.nn.utils.prune`` starts from its ``weight_mask`` (its pruned entries stay pruned)."""
        buffers = dict(model.named_buffers())
        return cls({n: buffers[f"{n}_mask"].bool().clone() if f"{n}_mask" in buffers
                    else torch.ones_like(p, dtype=torch.bool)
                    for n, p in prunable_parameters(model, include, exclude).items()})

    def parameters(self, model: nn.Module) -> dict[str, Tensor]:
        """The model's parameters for these masks (``<name>_orig`` after torch.nn.utils.prune export)."""
        named = dict(model.named_parameters())
        out = {}
        for name, m in self.items():
            p = named.get(name, named.get(name + "_orig"))
            if p is None:
                raise ValueError(f"mask {name!r} has no parameter in the model; parameters: {list(named)}")
            if p.shape != m.shape:
                raise ValueError(f"mask {name!r} has shape {tuple(m.shape)}, parameter {tuple(p.shape)}")
            out[name] = p
        return out

    def apply_(self, model: nn.Module) -> None:
        """Zero the pruned weights in place, once (one fused multiply over all masked parameters). Training
        afterwards revives them: in your own loop use :meth:`attach` (after every optimizer step)."""
        params = list(self.parameters(model).values())
        if not params:  # nothing is masked; torch's fused multiply refuses empty lists
            return
        masks = [m.to(device=p.device, dtype=p.dtype) for m, p in zip(self.values(), params)]
        with torch.no_grad():
            torch._foreach_mul_(params, masks)

    def mask_gradients_(self, model: nn.Module) -> None:
        """Zero the gradients of pruned weights in place."""
        for p, m in zip(self.parameters(model).values(), self.values()):
            if p.grad is not None:
                p.grad.mul_(m.to(p.grad.device))

    def zero_optimizer_state_(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
        """Multiply every per-parameter state tensor of the parameter's shape (momentum_buffer, exp_avg,
        exp_avg_sq, max_exp_avg_sq, …) by the mask, so no optimizer can revive a pruned weight."""
        with torch.no_grad():
            for name, p in self.parameters(model).items():
                for value in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value) and value.shape == p.shape:
                        value.mul_(self[name].to(device=value.device, dtype=value.dtype))

    def attach(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> Any:
        """Keep a hand-written training loop's pruned weights at zero: after every ``optimizer.step()``
        the masks are applied and the optimizer state of pruned entries is zeroed (``zero_optimizer_state_``),
        so momentum, weight decay or Adam moments cannot revive them. Returns the hook handle
        (``handle.remove()`` detaches it)."""
        def enforce(*_: Any) -> None:
            self.apply_(model)
            self.zero_optimizer_state_(optimizer, model)

        enforce()
        return optimizer.register_step_post_hook(enforce)

    def num_total(self) -> int:
        return sum(m.numel() for m in self.values())

    def num_remaining(self) -> int:
        return int(sum(int(m.sum()) for m in self.values()))

    def remaining_fraction(self) -> float:
        total = self.num_total()
        return self.num_remaining() / total if total else float("nan")

    def remaining_per_layer(self) -> dict[str, float]:
        return {n: int(m.sum()) / m.numel() if m.numel() else float("nan") for n, m in self.items()}

    def in_model_order(self, model: nn.Module) -> MaskSet:
        """The same masks keyed in the model's parameter order (see :func:`in_model_order`)."""
        return MaskSet(in_model_order(self, model))

    def clone(self) -> MaskSet:
        return MaskSet({n: m.clone() for n, m in self.items()})

    def to(self, device: torch.device | str) -> MaskSet:
        return MaskSet({n: m.to(device) for n, m in self.items()})

    # ----------------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write a safetensors file (uint8 0/1 tensors; parameter order kept in the metadata); equal masks
        always give the same bytes."""
        tensors = {n: m.detach().to("cpu", torch.uint8).contiguous() for n, m in self.items()}
        data = _st_save(tensors, metadata={"format": _FORMAT, "names": json.dumps(list(self))})
        with open(path, "wb") as fh:
            fh.write(sorted_metadata(data))

    @classmethod
    def load(cls, path: str | os.PathLike, model: nn.Module | None = None) -> MaskSet:
        """Read a file written by :meth:`save`; with ``model``, also check names and shapes against it."""
        try:
            with safe_open(os.fspath(path), framework="pt") as f:
                meta = f.metadata() or {}
                raw = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ValueError(f"mask file {os.fspath(path)!r} is corrupted or truncated: {err}") from err
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a MaskSet file (format {meta.get('format')!r})")
        names = json.loads(meta.get("names", "[]"))
        if sorted(names) != sorted(raw):
            raise ValueError(f"mask file {os.fspath(path)!r} lists {names} but holds {sorted(raw)}")
        out = cls()
        for n in names:
            t = raw[n]
            if t.dtype != torch.uint8 or bool((t > 1).any()):
                raise ValueError(f"mask {n!r} in {os.fspath(path)!r} is not a 0/1 uint8 tensor ({t.dtype})")
            out[n] = t.bool()
        if model is not None:
            out.parameters(model)  # raises on a missing name or a shape mismatch
            out = out.in_model_order(model)
        return out

    # ------------------------------------------------------------------------- torch.nn.utils.prune
    def to_torch_prune(self, model: nn.Module) -> None:
        """Attach the masks with torch.nn.utils.prune.custom_from_mask (``<name>_orig`` + ``<name>_mask``)."""
        for name, m in self.items():
            module, attr = _module_and_attr(model, name)
            torch_prune.custom_from_mask(module, name=attr, mask=m.to(getattr(module, attr).device))

    @classmethod
    def from_torch_prune(cls, model: nn.Module) -> MaskSet:
        """Read the ``<name>_mask`` buffers of torch.nn.utils.prune back (``fc.weight_mask`` → ``fc.weight``)."""
        out = cls()
        for mod_name, module in model.named_modules():
            for buf_name, buf in module.named_buffers(recurse=False):
                attr = buf_name[: -len("_mask")]
                if buf_name.endswith("_mask") and hasattr(module, attr + "_orig"):
                    out[f"{mod_name}.{attr}" if mod_name else attr] = buf.detach().bool().clone()
        return out


def sorted_metadata(data: bytes) -> bytes:
    """The same safetensors bytes with the header's ``__metadata__`` keys in sorted order, so identical tensors
    and metadata always give identical bytes: safetensors keeps the metadata in a Rust ``HashMap``, whose
    order is random per map (not per ``PYTHONHASHSEED``). The tensor entries and the data are kept as they are;
    the header is padded with spaces to a multiple of 8 bytes, as safetensors does."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        header = {"__metadata__": dict(sorted(metadata.items())), **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    # one copy of the tensor data (a slice and a concatenation would make two; ResNet-18's are 45 MB)
    return b"".join((len(text).to_bytes(8, "little"), text, memoryview(data)[8 + size:]))
