"""What the ASNI figures (docs/figures.md items 8-10; docs/methods.md §4) share.

* figure 8 :mod:`.asni_schedule`: target s(t) vs realised sparsity, with accuracy;
* figure 9 :mod:`.asni_concentration`: per-layer histograms of the surviving weights with c⁻, c⁺ and ±θ,
  against the one-shot contrasts (runs of variants ``oneshot_global`` / ``oneshot_layer``);
* figure 10 :mod:`.asni2`: ASNI-II retraining against its controls, and the storage of the learned init.

Their parameters, configs and captions: :mod:`._bases` (``AsniParams``, ``asni_config``, ``asni_caption``).
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.figures._bases import AsniParams, asni_config
from sparsity_lab.figures.registry import Run

__all__ = ["VARIANT_LABELS", "asni_runs", "epoch_metric"]

#: Legend label of each AsniConfig.variant (docs/methods.md §4).
VARIANT_LABELS: dict[str, str] = {
    "asni2": "ASNI-II (2L-level init)",
    "asni1": "ASNI-I (during its schedule)",
    "mask_init": "mask + original init",
    "mask_random_init": "mask + random init",
    "random_signs": "2L levels, random signs",
    "std_levels": "±std(θ₀) levels",
    "dense": "dense",
    "oneshot_global": "dense → one-shot global",
    "oneshot_layer": "dense → one-shot layer-wise",
}


def asni_runs(p: AsniParams, variants: list[str], *, tensors: dict[str, tuple[str, ...]] | None = None,
              seeds: list[int] | None = None) -> list[Run]:
    """One :class:`Run` per (variant, seed), labelled with the variant's legend label; ``tensors`` maps a
    variant to the artifacts the figure reads (for the first seed only unless the variant ends in ``*``)."""
    tensors = tensors or {}
    seeds = list(p.seeds) if seeds is None else seeds
    out = []
    for v in variants:
        for i, seed in enumerate(seeds):
            wanted = tensors.get(v, ()) if i == 0 else tensors.get(f"{v}*", ())
            out.append(Run(asni_config(p, v, seed), {"label": VARIANT_LABELS[v]},
                           tuple(dict.fromkeys([*wanted, *tensors.get(f"{v}*", ())]))))
    return out


def epoch_metric(records: pd.DataFrame, metric: str = "accuracy", *, scope: str = "model",
                 group: str = "all") -> pd.DataFrame:
    """Per-epoch rows of one metric: columns ``variant``, ``seed``, ``epoch``, ``value`` (sorted)."""
    rows = records[(records["stage"] == "epoch") & (records["metric"] == metric)
                   & (records["scope"] == scope) & (records["group"] == group)]
    if rows.empty:
        raise ValueError(f"no per-epoch {metric!r} records (scope {scope!r}, group {group!r}); "
                         f"metrics present: {sorted(records['metric'].unique())}")
    out = rows.rename(columns={"iteration": "epoch"})[["variant", "seed", "epoch", "value"]]
    out = out.astype({"seed": int, "epoch": int, "value": float})
    return out.sort_values(["variant", "seed", "epoch"], kind="stable").reset_index(drop=True)
