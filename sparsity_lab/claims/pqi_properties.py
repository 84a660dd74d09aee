"""The claims of figure 7, ``pqi_properties`` (docs/figures.md, "Claims every figure checks"): the six
sparsity properties (7.1) and what the sparsity sweep of random N(0,1) vectors shows (7.2, 7.3).

Input: the figure's tables, ``{"Property checks": ..., "Sparsity sweep": ...}``. The property checks
(``sparsity_lab.figures.pqi_properties.property_checks``) have one row per (measure, property) with a
boolean ``passed``; PQI measures are named ``"PQI (p, q)"``. The sweep table has one row per (measure,
fraction_zero) with ``mean over seeds``, ``std over seeds``, ``seeds`` and the large-d closed form
``theory``. A bare property table is accepted too (7.2 and 7.3 are then untestable).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import ClaimSet, Verdict

SIX = ("Robin Hood", "Scaling", "Rising tide", "Cloning", "Bill Gates", "Babies")
#: PQI with p up to this value must satisfy all six properties.
PQI_MAX_P = 1.0

#: 7.3: the mean at f = 0 must match the closed form within this, or within 3 standard errors if larger.
CLOSED_FORM_TOL = 0.01

STATEMENTS = {
    "7.1": "PQI (p <= 1) and Gini satisfy all six properties; Hoyer fails cloning (D4)",
    "7.2": "On N(0,1) vectors every measure's mean over seeds rises at every step of the fraction of zeros f",
    "7.3": "At f = 0 the mean PQI matches the Gaussian closed forms (I₀.₅,₁ = 0.153, I₁,₂ = 0.202) "
           f"within {CLOSED_FORM_TOL:g} or 3 standard errors",
}

_PQI = re.compile(r"^PQI \(\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*\)$")


def _all_six(table: pd.DataFrame, measure: str) -> tuple[bool, list[str]]:
    rows = table[table["measure"] == measure]
    have = set(rows["property"])
    missing = [p for p in SIX if p not in have]
    if missing:
        raise c.NoData(f"{measure}: properties {missing} not checked")
    failed = [str(p) for p in rows.loc[~rows["passed"].astype(bool), "property"]]
    return not failed, failed


def _properties(table: pd.DataFrame | None) -> c.Part:
    if table is None or len(table) == 0:
        raise c.NoData("no property checks")
    for col in ("measure", "property", "passed"):
        if col not in table.columns:
            raise c.NoData(f"the property table has no {col!r} column")
    pqis = [m for m in dict.fromkeys(table["measure"]) if (hit := _PQI.match(str(m))) and float(hit[1]) <= PQI_MAX_P]
    if not pqis:
        raise c.NoData(f"no PQI with p <= {PQI_MAX_P:g} in the table")
    needed = [*pqis, "Gini"]
    if "Gini" not in set(table["measure"]):
        raise c.NoData("Gini not in the table")
    broken = {}
    for measure in needed:
        ok, failed = _all_six(table, measure)
        if not ok:
            broken[measure] = failed
    hoyer = table[(table["measure"] == "Hoyer") & (table["property"] == "Cloning")]
    if hoyer.empty:
        raise c.NoData("Hoyer's cloning check not in the table")
    hoyer_fails = not bool(hoyer["passed"].iloc[0])
    ok = not broken and hoyer_fails
    text = ("; ".join(f"{m} fails {', '.join(f)}" for m, f in broken.items()) if broken
            else f"{', '.join(needed)}: 6/6 each")
    text += f"; Hoyer cloning {'fails' if hoyer_fails else 'passes'}"
    numbers = {f"{m} passed": 6 - len(broken.get(m, [])) for m in needed}
    return c.Part("holds" if ok else "fails", text, {**numbers, "Hoyer cloning passed": not hoyer_fails})


def _sweep_columns(sweep: pd.DataFrame | None) -> pd.DataFrame:
    if sweep is None or len(sweep) == 0:
        raise c.NoData("no sparsity sweep")
    missing = [col for col in ("measure", "fraction_zero", "mean over seeds") if col not in sweep.columns]
    if missing:
        raise c.NoData(f"the sweep table has no {missing} column")
    return sweep.sort_values(["measure", "fraction_zero"])


def _rises(sweep: pd.DataFrame | None) -> c.Part:
    """7.2: the mean curve of every measure increases strictly from each f to the next."""
    sweep = _sweep_columns(sweep)
    worst, texts, numbers = {}, [], {}
    for measure, rows in sweep.groupby("measure", sort=False):
        steps = rows["mean over seeds"].diff().dropna()
        if steps.empty:
            raise c.NoData(f"{measure}: one fraction of zeros only")
        i = int(steps.to_numpy().argmin())
        worst[measure] = float(steps.iloc[i])
        numbers[f"{measure} smallest step"] = worst[measure]
        texts.append(f"{measure} smallest step {worst[measure]:+.4f} (from f={rows['fraction_zero'].iloc[i]:.2f})")
    ok = all(v > 0 for v in worst.values())
    return c.Part("holds" if ok else "fails", f"{len(worst)} measures, {len(sweep) // len(worst)} fractions: "
                  + "; ".join(texts), numbers)


def _closed_forms(sweep: pd.DataFrame | None) -> c.Part:
    """7.3: at the smallest f (0), |mean − theory| <= max(CLOSED_FORM_TOL, 3 std / sqrt(seeds)) for each PQI."""
    sweep = _sweep_columns(sweep)
    if "theory" not in sweep.columns:
        raise c.NoData("the sweep table has no closed form ('theory' column)")
    pqis = [m for m in dict.fromkeys(sweep["measure"]) if _PQI.match(str(m))]
    if not pqis:
        raise c.NoData("no PQI in the sweep")
    texts, numbers, ok = [], {}, True
    for measure in pqis:
        first = sweep[sweep["measure"] == measure].iloc[0]
        if float(first["fraction_zero"]) != 0.0:
            raise c.NoData(f"{measure}: the sweep does not start at f = 0")
        n = float(first.get("seeds", 1) or 1)
        std = float(first.get("std over seeds", 0.0) or 0.0)
        tol = max(CLOSED_FORM_TOL, 3 * std / math.sqrt(n)) if not math.isnan(std) else CLOSED_FORM_TOL
        gap = abs(float(first["mean over seeds"]) - float(first["theory"]))
        ok = ok and gap <= tol
        numbers.update({f"{measure} mean": float(first["mean over seeds"]), f"{measure} closed form":
                        float(first["theory"]), f"{measure} tolerance": tol})
        texts.append(f"{measure} {float(first['mean over seeds']):.4f} vs {float(first['theory']):.4f} "
                     f"(gap {gap:.4f}, allowed {tol:.4f})")
    return c.Part("holds" if ok else "fails", "; ".join(texts), numbers)


def check(inputs: Mapping[str, pd.DataFrame] | pd.DataFrame | None) -> list[Verdict]:
    """Verdicts 7.1-7.3 on figure 7's tables (or 7.1 alone on a bare property-check table)."""
    tables = inputs if isinstance(inputs, Mapping) else {"Property checks": inputs}
    table, sweep = tables.get("Property checks"), tables.get("Sparsity sweep")
    parts = {"7.1": lambda: _properties(table), "7.2": lambda: _rises(sweep), "7.3": lambda: _closed_forms(sweep)}
    return [c.single(claim, STATEMENTS[claim], part) for claim, part in parts.items()]


CLAIMS = ClaimSet(STATEMENTS, check)
