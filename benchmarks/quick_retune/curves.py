"""Print accuracy / remaining / global PQI per iteration of every method in a search store."""

from __future__ import annotations

import sys

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.store import ResultsStore, load_results

records = load_results(store=ResultsStore(sys.argv[1]))
for m in (c.SAP_05_1, c.SAP_1_2, c.LT, c.ONE_SHOT):
    try:
        f = c.one_config(c.where(records, **m.filters), m.label)
    except c.NoData:
        continue
    t = pd.DataFrame({"acc": c.accuracy(f).round(1), "rem%": (100 * c.remaining(f)).round(2),
                      "pqi": c.pqi(f).round(3)})
    print(m.label, "seeds", c.seeds(f))
    print(t.T.to_string())
