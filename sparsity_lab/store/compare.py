"""Comparing the records of two runs of one config (README "Stored records").

Everything a run stores is a deterministic function of its config on a given device, so a run killed and
resumed any number of times stores the same records, row order included, as an uninterrupted one, except
the rows of the metrics in ``TIMING_METRICS``, which measure the machine rather than the model.
"""

from __future__ import annotations

import pandas as pd

#: Metrics whose values depend on the machine's speed, not on the config (wall-clock seconds).
TIMING_METRICS = ("wall_time",)


def comparable(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` without the ``TIMING_METRICS`` rows, re-indexed 0…n−1 with the row order kept, so two
    runs of one config compare with ``pandas.testing.assert_frame_equal``."""
    return records[~records["metric"].isin(TIMING_METRICS)].reset_index(drop=True)
