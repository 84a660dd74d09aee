"""The claims of figure 9, ``asni_concentration``, concentration points (docs/figures.md, "Claims every figure checks").

Input: a per-layer table with the columns of :data:`COLUMNS`, one row per (layer, seed) of the final
ASNI-I network: ``theta`` (the last pruning threshold), ``min_abs_survivor`` (smallest |w| among the
survivors), ``n_pos`` / ``n_neg`` (positive / negative survivors), ``c_minus`` / ``c_plus`` (means of the
negative / positive survivors, docs/methods.md §4). :func:`concentration_table` builds it from the
final weights, masks and theta; :func:`table_from_run` from one run's records and ``final`` artifact; the
figure's ``claims_input`` is :func:`table_from_run` over its ASNI-I runs (one table, one rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import torch

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.concentration_data import last_threshold
from sparsity_lab.claims.core import ClaimSet, Verdict
from sparsity_lab.masks import split_weights_and_masks

COLUMNS = ("layer", "seed", "theta", "min_abs_survivor", "n_pos", "n_neg", "c_minus", "c_plus")
#: 9.2 applies to layers with at least this many survivors of each sign.
MIN_PER_SIGN = 2

STATEMENTS = {
    "9.1": "No surviving weight of the ASNI-I network has |w| < theta (the last threshold)",
    "9.2": "In every layer with >= 2 survivors of each sign, c- < -theta and c+ > theta",
}


def concentration_table(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], theta: float,
                        seed: int = 0) -> pd.DataFrame:
    """One row per masked layer (columns :data:`COLUMNS`) of the final weights ``weights`` under ``masks``."""
    rows = []
    for name, mask in masks.items():
        if name not in weights:
            raise ValueError(f"mask {name!r} has no weight; weights: {sorted(weights)}")
        alive = weights[name].detach().double()[mask.bool()]
        neg, pos = alive[alive < 0], alive[alive > 0]
        rows.append({"layer": name, "seed": seed, "theta": float(theta),
                     "min_abs_survivor": alive.abs().min().item() if alive.numel() else math.nan,
                     "n_pos": int(pos.numel()), "n_neg": int(neg.numel()),
                     "c_minus": neg.mean().item() if neg.numel() else math.nan,
                     "c_plus": pos.mean().item() if pos.numel() else math.nan})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def table_from_run(records: pd.DataFrame, final: Mapping[str, torch.Tensor], seed: int = 0) -> pd.DataFrame:
    """The table of one ASNI-I run: theta from its ``threshold`` records (the last epoch that pruned), the
    survivors (their smallest |w|, sign counts, c⁻ / c⁺) from its ``final`` weights and masks."""
    weights, masks = split_weights_and_masks(final)
    return concentration_table(weights, masks, last_threshold(records), seed=seed)


def _table(table: pd.DataFrame) -> pd.DataFrame:
    missing = [col for col in COLUMNS if col not in table.columns]
    if missing:
        raise c.NoData(f"the per-layer table lacks {missing}")
    rows = table[table["theta"].notna()]
    if rows.empty:
        raise c.NoData("no layer with a threshold theta")
    return rows


def _no_small_survivor(table: pd.DataFrame) -> c.Part:
    rows = _table(table)
    rows = rows[rows["min_abs_survivor"].notna()]
    if rows.empty:
        raise c.NoData("no layer has survivors")
    margin = rows["min_abs_survivor"] - rows["theta"]
    k = margin.idxmin()
    ok = bool((margin >= 0).all())
    return c.Part("holds" if ok else "fails", f"smallest survivor {rows.loc[k, 'min_abs_survivor']:.4g} vs theta "
                  f"{rows.loc[k, 'theta']:.4g} ({rows.loc[k, 'layer']}, seed {rows.loc[k, 'seed']})",
                  {"min |w| survivor": float(rows.loc[k, "min_abs_survivor"]), "theta": float(rows.loc[k, "theta"])})


def _outside_threshold(table: pd.DataFrame) -> c.Part:
    rows = _table(table)
    rows = rows[(rows["n_pos"] >= MIN_PER_SIGN) & (rows["n_neg"] >= MIN_PER_SIGN)]
    if rows.empty:
        raise c.NoData(f"no layer with >= {MIN_PER_SIGN} survivors of each sign")
    bad = rows[~((rows["c_minus"] < -rows["theta"]) & (rows["c_plus"] > rows["theta"]))]
    inner = pd.concat([rows["c_plus"], -rows["c_minus"]], axis=1).min(axis=1) - rows["theta"]
    k = inner.idxmin()
    text = (f"{len(rows) - len(bad)}/{len(rows)} layers; closest {rows.loc[k, 'layer']}: c- {rows.loc[k, 'c_minus']:.4g}, "
            f"c+ {rows.loc[k, 'c_plus']:.4g}, theta {rows.loc[k, 'theta']:.4g}")
    return c.Part("fails" if len(bad) else "holds", text, {"layers tested": len(rows), "layers failing": len(bad),
                                                           "smallest |c±| - theta": float(inner.loc[k])})


def check(table: pd.DataFrame) -> list[Verdict]:
    """Verdicts 9.1-9.2 on figure 9's per-layer table."""
    if table is None or len(table) == 0:
        return c.untestable_all(STATEMENTS, "no per-layer table (no finished ASNI-I run)")
    return [c.single("9.1", STATEMENTS["9.1"], lambda: _no_small_survivor(table)),
            c.single("9.2", STATEMENTS["9.2"], lambda: _outside_threshold(table))]


CLAIMS = ClaimSet(STATEMENTS, check)
