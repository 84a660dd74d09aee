"""Figure 10: ASNI-II, the learned quantized initialisation (docs/figures.md item 10; docs/methods.md §4).

ASNI-II keeps the final ASNI-I mask and sign pattern, sets every surviving weight of layer ℓ to
c⁺_ℓ or c⁻_ℓ by its sign (2 numbers per layer, 2L in all) and retrains under the fixed mask. The
figure compares its test accuracy per retraining epoch with ASNI-I's own curve, mask + original
init, mask + random init, the two ablations (random signs; c± = ±std of θ₀) and dense training,
mean ± std over seeds. Beside it: what the learned init costs to store,

    2L numbers · 32 bits  +  1 mask bit per prunable weight  +  1 sign bit per surviving weight,

against the dense parameter count (32 bits each) and the trained sparse network (values + mask).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sparsity_lab._format import human_bytes
from sparsity_lab.claims import asni2 as claims
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import AsniParams, asni_caption
from sparsity_lab.figures.asni import VARIANT_LABELS, asni_runs, epoch_metric
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure
from sparsity_lab.masks import split_weights_and_masks

__all__ = ["Asni2", "Asni2Params", "VARIANTS", "accuracy_table", "plot_asni2", "retraining_frame", "storage_table"]

#: Curves of the figure, in legend order.
VARIANTS = ("asni2", "asni1", "mask_init", "mask_random_init", "random_signs", "std_levels", "dense")
BITS_PER_NUMBER = 32  # float32


def retraining_frame(records: pd.DataFrame, variants: Sequence[str] = VARIANTS) -> pd.DataFrame:
    """Test accuracy (percent) per (variant, seed, epoch) with the legend ``label``."""
    frame = epoch_metric(records[records["variant"].isin(variants)], "accuracy")
    missing = sorted(set(variants) - set(frame["variant"]))
    if missing:
        raise ValueError(f"no accuracy records for variant(s) {missing}")
    return frame.assign(value=100 * frame["value"], label=frame["variant"].map(VARIANT_LABELS))


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per variant: final-epoch and best-epoch accuracy (mean, std over seeds), seeds, and the final
    accuracy minus ASNI-I's (percentage points)."""
    last = frame[frame["epoch"] == frame.groupby("variant")["epoch"].transform("max")]
    best = frame.groupby(["variant", "seed"])["value"].max().reset_index()
    table = (last.groupby("variant")["value"].agg(["mean", "std", "count"])
             .rename(columns={"mean": "final accuracy %", "std": "final std", "count": "seeds"}))
    table["best-epoch accuracy %"] = best.groupby("variant")["value"].mean()
    table["final epoch"] = last.groupby("variant")["epoch"].first()
    if "asni1" in table.index:
        table["vs ASNI-I (pp)"] = table["final accuracy %"] - table.loc["asni1", "final accuracy %"]
    order = [v for v in VARIANTS if v in table.index] + [v for v in table.index if v not in VARIANTS]
    table = table.loc[order].reset_index()
    table.insert(1, "label", table["variant"].map(VARIANT_LABELS))
    return table


def storage_table(masks: Mapping[str, torch.Tensor], dense_parameters: int,
                  bits_per_number: int = BITS_PER_NUMBER) -> pd.DataFrame:
    """What describes the ASNI-II init, item by item, beside the dense and the trained sparse network.

    Columns: item, count, unit ("numbers" of ``bits_per_number`` bits, or "bits"), bits, bytes
    (= ceil(bits / 8)) and ``fraction of dense`` (bits over the dense network's bits)."""
    layers = len(masks)
    prunable = sum(int(m.numel()) for m in masks.values())
    surviving = sum(int(m.bool().sum()) for m in masks.values())
    items = [
        ("learned levels c⁻, c⁺ (2L)", 2 * layers, "numbers", 2 * layers * bits_per_number),
        ("mask (1 bit per prunable weight)", prunable, "bits", prunable),
        ("signs (1 bit per surviving weight)", surviving, "bits", surviving),
    ]
    init_bits = sum(bits for *_, bits in items)
    items += [
        ("ASNI-II init in all", None, "bits", init_bits),
        ("trained sparse network (values + mask)", surviving, "numbers + mask bits",
         surviving * bits_per_number + prunable),
        ("dense network (all parameters)", dense_parameters, "numbers", dense_parameters * bits_per_number),
    ]
    dense_bits = dense_parameters * bits_per_number
    return pd.DataFrame([{"item": name, "count": count, "unit": unit, "bits": bits, "bytes": math.ceil(bits / 8),
                          "fraction of dense": bits / dense_bits} for name, count, unit, bits in items])


def _accuracy_floor(frame: pd.DataFrame) -> float:
    """The lower y limit of panel (a): 1 point under the lowest mean accuracy after the first epoch of the
    lines ending within 25 points of the median final accuracy (the first epoch of a random init, and a
    line far below, would squash the lines the panel compares into its top few pixels)."""
    means = frame.groupby(["label", "epoch"])["value"].mean().unstack("epoch")
    finals = means.iloc[:, -1]
    close = means[finals >= finals.median() - 25]
    later = close.iloc[:, 1:] if close.shape[1] > 1 else close
    return float(max(0.0, max(later.min().min(), finals.median() - 25) - 1))


