"""Figure 7: a numerical check of the six Hurley–Rickard sparsity properties, and PQI of random
vectors as sparsity grows (docs/figures.md item 7; docs/methods.md §1).

Properties (Hurley & Rickard 2009, "Comparing measures of sparsity"), for a vector c of
magnitudes and a sparsity measure S (larger = sparser):

* D1 Robin Hood: moving α from a richer entry c_i to a poorer c_j (0 < α < (c_i − c_j)/2)
  **decreases** S. Here i = argmax, j = argmin, α = (c_i − c_j)/4.
* D2 Scaling: S(λc) **equals** S(c) (λ = 3.7).
* D3 Rising tide: S(c + α) **decreases** for α > 0 (c not constant). Here α = mean(c)/2.
* D4 Cloning: S(c‖c) **equals** S(c).
* P1 Bill Gates: one entry growing without bound eventually **increases** S: with β = 10·Σc,
  S(c + (β + α)e_0) > S(c + βe_0) for α = β.
* P2 Babies: appending zeros **increases** S: S(c‖0_d) > S(c).

A strict property passes when Δ = after − before has the expected sign and |Δ| > ``tol``; an
equality passes when |Δ| ≤ ``tol``. Each property is checked on ``n_trials`` random base vectors
(|N(0,1)|, Laplace and log-normal magnitudes in turn) and passes only if every trial passes; the
table shows the first trial's numbers. Nothing is forced: a measure that fails shows as failed.

The sweep zeroes a growing fraction f of an N(0,1) vector (nested random subsets per seed). Its
large-d expectations, drawn dashed: I_{p,q} = 1 − (1 − f)^{1/p − 1/q} · M_p/M_q of |N(0,1)|
(M_r = (E|x|^r)^{1/r}, E|x|^r = 2^{r/2} Γ((r+1)/2)/√π), Gini = f + (1 − f)(√2 − 1), and
Hoyer = (√d − √(d(1 − f)) · √(2/π)) / (√d − 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import pqi_properties as claims
from sparsity_lab.figures import style
from sparsity_lab.figures._properties_plot import plot_properties, theory_curve
from sparsity_lab.figures.params import FigureParams, param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["PROPERTIES", "PqiProperties", "PropertiesParams", "default_measures", "plot_properties", "property_checks",
           "sparsity_sweep", "theory_curve"]

Measure = Callable[[np.ndarray], float]

@dataclass
class PropertiesParams(FigureParams):
    """Figure 7 trains nothing: only the sizes of the random vectors and the repetitions vary."""

    dim: int = param("length of the vectors of the sparsity sweep", smoke=256, quick=2000, gpu=2000, paper=10000)
    n_seeds: int = param("random vectors per sweep point", smoke=3, quick=5, gpu=5, paper=10)
    n_fractions: int = param("fractions of zeros in the sweep", smoke=12, quick=34, gpu=34, paper=100)
    check_dim: int = param("length of the vectors of the property checks", smoke=32, quick=64, gpu=64, paper=128)
    n_trials: int = param("random base vectors per property check", smoke=6, quick=30, gpu=30, paper=300)
    seed: int = param("random seed", default=0)


def _wrap(fn: Callable[..., Any], **kw: float) -> Measure:
    def measure(v: np.ndarray) -> float:
        import torch

        return float(fn(torch.as_tensor(np.asarray(v, dtype=np.float64)), **kw))

    return measure


def default_measures() -> dict[str, Measure]:
    """PQI at the paper's two settings, Gini and Hoyer, from :mod:`sparsity_lab.measures.sparsity`."""
    from sparsity_lab.measures.sparsity import gini, hoyer, pq_index

    return {"PQI (0.5, 1)": _wrap(pq_index, p=0.5, q=1.0), "PQI (1, 2)": _wrap(pq_index, p=1.0, q=2.0),
            "Gini": _wrap(gini), "Hoyer": _wrap(hoyer)}


def _robin_hood(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = int(np.argmax(c)), int(np.argmin(c))
    alpha = (c[i] - c[j]) / 4
    after = c.copy()
    after[i] -= alpha
    after[j] += alpha
    return c, after


def _bill_gates(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    beta = 10 * c.sum()
    before, after = c.copy(), c.copy()
    before[0] += beta
    after[0] += 2 * beta
    return before, after


#: name -> (transformation giving (before, after), expected sign of Δ: -1, 0 (equal), +1).
PROPERTIES: dict[str, tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], int]] = {
    "Robin Hood": (_robin_hood, -1),
    "Scaling": (lambda c: (c, 3.7 * c), 0),
    "Rising tide": (lambda c: (c, c + c.mean() / 2), -1),
    "Cloning": (lambda c: (c, np.concatenate([c, c])), 0),
    "Bill Gates": (_bill_gates, +1),
    "Babies": (lambda c: (c, np.concatenate([c, np.zeros_like(c)])), +1),
}
_EXPECTED = {-1: "decrease", 0: "equal", 1: "increase"}
_DISTRIBUTIONS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "|N(0,1)|": lambda g, d: np.abs(g.standard_normal(d)),
    "|Laplace|": lambda g, d: np.abs(g.laplace(size=d)),
    "log-normal": lambda g, d: g.lognormal(sigma=1.0, size=d),
}


def _passes(delta: float, sign: int, tol: float) -> bool:
    if not math.isfinite(delta):
        return False
    return abs(delta) <= tol if sign == 0 else sign * delta > tol


