"""Figure 8: ASNI-I's sigmoid schedule (docs/figures.md item 8; docs/methods.md §4).

After each epoch t ASNI-I prunes, by one global magnitude threshold, until the zero count is
round(s(t)·N/100) with s(t) = S_max·σ((t − τT)/κ). The figure overlays the target s(t) recorded by
the run and the realised sparsity (percent of prunable weights that are zero) globally and per
layer, and shows the test accuracy per epoch; lines are the mean over seeds, bands ± 1 std.
Realised global sparsity should equal s(t) to within one weight (100/N percent); how the global
threshold distributes the zeros over the layers is what the per-layer lines show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sparsity_lab.claims import asni_schedule as claims
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import AsniParams, asni_caption
from sparsity_lab.figures.asni import asni_runs, epoch_metric
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["AsniSchedule", "plot_schedule", "schedule_frame", "schedule_table"]

TARGET, GLOBAL = "target s(t)", "realised (global)"


def _asni1(records: pd.DataFrame) -> pd.DataFrame:
    if "variant" in records.columns:
        records = records[records["variant"] == "asni1"]
    if records.empty:
        raise ValueError("no ASNI-I (variant 'asni1') records to draw the schedule from")
    return records


def schedule_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Tidy sparsity per (seed, epoch, series), percent: the target s(t) (``kind`` "target"), the realised
    global sparsity ("global") and each layer's ("layer", ``series`` = parameter name).

    Both come from the same epoch-t record, written after epoch t's pruning step, so they align on t."""
    rows = _asni1(records)
    rows = rows[(rows["stage"] == "epoch") & rows["metric"].isin(["target_sparsity", "sparsity"])]
    if not (rows["metric"] == "target_sparsity").any():
        raise ValueError("ASNI-I records hold no 'target_sparsity' rows (is this an asni1 run?)")
    kind = np.select([rows["metric"] == "target_sparsity", rows["scope"] == "global", rows["scope"] == "layer"],
                     ["target", "global", "layer"], default="")
    series = np.where(kind == "target", TARGET, np.where(kind == "global", GLOBAL, rows["group"]))
    out = pd.DataFrame({"seed": rows["seed"].astype(int).to_numpy(), "epoch": rows["iteration"].astype(int).to_numpy(),
                        "series": series, "kind": kind, "value": rows["value"].astype(float).to_numpy()})
    out = out[out["kind"] != ""]
    return out.sort_values(["kind", "series", "seed", "epoch"], kind="stable").reset_index(drop=True)


def schedule_table(frame: pd.DataFrame, accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per epoch: target s(t), realised global sparsity (mean, std over seeds), their gap
    (realised − target, percentage points), each layer's mean sparsity and the test accuracy (percent)."""
    mean = frame.groupby(["series", "epoch"])["value"].agg(["mean", "std"]).reset_index()
    wide = mean.pivot(index="epoch", columns="series", values="mean")
    layers = sorted(frame.loc[frame["kind"] == "layer", "series"].unique())
    table = pd.DataFrame({"epoch": wide.index.to_numpy()})
    table["target s(t) %"] = wide[TARGET].to_numpy()
    table["global sparsity %"] = wide[GLOBAL].to_numpy()
    std = mean[mean["series"] == GLOBAL].set_index("epoch")["std"]
    table["global std"] = std.reindex(wide.index).to_numpy()
    table["realised − target (pp)"] = table["global sparsity %"] - table["target s(t) %"]
    for layer in layers:
        table[f"{layer} %"] = wide[layer].to_numpy()
    if accuracy is not None:
        acc = accuracy.groupby("epoch")["value"].agg(["mean", "std"]).reindex(wide.index)
        table["test accuracy %"] = 100 * acc["mean"].to_numpy()
        table["accuracy std"] = 100 * acc["std"].to_numpy()
    return table


def plot_schedule(frame: pd.DataFrame, accuracy: pd.DataFrame, *, s_max: float | None = None) -> Figure:
    """Left: target s(t) (dashed) and realised global / per-layer sparsity; right: test accuracy (percent)."""
    import seaborn as sns

    style.set_style()
    fig = Figure(figsize=(12, 4.6))
    left, right = fig.subplots(1, 2, gridspec_kw={"wspace": 0.22})
    realised = frame[frame["kind"] != "target"]
    layers = sorted(realised.loc[realised["kind"] == "layer", "series"].unique())
    colours = {GLOBAL: style.OKABE_ITO["blue"], **dict(zip(layers, sns.color_palette("viridis", len(layers))))}
    style.line_with_band(left, realised[realised["kind"] == "global"], "epoch", "value", "series",
                         hue_order=[GLOBAL], palette=colours, linewidth=2.2, marker="o")
    style.line_with_band(left, realised[realised["kind"] == "layer"], "epoch", "value", "series",
                         hue_order=layers, palette=colours, linewidth=1.0, marker=None, alpha=0.12,
                         label_fmt="layer {}")
    target = frame[frame["kind"] == "target"].groupby("epoch")["value"].mean()
    left.plot(target.index, target.to_numpy(), color="black", linestyle="--", marker="x", markersize=4,
              linewidth=1.3, label=TARGET, zorder=5)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if s_max is not None:
        left.axhline(s_max, color="0.5", linestyle=":", linewidth=1, label=f"S_max = {s_max:g} %")
    left.set(xlabel="epoch t (pruned after the epoch)", ylabel="sparsity (% of prunable weights = 0)",
             title="(a) target s(t) vs realised sparsity", ylim=(-2, 102))
    left.legend(loc="upper left", bbox_to_anchor=(0.0, 0.9), fontsize=style.LEGEND_FONTSIZE)  # the sigmoid leaves it empty
    acc = accuracy.assign(value=100 * accuracy["value"])
    style.line_with_band(right, acc, "epoch", "value", palette=[style.OKABE_ITO["blue"]], marker="o")
    right.set(xlabel="epoch t", ylabel="test accuracy after pruning (%)",
              title="(b) test accuracy of the pruned network")
    twin = right.twinx()
    glob = frame[frame["kind"] == "global"].groupby("epoch")["value"].mean()
    twin.fill_between(glob.index, 0, glob.to_numpy(), color="0.5", alpha=0.12, linewidth=0)
    twin.set_ylim(0, 100)
    twin.set_ylabel("global sparsity (%, shaded)", color="0.45")
    twin.grid(False)
    right.set_zorder(twin.get_zorder() + 1)
    right.patch.set_visible(False)
    return fig


@register_figure(number=8, name="asni_schedule", params=AsniParams, claims=claims.CLAIMS)
class AsniSchedule:
    """Figure 8 (docs/figures.md item 8): ASNI-I for every seed, and the dense run of the same budget
    (claim 8.2 compares their final accuracies; figures 9 and 10 read the same runs)."""

    @staticmethod
    def runs(p: AsniParams) -> list[Run]:
        return asni_runs(p, ["asni1", "dense"])

    @staticmethod
    def draw(inputs: Inputs, p: AsniParams) -> Drawn:
        frame = schedule_frame(inputs.records)
        accuracy = epoch_metric(inputs.records[inputs.records["variant"] == "asni1"], "accuracy")
        fig = plot_schedule(frame, accuracy, s_max=p.s_max)
        return Drawn(fig, asni_caption(p), {"Schedule per epoch": schedule_table(frame, accuracy)})
