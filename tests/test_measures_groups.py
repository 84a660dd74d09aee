"""Grouped measures (docs/methods.md §1) equal the direct formulas over each group's survivors, whatever the
pattern of empty groups (leading, inner, trailing rows; whole layers) and whatever the order of the tensors.

Regression: on the CPU the segment sum dropped the last survivor before empty trailing rows, so the global
PQI of a two-layer model depended on which layer came last (issue 9 §1).
"""

from __future__ import annotations

import contextlib
import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsity_lab.measures import segments as _segments
from sparsity_lab.measures.sparsity import SCOPES, measure_weights, pq_index, pq_index_by_group

PAIRS = ((0.5, 1.0), (1.0, 2.0), (0.3, 1.7))
PROPS = settings(max_examples=120, deadline=None, derandomize=True)


# ------------------------------------------------------------------------- direct formulas (numpy, float64)
def ref_pqi(s: np.ndarray, p: float, q: float) -> float:
    """I = 1 − M_p/M_q with M_r = (mean |s|^r)^(1/r); NaN for an empty or all-zero group."""
    a = np.abs(s)
    if a.size == 0 or not a.any():
        return math.nan
    return 1.0 - np.mean(a ** p) ** (1 / p) / np.mean(a ** q) ** (1 / q)


def ref_gini(s: np.ndarray) -> float:
    """Hurley–Rickard: Σ_k (2k − d − 1)·x_(k) / (d·Σx) over the ascending magnitudes; NaN if undefined."""
    a = np.sort(np.abs(s))
    if a.size == 0 or not a.any():
        return math.nan
    k = np.arange(1, a.size + 1)
    return float(np.sum((2 * k - a.size - 1) * a) / (a.size * a.sum()))


def ref_hoyer(s: np.ndarray) -> float:
    """(√d − ‖s‖₁/‖s‖₂)/(√d − 1); NaN for d ≤ 1 or an all-zero group."""
    a = np.abs(s)
    if a.size <= 1 or not a.any():
        return math.nan
    d = math.sqrt(a.size)
    return float((d - a.sum() / np.sqrt(np.sum(a * a))) / (d - 1))


def reference(weights: dict, masks: dict) -> dict[tuple[str, str, str, float, float], float]:
    """{(scope, group, metric, p, q): value} from the survivors of every group, computed directly."""
    groups = {("global", "all"): np.concatenate([weights[n].double().numpy()[masks[n].numpy()] for n in weights])}
    for n, w in weights.items():
        w64, m = w.double().numpy(), masks[n].numpy()
        groups[("layer", n)] = w64[m]
        for i in range(w.shape[0]):
            groups[("neuron", f"{n}[{i}]")] = w64[i].reshape(-1)[m[i].reshape(-1)]
    out = {}
    for (scope, group), s in groups.items():
        for p, q in PAIRS:
            out[(scope, group, "pqi", p, q)] = ref_pqi(s, p, q)
        out[(scope, group, "gini", None, None)] = ref_gini(s)
        out[(scope, group, "hoyer", None, None)] = ref_hoyer(s)
    return out


def keyed(records: list[dict]) -> dict:
    return {(r["scope"], r["group"], r["metric"], *((r["p"], r["q"]) if r["metric"] == "pqi" else (None, None))):
            r["value"] for r in records if r["metric"] != "remaining"}


def assert_close(got: float, want: float, what) -> None:
    # Gini ranks magnitudes at float32 resolution (see _segments): relative 1e-6 covers that
    assert (math.isnan(got) and math.isnan(want)) or abs(got - want) <= 1e-6 * max(1.0, abs(want)), (what, got, want)


# ------------------------------------------------------------------------------------ random masked models
ROW_KINDS = ("empty", "full", "one", "random")


