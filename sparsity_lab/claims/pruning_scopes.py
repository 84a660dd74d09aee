"""The claims of figure 2, ``pruning_scopes`` (docs/figures.md, "Claims every figure checks", 2.1-2.3).

Input: the figure's records (``load_results``), runs of the four methods at the neuron, layer and
global pruning scopes (config column ``config_scope``). Means over seeds; accuracy in pt.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims import _spread
from sparsity_lab.claims.core import ClaimSet, Verdict

#: 2.1: SAP(0.5,1) minus the other method, over their common remaining fractions, is >= this (pt).
GAP_PT = -0.5
#: 2.2: largest / smallest per-layer remaining fraction of SAP(0.5,1) at T is >= this.
LAYER_RATIO = 2.0
COMPARED_SCOPES = ("neuron", "layer")
ADAPTIVE_SCOPES = ("neuron", "layer", "global")
#: 2.3: at every common iteration t >= 1, global's accuracy at most GLOBAL_ACC_PT below the other scope's,
#: with at most (1 + REMAINING_SLACK) times its remaining fraction (per-layer rounding of equal rates).
GLOBAL_ACC_PT, REMAINING_SLACK = 0.5, 0.01
GLOBAL_METHODS = (c.SAP_05_1, c.SAP_1_2, c.LT, c.ONE_SHOT)

STATEMENTS = {
    "2.1": "At neuron and layer scope, SAP(0.5,1) is at least as accurate as LT and One Shot at equal remaining",
    "2.2": "SAP(0.5,1) adapts per layer: at T its per-layer remaining fractions differ by >= 2x, at each scope",
    "2.3": "Global pruning is best: for each of the four methods, at every iteration global keeps no more weights "
           "(+1%) than neuron and layer scope, with accuracy at most 0.5 pt below theirs",
}


def _as_accurate(records: pd.DataFrame, scope: str, other: c.Method) -> c.Part:
    sap = c.runs_of(records, c.SAP_05_1, config_scope=scope)
    oth = c.runs_of(records, other, config_scope=scope)
    gap, at, lo, hi = c.overlap_gap(c.remaining(sap), c.accuracy(sap), c.remaining(oth), c.accuracy(oth))
    key = f"{scope} SAP-{other.label}"
    noise, spread = _spread.gap_note(sap, oth, gap, at_remaining=at)
    return c.Part("holds" if gap >= GAP_PT else "fails",
                  f"{scope}: SAP - {other.label} min {gap:+.2f} pt at {c.pct(at)} remaining "
                  f"(over {c.pct(lo)}-{c.pct(hi)}; {noise})",
                  {f"{key} min gap": gap, f"{key} at remaining": at, f"{key} seed spread": spread})


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


def _global_best(records: pd.DataFrame, method: c.Method, scope: str) -> c.Part:
    glob = c.runs_of(records, method, config_scope="global")
    other = c.runs_of(records, method, config_scope=scope)
    acc_g, rem_g, acc_o, rem_o = c.accuracy(glob), c.remaining(glob), c.accuracy(other), c.remaining(other)
    ts = [t for t in acc_g.index.intersection(rem_g.index).intersection(acc_o.index).intersection(rem_o.index) if t >= 1]
    if not ts:
        raise c.NoData(f"{method.label}: global and {scope} share no iteration after t = 0")
    gap, ratio = acc_g[ts] - acc_o[ts], rem_g[ts] / rem_o[ts]
    t_acc, t_rem = int(gap.idxmin()), int(ratio.idxmax())
    key = f"{method.label} global-{scope}"
    nums = {f"{key} min acc gap": float(gap.min()), f"{key} at t": t_acc, f"{key} max remaining ratio": float(ratio.max())}
    name = f"{method.label}, global vs {scope}"
    findings = []
    if gap.min() < -GLOBAL_ACC_PT:
        findings.append(f"global is {-gap.min():.1f} pt less accurate at t={t_acc} ({acc_g[t_acc]:.1f} vs "
                        f"{acc_o[t_acc]:.1f}, remaining {c.pct(rem_g[t_acc])} vs {c.pct(rem_o[t_acc])})")
    if ratio.max() > 1 + REMAINING_SLACK:
        findings.append(f"global keeps {ratio.max():.3g}x the weights at t={t_rem} ({c.pct(rem_g[t_rem])} vs "
                        f"{c.pct(rem_o[t_rem])})")
    if findings:
        return c.Part("fails", f"{name}: " + "; ".join(findings), nums)
    return c.Part("holds", f"{name}: worst acc gap {gap.min():+.2f} pt at t={t_acc}, remaining ratio <= "
                  f"{ratio.max():.3g} over t=1..{max(ts)}", nums)


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 2.1-2.3 on figure 2's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    first = [c.evaluate(f"{s} vs {m.label}", lambda s=s, m=m: _as_accurate(records, s, m))
             for s in COMPARED_SCOPES for m in (c.LT, c.ONE_SHOT)]
    second = [c.evaluate(s, lambda s=s: _adapts(records, s)) for s in ADAPTIVE_SCOPES]
    third = [c.evaluate(f"{m.label} global vs {s}", lambda m=m, s=s: _global_best(records, m, s))
             for m in GLOBAL_METHODS for s in COMPARED_SCOPES]
    return [c.combine("2.1", STATEMENTS["2.1"], first), c.combine("2.2", STATEMENTS["2.2"], second),
            c.combine("2.3", STATEMENTS["2.3"], third)]


CLAIMS = ClaimSet(STATEMENTS, check)
