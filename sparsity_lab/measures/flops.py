"""Dense multiply-accumulates per prunable layer and ShrinkBench's theoretical speedup (docs/methods.md §1).

A conv produces out.numel() outputs per sample, each costing (in_channels/groups)·∏kernel MACs, i.e.
weight[0].numel(); a linear layer's outputs each cost in_features MACs. The theoretical speedup is
dense MACs / Σ_layers(MACs × density of the layer's mask), layers without a mask counted dense.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def layer_macs(model: nn.Module, example_input: Tensor) -> dict[str, int]:
    """Dense MACs per sample for every conv/linear weight ("<module>.weight"), from one forward pass."""
    macs: dict[str, int] = {}
    batch = example_input.shape[0] if example_input.dim() else 1

    def hook(name: str):
        def count(module: nn.Module, _inputs, output: Tensor) -> None:
            per_output = module.weight[0].numel() if not isinstance(module, nn.Linear) else module.in_features
            macs[name] = macs.get(name, 0) + output.numel() // batch * per_output
        return count

    handles = [m.register_forward_hook(hook(f"{n}.weight" if n else "weight"))
               for n, m in model.named_modules() if isinstance(m, _COUNTED)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return macs


def theoretical_speedup(model: nn.Module, masks: Mapping[str, Tensor], example_input: Tensor) -> float:
    """Dense MACs / Σ(layer MACs × layer density) (ShrinkBench); inf when nothing survives."""
    return speedup_from_macs(layer_macs(model, example_input), masks)


def speedup_from_macs(macs: Mapping[str, int], masks: Mapping[str, Tensor]) -> float:
    """``theoretical_speedup`` from precomputed ``layer_macs`` (they depend on the architecture only)."""
    dense = sum(macs.values())
    sparse = sum(m * (float(masks[n].float().mean()) if n in masks else 1.0) for n, m in macs.items())
    return dense / sparse if sparse > 0 else math.inf
