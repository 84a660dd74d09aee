"""Claims 2.1-2.2 of figure 2, pruning scopes (docs/figures.md, "Claims every figure checks").

Input: the figure's records (``load_results``), runs of the four methods at the neuron, layer and
global pruning scopes (config column ``config_scope``). Means over seeds; accuracy in pt.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import Verdict

#: 2.1: SAP(0.5,1) minus the other method, over their common remaining fractions, is >= this (pt).
GAP_PT = -0.5
#: 2.2: largest / smallest per-layer remaining fraction of SAP(0.5,1) at T is >= this.
LAYER_RATIO = 2.0
COMPARED_SCOPES = ("neuron", "layer")
ADAPTIVE_SCOPES = ("neuron", "layer", "global")

CLAIMS = {
    "2.1": "At neuron and layer scope, SAP(0.5,1) is at least as accurate as LT and One Shot at equal remaining",
    "2.2": "SAP(0.5,1) adapts per layer: at T its per-layer remaining fractions differ by >= 2x, at each scope",
}


def _as_accurate(records: pd.DataFrame, scope: str, other: c.Method) -> c.Part:
    sap = c.runs_of(records, c.SAP_05_1, config_scope=scope)
    oth = c.runs_of(records, other, config_scope=scope)
    gap, at, lo, hi = c.overlap_gap(c.remaining(sap), c.accuracy(sap), c.remaining(oth), c.accuracy(oth))
    key = f"{scope} SAP-{other.label}"
    return c.Part("holds" if gap >= GAP_PT else "fails",
                  f"{scope}: SAP - {other.label} min {gap:+.2f} pt at {c.pct(at)} remaining "
                  f"(over {c.pct(lo)}-{c.pct(hi)})", {f"{key} min gap": gap, f"{key} at remaining": at})


def layer_remaining_at_T(frame: pd.DataFrame) -> pd.Series:
    """Per prunable layer: remaining fraction of the retrained model at T, mean over seeds."""
    rows = frame[(frame["metric"] == "remaining") & (frame["stage"] == "retrained") & (frame["scope"] == "layer")]
    if rows.empty:
        raise c.NoData("no per-layer 'remaining' records")
    out = {}
    for layer, part in rows.groupby("group", sort=False):
        series = c.curve(part, "remaining", scope="layer", group=str(layer))
        out[str(layer)] = c.last(series, frame)[1]
    return pd.Series(out, dtype=float)


def _adapts(records: pd.DataFrame, scope: str) -> c.Part:
    per_layer = layer_remaining_at_T(c.runs_of(records, c.SAP_05_1, config_scope=scope))
    if len(per_layer) < 2:
        raise c.NoData(f"{scope}: one prunable layer only")
    hi, lo = float(per_layer.max()), float(per_layer.min())
    ratio = hi / lo if lo > 0 else float("inf")
    return c.Part("holds" if ratio >= LAYER_RATIO else "fails",
                  f"{scope}: {per_layer.idxmax()} {c.pct(hi)} vs {per_layer.idxmin()} {c.pct(lo)} ({ratio:.2f}x)",
                  {f"{scope} max layer remaining": hi, f"{scope} min layer remaining": lo, f"{scope} ratio": ratio})


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 2.1-2.2 on figure 2's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(CLAIMS, problem)
    first = [c.evaluate(f"{s} vs {m.label}", lambda s=s, m=m: _as_accurate(records, s, m))
             for s in COMPARED_SCOPES for m in (c.LT, c.ONE_SHOT)]
    second = [c.evaluate(s, lambda s=s: _adapts(records, s)) for s in ADAPTIVE_SCOPES]
    return [c.combine("2.1", CLAIMS["2.1"], first), c.combine("2.2", CLAIMS["2.2"], second)]