def property_checks(
    measures: Mapping[str, Measure] | None = None,
    *,
    check_dim: int = 64,
    n_trials: int = 10,
    seed: int = 0,
    tol: float = 1e-9,
) -> pd.DataFrame:
    """One row per (measure, property): expected direction, first trial's before/after/Δ,
    ``trials_passed`` and ``passed`` (all trials pass). See the module docstring for the rules."""
    if check_dim < 2 or n_trials < 1:
        raise ValueError(f"need check_dim >= 2 and n_trials >= 1, got {check_dim}, {n_trials}")
    measures = dict(measures) if measures is not None else default_measures()
    rng = np.random.default_rng(seed)
    dists = list(_DISTRIBUTIONS.items())
    bases = [dists[t % len(dists)][1](rng, check_dim) for t in range(n_trials)]
    rows = []
    for mname, measure in measures.items():
        for pname, (transform, sign) in PROPERTIES.items():
            results = []
            for base in bases:
                before, after = transform(base)
                vb, va = measure(before), measure(after)
                results.append((vb, va, va - vb, _passes(va - vb, sign, tol)))
            vb, va, delta, _ = results[0]
            n_ok = sum(r[3] for r in results)
            rows.append({"measure": mname, "property": pname, "expected": _EXPECTED[sign],
                         "before": vb, "after": va, "delta": delta,
                         "trials_passed": f"{n_ok}/{n_trials}", "passed": n_ok == n_trials})
    return pd.DataFrame(rows)


def sparsity_sweep(
    measures: Mapping[str, Measure] | None = None,
    *,
    dim: int = 1000,
    n_seeds: int = 5,
    n_fractions: int = 34,
    max_fraction: float = 0.99,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy frame (measure, fraction_zero, seed, value) for N(0,1) vectors of length ``dim`` with
    ``round(f · dim)`` entries zeroed, f on ``linspace(0, max_fraction, n_fractions)``; the zeroed
    sets are nested per seed, and ``fraction_zero`` is the realised fraction."""
    if not 0 <= max_fraction < 1:
        raise ValueError(f"max_fraction must be in [0, 1), got {max_fraction}")
    if dim < 2 or n_seeds < 1 or n_fractions < 2:
        raise ValueError(f"need dim >= 2, n_seeds >= 1, n_fractions >= 2, got {dim}, {n_seeds}, {n_fractions}")
    measures = dict(measures) if measures is not None else default_measures()
    rows = []
    for s in range(n_seeds):
        rng = np.random.default_rng([seed, s])
        w, order = rng.standard_normal(dim), rng.permutation(dim)
        for f in np.linspace(0.0, max_fraction, n_fractions):
            k = int(round(f * dim))
            v = w.copy()
            v[order[:k]] = 0.0
            for mname, measure in measures.items():
                rows.append({"measure": mname, "fraction_zero": k / dim, "seed": s, "value": measure(v)})
    return pd.DataFrame(rows)


def _sweep_table(sweep: pd.DataFrame, dim: int) -> pd.DataFrame:
    stats = style.band_stats(sweep, "fraction_zero", "value", "measure")
    stats["theory"] = np.nan
    for m, idx in stats.groupby("measure").groups.items():
        curve = theory_curve(str(m), stats.loc[idx, "fraction_zero"].to_numpy(), dim)
        if curve is not None:
            stats.loc[idx, "theory"] = curve
    return stats.rename(columns={"mean": "mean over seeds", "std": "std over seeds", "n": "seeds"})


@register_figure(number=7, name="pqi_properties", params=PropertiesParams, claims=claims.CLAIMS)
class PqiProperties:
    """Figure 7 (docs/figures.md item 7): no runs; the checks are computed here."""

    @staticmethod
    def runs(p: PropertiesParams) -> list[Run]:
        return []

    @staticmethod
    def records(inputs: Inputs, p: PropertiesParams) -> pd.DataFrame:
        """The sweep's tidy records (measure, fraction_zero, seed, value): this figure trains nothing."""
        return sparsity_sweep(None, dim=p.dim, n_seeds=p.n_seeds, n_fractions=p.n_fractions, seed=p.seed)

    @staticmethod
    def draw(inputs: Inputs, p: PropertiesParams) -> Drawn:
        """The right panel draws ``inputs.records`` (the sweep, computed when empty); the left panel's
        property checks are computed from the parameters."""
        checks = property_checks(None, check_dim=p.check_dim, n_trials=p.n_trials, seed=p.seed)
        sweep = inputs.records if len(inputs.records) else PqiProperties.records(inputs, p)
        text = style.caption(
            p.profile, dataset=f"random vectors (checks: d={p.check_dim}, {p.n_trials} trials; "
                               f"sweep: N(0,1), d={p.dim})",
            model=None, T=None, E=None, seeds=p.n_seeds, scope="whole vector", ranked="n/a (no training)")
        fig: Figure = plot_properties(checks, sweep, dim=p.dim)
        return Drawn(fig, text, {"Property checks": checks, "Sparsity sweep": _sweep_table(sweep, p.dim)})

    @staticmethod
    def claims_input(inputs: Inputs, p: PropertiesParams, drawn: Drawn) -> dict[str, pd.DataFrame]:
        """Both tables: the property checks (7.1) and the sweep with its closed forms (7.2, 7.3)."""
        return {k: drawn.tables[k] for k in ("Property checks", "Sparsity sweep")}
