"""What every figure function returns, so all ten notebooks publish it the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure


@dataclass
class FigureResult:
    """A drawn figure plus everything the notebook shows and the report indexes.

    ``tables`` maps a title to the numbers behind the figure (shown under it and saved as CSV);
    ``run_ids`` lists the store runs the figure read (empty for figures that need no runs);
    ``params`` are the resolved profile parameters, shown in the notebook for transparency.
    """

    figure: Figure
    caption: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