@st.composite
def masked_models(draw):
    """1–4 tensors (2-D or conv 4-D) with rows that are empty, full, single-survivor or random; whole layers
    may be empty; survivors may include exact zeros."""
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    weights, masks = {}, {}
    for i in range(draw(st.integers(1, 4))):
        rows = draw(st.integers(1, 6))
        shape = (rows, draw(st.integers(1, 9))) if draw(st.booleans()) else (rows, 2, 2, draw(st.integers(1, 2)))
        w = torch.randn(shape, generator=g) * torch.rand(shape, generator=g).pow(3)
        if draw(st.booleans()):
            w[torch.rand(shape, generator=g) < 0.2] = 0.0
        m = torch.zeros(shape, dtype=torch.bool)
        layer_empty = draw(st.integers(0, 4)) == 0
        for r in range(rows):
            kind = "empty" if layer_empty else draw(st.sampled_from(ROW_KINDS))
            cols = m[r].numel()
            if kind == "full":
                m[r] = True
            elif kind == "one":
                m[r].view(-1)[draw(st.integers(0, cols - 1))] = True
            elif kind == "random":
                m[r] = torch.rand(m[r].shape, generator=g) < 0.5
        weights[f"l{i}.weight"], masks[f"l{i}.weight"] = w, m
    return weights, masks


@PROPS
@given(masked_models(), st.sampled_from([None, 1, 3, 16]), st.randoms(use_true_random=False))
def test_segmented_measures_equal_direct_formulas(model, block, rnd):
    weights, masks = model
    want = reference(weights, masks)
    names = list(weights)
    rnd.shuffle(names)  # any tensor order gives the same values
    shuffled = {n: weights[n] for n in names}
    with mock.patch.object(_segments, "_CPU_BLOCK", block) if block else contextlib.nullcontext():
        for ws in (weights, shuffled):
            got = keyed(measure_weights(ws, masks, scopes=SCOPES, pq_pairs=PAIRS, neuron_reduce=None))
            assert set(got) == set(want)
            for key, value in want.items():
                assert_close(got[key], value, key)


@PROPS
@given(masked_models(), st.sampled_from(SCOPES))
def test_pq_index_by_group_equals_direct_formula(model, scope):
    """SAP's prune count reads these per-group (d, I) pairs."""
    weights, masks = model
    want = reference(weights, masks)
    got = pq_index_by_group(weights, masks, scope, 0.5, 1.0)
    for group, (d, value) in got.items():
        if scope == "neuron":
            for i, (di, vi) in enumerate(zip(d.tolist(), value.tolist())):
                assert di == int(masks[group][i].sum())
                assert_close(vi, want[("neuron", f"{group}[{i}]", "pqi", 0.5, 1.0)], (group, i))
        else:
            assert int(d) == (sum(int(m.sum()) for m in masks.values()) if group == "all" else int(masks[group].sum()))
            assert_close(float(value), want[(scope, group, "pqi", 0.5, 1.0)], group)


@PROPS
@given(masked_models())
def test_measures_stay_in_their_bounds(model):
    """Gini, PQI (p < q) and Hoyer of any group with survivors lie in [0, 1]."""
    weights, masks = model
    for r in measure_weights(weights, masks, scopes=SCOPES, pq_pairs=PAIRS, neuron_reduce=None):
        if r["metric"] != "remaining" and not math.isnan(r["value"]):
            assert -1e-12 <= r["value"] <= 1.0 + 1e-12, r


def test_trailing_empty_rows_of_the_last_layer():
    """The issue's case: the last rows of the last tensor have no survivors; both orders give the direct value."""
    g = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(4, 5, generator=g), "b": torch.randn(3, 4, generator=g)}
    masks = {n: torch.rand(w.shape, generator=g) < 0.7 for n, w in weights.items()}
    masks["b"][1:] = False
    survivors = torch.cat([weights[n][masks[n]] for n in weights]).double()
    for order in (("a", "b"), ("b", "a")):
        recs = measure_weights({n: weights[n] for n in order}, masks, scopes=["global"], measures=["pqi"])
        assert recs[1]["value"] == pytest.approx(float(pq_index(survivors)), abs=1e-12)


@pytest.mark.parametrize("lengths", [[3, 0, 0], [0, 3, 0], [0, 0, 3], [2, 0, 1, 0], [1, 0, 0, 2, 0], [0, 0]])
@pytest.mark.parametrize("reduce", ["sum", "max"])
def test_segment_reduction_with_empty_segments(lengths, reduce):
    x = torch.arange(1.0, 1.0 + sum(lengths), dtype=torch.float64)
    parts = torch.split(x, lengths)
    empty = 0.0 if reduce == "sum" else -math.inf
    want = [float(p.sum() if reduce == "sum" else p.max()) if p.numel() else empty for p in parts]
    assert _segments._seg(x, torch.tensor(lengths), reduce).tolist() == want
