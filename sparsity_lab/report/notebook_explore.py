"""The "Explore further" cells of the figure notebooks: short pandas / seaborn cells on a figure's records.

They are generated into every figure notebook (:mod:`.notebook_cells`) and executed by the report batch, so
each must run on the smoke profile's records; ``tests/test_notebooks.py`` runs them on every figure. Figures
reading the same kind of records share their cells (a registry by figure name, docs/figures.md "Notebooks").
"""

from __future__ import annotations

__all__ = ["EXPLORE"]

Cell = tuple[str, str]  # (one markdown line, the code)

#: Figures 1-6: iterative-pruning records (iteration, stage, metric, scope, group, p, q → value).
SAP_CELLS: tuple[Cell, ...] = (
    ("Every model-level metric of the retrained model at each curve's last iteration (mean over seeds):",
     'last = records[records["iteration"] == records.groupby("run_id")["iteration"].transform("max")]\n'
     'last.query("stage == \'retrained\' and scope == \'model\' and metric != \'wall_time\'").pivot_table(\n'
     '    index=["family", "label"], columns="metric", values="value").round(4)'),
    ("PQI I₀.₅,₁ of every prunable layer along pruning, one panel per curve (mean ± sd over seeds):",
     "import seaborn as sns\n\n"
     'layers = records.query("metric == \'pqi\' and scope == \'layer\' and stage == \'retrained\' and p == 0.5 and q == 1")\n'
     'sns.relplot(data=layers, x="iteration", y="value", hue="group", col="label", row="family", kind="line",\n'
     '            errorbar="sd", height=2.8, aspect=1.2).set_titles("{row_name} {col_name}").set_axis_labels(\n'
     '    "pruning iteration t", "layer PQI I₀.₅,₁");'),
    ("Any metric by the scope it was measured at: here the Gini index (edit `metric` to see another):",
     'metric = "gini"\n'
     'part = records.query("metric == @metric and stage == \'retrained\'")\n'
     'sns.relplot(data=part, x="iteration", y="value", hue="label", style="family", col="scope", kind="line",\n'
     '            errorbar="sd", height=2.8, facet_kws={"sharey": False}).set_axis_labels(\n'
     '    "pruning iteration t", metric);'),
)

#: Figures 8-10: ASNI records (iteration = epoch; stages epoch and final).
ASNI_CELLS: tuple[Cell, ...] = (
    ("Accuracy and the losses per epoch, by run (mean ± sd over seeds):",
     "import seaborn as sns\n\n"
     'epochs = records.query("stage == \'epoch\' and scope == \'model\' and metric in [\'accuracy\', \'loss\', \'train_loss\']")\n'
     'sns.relplot(data=epochs, x="iteration", y="value", hue="label", col="metric", kind="line", errorbar="sd",\n'
     '            height=2.8, facet_kws={"sharey": False});'),
    ("Per layer at the end of training: threshold, concentration points c± and surviving weights (mean over seeds):",
     'records.query("stage == \'final\' and scope == \'layer\' and metric in [\'threshold\', \'c_minus\', \'c_plus\', \'surviving\']")'
     '.pivot_table(\n    index=["label", "group"], columns="metric", values="value").round(4)'),
)

#: Figure 7: the sparsity sweep (measure, fraction_zero, seed → value) and the property checks.
PROPERTIES_CELLS: tuple[Cell, ...] = (
    ("The sweep as a table, every third fraction of zeros (mean over seeds):",
     'records.pivot_table(index="fraction_zero", columns="measure", values="value").iloc[::3].round(4)'),
    ("Trials passed per measure and property (the left panel's grid, from the figure's table `Property checks`):",
     'nb.drawn.tables["Property checks"].pivot(index="measure", columns="property", values="trials_passed")'),
)

#: Figure 11: the early warning's per-run table and the rule on the same records.
EARLY_WARNING_CELLS: tuple[Cell, ...] = (
    ("Where each run's stop lands against its sparsest iteration within 1 pt of dense (remaining, log scales; "
     "claim 11.3 wants every point under the 2× line):",
     "import numpy as np\nimport seaborn as sns\n\n"
     'per_run = nb.drawn.tables["Per run: flag, stop, collapse and the labels\' verdict"]\n'
     'ax = sns.scatterplot(data=per_run, x="remaining_sparsest_ok", y="remaining_at_stop", hue="family", style="c11_2")\n'
     "lims = np.array([per_run[[\"remaining_sparsest_ok\", \"remaining_at_stop\"]].min().min(), 1.0])\n"
     'ax.plot(lims, lims, color="0.5", linewidth=0.8); ax.plot(lims, 2 * lims, color="0.5", linestyle="--", linewidth=0.8)\n'
     'ax.set(xscale="log", yscale="log", xlabel="sparsest within 1 pt (fraction)", ylabel="at the stop (fraction)");'),
    ("The same claims under another rule, on the same records (edit the thresholds):",
     "from sparsity_lab.claims.early_warning import evaluate_early_warning, summarise_evaluation\n"
     "from sparsity_lab.measures.early_warning import WarningRule\n\n"
     "rule = WarningRule(flag_rise=0.10, stop_rise=0.50, back=1)\n"
     "summarise_evaluation(evaluate_early_warning(records, rule))"),
)

#: Figure name → its explore cells.
EXPLORE: dict[str, tuple[Cell, ...]] = {
    **dict.fromkeys(("sap_trajectories", "pruning_scopes", "pq_ablation", "eta_gamma_ablation", "pq_heatmaps",
                     "sap_vs_lth", "sap_efficiency"), SAP_CELLS),
    "pqi_properties": PROPERTIES_CELLS,
    "early_warning": EARLY_WARNING_CELLS,
    **dict.fromkeys(("asni_schedule", "asni_concentration", "asni2"), ASNI_CELLS),
}