def plot_asni2(frame: pd.DataFrame, storage: pd.DataFrame) -> Figure:
    """Left: accuracy per (re)training epoch, mean ± std over seeds; right: storage in bytes (log scale)."""
    style.set_style()
    fig = Figure(figsize=(15.5, 5))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1], "wspace": 0.5})
    labels = [VARIANT_LABELS[v] for v in VARIANTS if v in set(frame["variant"])]
    colours = style.method_palette(labels)
    widths = {VARIANT_LABELS["asni2"]: 2.4, VARIANT_LABELS["asni1"]: 1.8}
    for label in labels:
        style.line_with_band(left, frame[frame["label"] == label], "epoch", "value", "label", hue_order=[label],
                             palette=colours, marker="o" if label in widths else None,
                             linewidth=widths.get(label, 1.2),
                             linestyle=":" if label == VARIANT_LABELS["dense"] else "-")
    low = _accuracy_floor(frame)
    if frame["value"].min() < low:
        left.text(0.01, 0.01, f"values below {low:.0f} % not shown", transform=left.transAxes, fontsize="small",
                  color="0.4")
    left.set(xlabel="epoch of (re)training", ylabel="test accuracy (%)",
             title="(a) retraining under the final ASNI-I mask", ylim=(low, None))
    left.legend(fontsize=style.LEGEND_FONTSIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    rows = storage.iloc[::-1]
    bar_colours = ["0.6" if "dense" in i or "trained" in i else (colours[VARIANT_LABELS["asni2"]]
                   if "in all" in i else "0.8") for i in rows["item"]]
    names = [textwrap.fill(i, 26) for i in rows["item"]]
    right.barh(names, rows["bytes"], color=bar_colours)
    right.set_xscale("log")
    for y, r in enumerate(rows.itertuples()):
        right.text(r.bytes * 1.3, y, human_bytes(r.bytes), va="center", fontsize="medium")  # details: the table
    right.set_xlim(min(rows["bytes"]) / 2, max(rows["bytes"]) * 60)  # room for the labels on the right
    decades = range(math.floor(math.log10(min(rows["bytes"]))), math.ceil(math.log10(max(rows["bytes"]))) + 1)
    right.set_xticks([10.0**k for k in decades])  # no ticks out in the labels' room
    right.set(xlabel="storage (bytes, log scale)", title="(b) what the learned init costs")
    right.tick_params(axis="y", labelsize="small")
    right.yaxis.tick_right()  # the legend of (a) sits between the panels
    right.grid(axis="y", visible=False)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _describe(row: Any) -> str:
    """"6 numbers × 32 bits", "266,200 bits", "5,392 values × 32 + 266,200 mask bits" for a storage row."""
    if row.unit == "numbers":
        return f"{int(row.count):,} numbers × {BITS_PER_NUMBER} bits"
    if row.unit == "numbers + mask bits":
        return f"{int(row.count):,} values × {BITS_PER_NUMBER} + {int(row.bits - row.count * BITS_PER_NUMBER):,} mask bits"
    return f"{int(row.bits):,} bits"


@dataclass
class Asni2Params(AsniParams):
    """Figure 10: the ASNI parameters and the curves drawn."""

    variants: list[str] = param("curves drawn (ASNI variants)", default=list(VARIANTS), choices=VARIANTS)


@register_figure(number=10, name="asni2", params=Asni2Params, claims=claims.CLAIMS)
class Asni2:
    """Figure 10 (docs/figures.md item 10): ASNI-I, ASNI-II and the controls for every seed."""

    @staticmethod
    def runs(p: Asni2Params) -> list[Run]:
        if not set(p.variants) - {"dense"}:
            raise ValueError(f"parameter variants={p.variants}: needs an ASNI variant besides 'dense'")
        variants = list(dict.fromkeys(["asni1", *p.variants]))  # ASNI-I: the mask the storage is computed from
        return asni_runs(p, variants, tensors={"asni1": ("final",)})

    @staticmethod
    def draw(inputs: Inputs, p: Asni2Params) -> Drawn:
        records = inputs.records
        frame = retraining_frame(records, p.variants)
        first = next(r for r in inputs.runs if r.config.variant == "asni1")
        final = inputs.tensor(first.run_id, "final")
        _, masks = split_weights_and_masks(final)
        dense = records[(records["metric"] == "dense_parameters") & (records["stage"] == "final")]["value"]
        storage = storage_table(masks, int(dense.iloc[0]))
        fig = plot_asni2(frame, storage)
        caption = asni_caption(p, f"storage from seed {first.config.seed}'s final ASNI-I mask; 32-bit numbers")
        storage = storage.assign(description=[f"{_describe(r)} = {human_bytes(r.bytes)}" for r in storage.itertuples()])
        return Drawn(fig, caption, {"Accuracy per variant": accuracy_table(frame),
                                    "Storage of the learned init": storage})
