"""What :func:`sparsity_lab.report.pipeline.make_figure` returns and a figure notebook publishes
(:meth:`sparsity_lab.report.notebook.FigureNotebook.publish`): the figure, its tables, claims and files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

#: Tables shown in notebooks: numbers to 4 significant digits (the CSV files keep full precision).
FLOAT_FORMAT = "{:.4g}".format
SHOWN_ROWS = 12


@dataclass
class FigureResult:
    """A drawn figure plus everything the notebook shows and the report indexes.

    ``tables`` maps a title to the numbers behind the figure (saved as CSV); ``run_ids`` lists the
    store runs the figure read; ``params`` the resolved typed parameters; ``verdicts`` the claims'
    verdicts (``sparsity_lab.claims.core.Verdict``); ``name`` the figure's stem (``01_sap_trajectories``).
    """

    figure: Figure
    caption: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Any] = field(default_factory=list)
    name: str = ""
    files: list[Path] = field(default_factory=list)

    @property
    def claims_status(self) -> str:
        """"holds" when every testable claim holds, "fails" when one fails, "untestable" / "none" else."""
        statuses = {v.status for v in self.verdicts}
        if "fails" in statuses:
            return "fails"
        return "holds" if "holds" in statuses else ("untestable" if statuses else "none")

    def claims_table(self) -> pd.DataFrame:
        from sparsity_lab.claims.core import verdict_table

        return verdict_table(self.verdicts)

    def save(self, output_dir: str | Path) -> list[Path]:
        """Write ``<name>.png/.pdf``, one CSV per table (the claims first) and ``<name>.meta.json``."""
        from sparsity_lab.claims.core import summary
        from sparsity_lab.report import files

        tables = {"Claims": self.claims_table(), **self.tables} if self.verdicts else dict(self.tables)
        self.files = [*files.save_figure(self.figure, output_dir, self.name),
                      *files.save_tables(tables, output_dir, self.name)]
        files.write_meta(output_dir, self.name, run_ids=self.run_ids, caption=self.caption, figures=self.files,
                         extra={"params": self.params, "claims": [v.to_dict() for v in self.verdicts],
                                "claims_summary": summary(self.verdicts), "claims_status": self.claims_status})
        return self.files

    def show(self) -> None:
        """In a notebook: the claims' verdicts first, then the live figure (edit ``figure`` and show again),
        its caption and tables, rounded and short (the full tables are in the CSV files)."""
        from IPython.display import Markdown, display

        from sparsity_lab.claims.core import summary

        if self.verdicts:
            display(Markdown(f"**Claims: {summary(self.verdicts)}**"))
            display(self.claims_table().style.hide(axis="index"))
            note = budget_note(self.params.get("profile"), self.verdicts)
            if note:
                display(Markdown(note))
        display(self.figure)
        display(Markdown(f"*{self.caption}*"))
        for title, table in self.tables.items():
            more = f" (first {SHOWN_ROWS} of {len(table)} rows; all in the CSV)" if len(table) > SHOWN_ROWS else ""
            display(Markdown(f"**{title}**{more}"))
            with pd.option_context("display.float_format", FLOAT_FORMAT, "display.max_columns", 30):
                display(table.head(SHOWN_ROWS))


#: Where the gpu profile's figures, made with the full budget, ship (docs/gpu-results/README.md).
GPU_RESULTS = "docs/gpu-results/README.md"


#: Per profile, what its budget is next to the papers' (docs/figures.md "Profiles"); a profile not listed
#: gets the generic sentence.
BUDGETS = {
    "smoke": "a CPU budget for the test suite (8×8 digits, a few iterations and epochs)",
    "quick": "a CPU budget (smaller model, data and T than the papers')",
    # the figures' gpu budgets differ (T = 15 or 30, E = 5 to 50, 1 to 4 seeds): each caption states its own
    "gpu": "a GPU budget (FashionMNIST / MNIST; the caption gives this figure's model, T, E and seeds), below "
           "the papers' (CIFAR-10/100, E = 200, 4 seeds)",
    "paper": "the papers' budget",
}


def budget_note(profile: Any, verdicts: list[Any]) -> str:
    """Under a figure whose claims do not all hold, at any profile: which claims fail, at what budget they
    were checked, and where the other budgets' figures are. At smoke and quick a failure may be the budget's;
    at gpu and paper it is a finding at that budget, stated as such (docs/gpu-results/README.md)."""
    failed = [v for v in verdicts if v.status != "holds"]
    if not failed:
        return ""
    which = ", ".join(f"{v.claim} {v.status}" for v in failed)
    budget = BUDGETS.get(str(profile), f"the {profile} profile's budget")
    if profile in ("smoke", "quick"):
        return (f"*Claims {which} at {budget}: a claim that fails or is untestable here may need the full budget. "
                f"The same figure from the `gpu` profile, trained on a GPU and shipped with the package, is in "
                f"`{GPU_RESULTS}` (`make figures PROFILE=gpu` renders it without training).*")
    return (f"*Claims {which} at {budget}: each verdict's reason states what the data show, a finding at this "
            f"budget, not an error; thresholds are never tuned to make a claim hold. The shipped `gpu` results and "
            f"their findings: `{GPU_RESULTS}`.*")
