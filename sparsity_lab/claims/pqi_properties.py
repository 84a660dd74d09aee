"""The claim of figure 7, ``pqi_properties``, the six sparsity properties (docs/figures.md, "Claims every figure checks").

Input: the property-check table of ``sparsity_lab.figures.pqi_properties.property_checks``: one row per
(measure, property) with a boolean ``passed``; PQI measures are named ``"PQI (p, q)"``.
"""

from __future__ import annotations

import re

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import ClaimSet, Verdict

SIX = ("Robin Hood", "Scaling", "Rising tide", "Cloning", "Bill Gates", "Babies")
#: PQI with p up to this value must satisfy all six properties.
PQI_MAX_P = 1.0

STATEMENTS = {"7.1": "PQI (p <= 1) and Gini satisfy all six properties; Hoyer fails cloning (D4)"}

_PQI = re.compile(r"^PQI \(\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*\)$")


def _all_six(table: pd.DataFrame, measure: str) -> tuple[bool, list[str]]:
    rows = table[table["measure"] == measure]
    have = set(rows["property"])
    missing = [p for p in SIX if p not in have]
    if missing:
        raise c.NoData(f"{measure}: properties {missing} not checked")
    failed = [str(p) for p in rows.loc[~rows["passed"].astype(bool), "property"]]
    return not failed, failed


def _properties(table: pd.DataFrame) -> c.Part:
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


def check(table: pd.DataFrame) -> list[Verdict]:
    """Verdict 7.1 on figure 7's property-check table."""
    if table is None or len(table) == 0:
        return c.untestable_all(STATEMENTS, "no property checks")
    return [c.single("7.1", STATEMENTS["7.1"], lambda: _properties(table))]


CLAIMS = ClaimSet(STATEMENTS, check)
