"""ASNI figures 8-10 (docs/figures.md; docs/methods.md §4): data preparation on synthetic tidy records, the
storage arithmetic of the learned init, drawing, and one end-to-end smoke run."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
import torch

from sparsity_lab.claims import concentration_data as _concentration_data
from sparsity_lab.figures import _bases, asni, asni2, asni_schedule
from sparsity_lab.figures import asni_concentration as concentration
from sparsity_lab.masks import split_weights_and_masks
from sparsity_lab.report import pipeline

S_MAX, KAPPA, T, N_LAYER = 90.0, 1.0, 6, {"fc1.weight": 600, "fc2.weight": 300, "fc3.weight": 100}


def _row(t, metric, value, scope="model", group="all", stage="epoch", **extra):
    return {"iteration": t, "stage": stage, "metric": metric, "scope": scope, "group": group,
            "p": math.nan, "q": math.nan, "value": float(value), **extra}


def _target(t: int) -> float:
    return S_MAX / (1 + math.exp(-(t - 0.5 * T) / KAPPA))


def schedule_records(seeds=(0, 1)) -> pd.DataFrame:
    """ASNI-I per-epoch records: realised global sparsity = round(s(t)·N/100)/N, split over layers."""
    n = sum(N_LAYER.values())
    rows = []
    for seed in seeds:
        for t in range(T):
            zeros = round(_target(t) * n / 100)
            rows += [_row(t, "target_sparsity", _target(t)), _row(t, "sparsity", 100 * zeros / n, scope="global"),
                     _row(t, "accuracy", 0.9 - 0.01 * t + 0.01 * seed), _row(t, "threshold", 0.01 * t or math.nan)]
            left = zeros
            for name, size in N_LAYER.items():  # fc1 takes as many zeros as it can, then fc2, ...
                z = min(size - 1, left)
                left -= z
                rows.append(_row(t, "sparsity", 100 * z / size, scope="layer", group=name))
        rows = [{**r, "seed": r.get("seed", seed), "variant": "asni1"} for r in rows]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- parameters
def test_asni_params_are_typed_and_build_the_training_settings():
    params = pipeline.resolve("asni_schedule", "smoke", epochs=3, lr=0.5, seeds=None)
    config = _bases.asni_config(params, "asni1", 0)
    assert config.train.epochs == 3 and config.train.lr == 0.5 and params.seeds == [0] and params.profile == "smoke"
    with pytest.raises(ValueError, match="unknown parameter 'train_nonsense'"):
        pipeline.resolve("asni_schedule", "smoke", train_nonsense=1)


def test_caption_names_every_required_field_from_the_params_that_made_the_runs():
    params = pipeline.resolve("asni2", "smoke", epochs=4, kappa=0.5, tau=0.3)
    text = _bases.asni_caption(params, "note")
    for part in ("profile smoke", "dataset digits", "model lenet300_100", "T=4 epochs", "seeds 0 (n=1)",
                 "scope global (ASNI)", "ranked: n/a (one run)", "S_max=90 %", "κ=0.5", "τ=0.3", "note"):
        assert part in text
    assert {r.config.tau for r in asni2.Asni2.runs(params)} == {0.3}  # the caption's τ is the runs' τ


def test_schedule_frame_aligns_target_and_realised_on_the_same_epoch():
    records = schedule_records()
    frame = asni_schedule.schedule_frame(records)
    assert set(frame["kind"]) == {"target", "global", "layer"}
    table = asni_schedule.schedule_table(frame, asni.epoch_metric(records, "accuracy"))
    n = sum(N_LAYER.values())
    assert list(table["epoch"]) == list(range(T))
    np.testing.assert_allclose(table["target s(t) %"], [_target(t) for t in range(T)])
    # realised = round(s(t)·N/100)/N: within half a weight of the target at the same t (a one-epoch
    # shift would be off by far more in the steep middle of the sigmoid)
    assert (table["realised − target (pp)"].abs() <= 50 / n + 1e-12).all()
    assert table["global std"].fillna(0).eq(0).all()  # both seeds prune identically here
    np.testing.assert_allclose(table["test accuracy %"], [100 * (0.905 - 0.01 * t) for t in range(T)])
    np.testing.assert_allclose(table["accuracy std"], 100 * np.std([0.0, 0.01], ddof=1))
    # per-layer zero counts add up to the global one
    layer_zeros = sum(table[f"{k} %"] * v / 100 for k, v in N_LAYER.items())
    np.testing.assert_allclose(layer_zeros, table["global sparsity %"] * n / 100)


def test_schedule_frame_needs_asni1_targets():
    records = schedule_records()
    with pytest.raises(ValueError, match="target_sparsity"):
        asni_schedule.schedule_frame(records[records["metric"] != "target_sparsity"])
    with pytest.raises(ValueError, match="asni1"):
        asni_schedule.schedule_frame(records.assign(variant="dense"))


def test_plot_schedule_draws_two_panels():
    records = schedule_records()
    fig = asni_schedule.plot_schedule(asni_schedule.schedule_frame(records), asni.epoch_metric(records),
                                      s_max=S_MAX)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "target s(t)" in labels and "realised (global)" in labels and "layer fc1.weight" in labels
    assert len(fig.axes) == 3  # two panels + the sparsity twin axis


# ------------------------------------------------------------------------------------- figure 9
def _asni_network(seed=0):
    """A fake final ASNI-I network: per layer survivors outside ±θ, a mask, records incl. histograms."""
    g = torch.Generator().manual_seed(seed)
    theta, weights, masks, rows = 0.05, {}, {}, []
    for name, size in N_LAYER.items():
        w = torch.randn(size, generator=g) * 0.1
        keep = w.abs() > theta
        w = w * keep
        weights[name], masks[name] = w, keep
        alive = w[keep].double().numpy()
        counts, edges = np.histogram(alive, bins=12, range=(alive.min(), alive.max()))
        rows += [_row(T - 1, "c_minus", alive[alive < 0].mean(), "layer", name, "final"),
                 _row(T - 1, "c_plus", alive[alive > 0].mean(), "layer", name, "final"),
                 _row(T - 1, "surviving", keep.sum().item(), "layer", name, "final")]
        rows += [_row(T - 1, "histogram", c, "layer", name, "final", bin_left=edges[i], bin_right=edges[i + 1])
                 for i, c in enumerate(counts)]
    rows += [_row(t, "threshold", v) for t, v in enumerate([math.nan, 0.01, theta, math.nan])]
    final = {**{f"model.{k}": v for k, v in weights.items()}, **{f"mask.{k}": m.to(torch.uint8) for k, m in masks.items()}}
    return pd.DataFrame(rows).assign(seed=seed, variant="asni1"), final, weights, masks


def test_last_threshold_is_the_last_finite_one():
    records, *_ = _asni_network()
    assert concentration.last_threshold(records) == 0.05
    with pytest.raises(ValueError, match="never pruned"):
        concentration.last_threshold(records[records["metric"] != "threshold"])


def test_stored_histograms_rebuild_edges_and_counts():
    records, _, weights, masks = _asni_network()
    hists = concentration.stored_histograms(records)
    for name, (edges, counts) in hists.items():
        alive = weights[name][masks[name]].double().numpy()
        want_counts, want_edges = np.histogram(alive, bins=12, range=(alive.min(), alive.max()))
        np.testing.assert_allclose(edges, want_edges)
        np.testing.assert_array_equal(counts, want_counts)
    shuffled = records.sample(frac=1.0, random_state=0)  # row order must not matter
    np.testing.assert_array_equal(concentration.stored_histograms(shuffled)["fc2.weight"][1], hists["fc2.weight"][1])
    broken = records[~((records["metric"] == "histogram") & (records["group"] == "fc1.weight")
                       & (records["bin_left"] == records.loc[records["metric"] == "histogram", "bin_left"].iloc[3]))]
    with pytest.raises(ValueError, match="contiguous"):
        concentration.stored_histograms(broken)
    wrong = records.copy()
    wrong.loc[(wrong["metric"] == "surviving") & (wrong["group"] == "fc3.weight"), "value"] += 1
    with pytest.raises(ValueError, match="surviving"):
        concentration.stored_histograms(wrong)


@pytest.mark.parametrize("lo, hi, max_bins", [(-1.0, 1.0, 1000), (-3.0, 0.5, 1000), (-7.3, 9.1, 40), (0.0, 0.4, 10)])
def test_shared_edges_extend_by_whole_bins_and_merge_exactly(lo, hi, max_bins):
    edges = np.linspace(-0.5, 0.5, 21)
    new, left, right, k = concentration.shared_edges(edges, lo, hi, max_bins)
    assert new[0] <= min(lo, edges[0]) + 1e-12 and new[-1] >= max(hi, edges[-1]) - 1e-12
    assert len(new) - 1 <= max_bins
    np.testing.assert_allclose(np.diff(new), 0.05 * k)
    values = np.random.default_rng(0).uniform(-0.5, 0.5, 500)
    fine, _ = np.histogram(values, bins=edges)
    regridded = _concentration_data._regrid(fine.astype(float), left, right, k)
    np.testing.assert_array_equal(regridded, np.histogram(values, bins=new)[0])


def test_panel_stats_closed_forms():
    w = {"a": torch.tensor([-3.0, -1.0, 0.5, 2.0, 4.0]), "b": torch.tensor([0.1, -0.2, 5.0])}
    m = {"a": torch.tensor([1, 0, 0, 1, 1]).bool(), "b": torch.tensor([0, 0, 1]).bool()}
    layer = concentration.panel_stats(w, m, "x", "layer").set_index("layer")
    assert layer.loc["a", "c⁻"] == -3.0 and layer.loc["a", "c⁺"] == 3.0
    assert math.isnan(layer.loc["b", "c⁻"]) and layer.loc["b", "c⁺"] == 5.0
    assert layer.loc["a", "θ"] == 1.0 and layer.loc["b", "θ"] == pytest.approx(0.2)
    assert layer.loc["a", "sparsity %"] == 40.0 and layer.loc["b", "surviving"] == 1
    glob = concentration.panel_stats(w, m, "x", "global").set_index("layer")
    assert (glob["θ"] == 1.0).all()
    ticket = concentration.panel_stats({"a": w["a"] * m["a"]}, {"a": m["a"]}, "t")
    assert math.isnan(ticket.loc[0, "θ"])  # pruned entries stored as zeros carry no threshold


def test_concentration_data_shares_edges_per_layer_and_keeps_asni_levels():
    records, final, weights, masks = _asni_network()
    dense = {k: torch.randn(v, generator=torch.Generator().manual_seed(1)) * 0.2 for k, v in N_LAYER.items()}
    half = {k: w.abs() > w.abs().median() for k, w in dense.items()}
    hist, stats = concentration.concentration_data(records, final, {"other": (dense, half, "layer")}, max_bins=60)
    for layer, part in hist.groupby("layer"):
        by_panel = [p[["bin_left", "bin_right"]].to_numpy() for _, p in part.groupby("panel")]
        np.testing.assert_allclose(by_panel[0], by_panel[1])
        for panel, p in part.groupby("panel"):
            row = stats[(stats["layer"] == layer) & (stats["panel"] == panel)].iloc[0]
            assert p["count"].sum() == row["surviving"]
    asni_rows = stats[stats["panel"] == concentration.ASNI_PANEL].set_index("layer")
    for name in N_LAYER:
        alive = weights[name][masks[name]].double()
        assert asni_rows.loc[name, "c⁺"] == pytest.approx(alive[alive > 0].mean().item())
        assert asni_rows.loc[name, "θ"] == 0.05
        assert asni_rows.loc[name, "mode⁻"] < -0.05 < 0.05 < asni_rows.loc[name, "mode⁺"]


def test_plot_concentration_one_axis_per_layer_and_panel():
    records, final, *_ = _asni_network()
    dense = {k: torch.linspace(-1, 1, v) for k, v in N_LAYER.items()}
    keep = {k: w.abs() > 0.5 for k, w in dense.items()}
    hist, stats = concentration.concentration_data(records, final, {"other": (dense, keep, "global")})
    fig = concentration.plot_concentration(hist, stats)
    assert len(fig.axes) == 2 * len(N_LAYER)
    assert "sparsity" in fig.axes[0].get_title()


def test_oneshot_runs_prune_the_dense_weights_to_the_asni_sparsity(trainings, tmp_path):
    """Figure 9's contrasts are runs: global keeps ASNI-I's survivor count under one threshold, layer-wise
    prunes every layer to S; they train nothing and the figure only reads their tensors."""
    from sparsity_lab import experiments
    from sparsity_lab.store import ResultsStore, load_tensors

    store = ResultsStore(tmp_path)
    params = pipeline.resolve("asni_concentration", "smoke", epochs=3)
    asni1 = _bases.asni_config(params, "asni1", 0)
    before = trainings()
    for variant in ("oneshot_global", "oneshot_layer"):
        experiments.run(_bases.asni_config(params, variant, 0), store=store, device="cpu", progress=False)
    assert trainings() - before == 6  # asni1 and dense, 3 epochs each; one-shot: 0
    _, asni_masks = split_weights_and_masks(load_tensors(asni1.run_id, store=store))
    kept = sum(int(m.sum()) for m in asni_masks.values())
    glob = load_tensors(_bases.asni_config(params, "oneshot_global", 0).run_id, store=store)
    layer = load_tensors(_bases.asni_config(params, "oneshot_layer", 0).run_id, store=store)
    names = list(asni_masks)
    assert sum(int(glob[f"mask.{k}"].sum()) for k in names) == kept
    w = {k: glob[f"model.{k}"] for k in names}
    alive = torch.cat([w[k][glob[f"mask.{k}"].bool()].abs() for k in names])
    dead = torch.cat([w[k][~glob[f"mask.{k}"].bool()].abs() for k in names])
    assert alive.min() >= dead.max()
    fraction = 1 - kept / sum(m.numel() for m in asni_masks.values())
    for k in names:
        n = asni_masks[k].numel()
        assert int(layer[f"mask.{k}"].sum()) == n - round(fraction * n)
    assert asni1.dependencies() == [] and len(_bases.asni_config(params, "oneshot_layer", 0).dependencies()) == 2


# ------------------------------------------------------------------------------------- figure 10
def test_storage_of_the_learned_init_for_lenet300_100():
    from sparsity_lab.models import create_model

    model = create_model("lenet300_100", "mnist")
    g = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=g) < 0.05 for n, p in model.named_parameters() if p.dim() > 1}
    dense = sum(p.numel() for p in model.parameters())
    table = asni2.storage_table(masks, dense).set_index("item")
    surviving = sum(int(m.sum()) for m in masks.values())
    assert dense == 266_610
    assert table.loc["learned levels c⁻, c⁺ (2L)", "count"] == 6
    assert table.loc["learned levels c⁻, c⁺ (2L)", "bits"] == 6 * 32
    assert table.loc["mask (1 bit per prunable weight)", "bits"] == 784 * 300 + 300 * 100 + 100 * 10 == 266_200
    assert table.loc["signs (1 bit per surviving weight)", "bits"] == surviving
    total = 192 + 266_200 + surviving
    assert table.loc["ASNI-II init in all", "bits"] == total
    assert table.loc["ASNI-II init in all", "bytes"] == math.ceil(total / 8)
    assert table.loc["dense network (all parameters)", "bytes"] == 4 * 266_610
    assert table.loc["trained sparse network (values + mask)", "bits"] == 32 * surviving + 266_200
    assert table.loc["ASNI-II init in all", "fraction of dense"] == pytest.approx(total / (32 * 266_610))


def _retraining_records(seeds=(0, 1)):
    rows = []
    for i, variant in enumerate(asni2.VARIANTS):
        for seed in seeds:
            for t in range(4):
                rows.append({**_row(t, "accuracy", 0.5 + 0.1 * t - 0.02 * i + 0.01 * seed), "seed": seed,
                             "variant": variant})
    return pd.DataFrame(rows)


def test_retraining_frame_and_accuracy_table():
    frame = asni2.retraining_frame(_retraining_records())
    assert frame["value"].max() == pytest.approx(100 * (0.8 + 0.01))
    table = asni2.accuracy_table(frame).set_index("variant")
    assert list(table.index) == list(asni2.VARIANTS)
    assert table.loc["asni2", "final accuracy %"] == pytest.approx(100 * 0.805)
    assert table.loc["asni2", "final std"] == pytest.approx(100 * np.std([0, 0.01], ddof=1))
    assert table.loc["mask_init", "vs ASNI-I (pp)"] == pytest.approx(-2.0)
    assert table.loc["dense", "seeds"] == 2 and table.loc["dense", "final epoch"] == 3
    with pytest.raises(ValueError, match="std_levels"):
        asni2.retraining_frame(_retraining_records().query("variant != 'std_levels'"))


def test_plot_asni2_has_a_curve_per_variant_and_a_storage_panel():
    from sparsity_lab.models import create_model

    model = create_model("lenet300_100", "mnist")
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in model.named_parameters() if p.dim() > 1}
    fig = asni2.plot_asni2(asni2.retraining_frame(_retraining_records()), asni2.storage_table(masks, 266_610))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == [asni.VARIANT_LABELS[v] for v in asni2.VARIANTS]
    assert len(fig.axes[1].patches) == 6


# ------------------------------------------------------------------------------------- end to end
_RUNNERS = ("sparsity_lab.sweep.runner", "sparsity_lab.rules.prune", "sparsity_lab.rules.asni_schedule", "sparsity_lab.masks")


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in _RUNNERS), reason="runners not there yet")
def test_asni_schedule_smoke_end_to_end(tmp_path):
    from sparsity_lab.store import ResultsStore

    result = pipeline.make_figure("asni_schedule", "smoke", store=ResultsStore(tmp_path / "store"),
                                  output_dir=tmp_path / "out", progress=False, epochs=3, device="cpu")
    files = {p.name for p in result.files}
    assert {"08_asni_schedule.png", "08_asni_schedule.pdf", "08_asni_schedule.meta.json"} <= files | {
        "08_asni_schedule.meta.json"}
    assert all((tmp_path / "out" / f).stat().st_size > 0 for f in files)
    table = result.tables["Schedule per epoch"]
    assert len(table) == 3 and len(result.run_ids) == 2  # ASNI-I and the dense run of claim 8.2
    assert (table["realised − target (pp)"].abs() < 1.0).all()


def test_paper_and_gpu_profiles_follow_the_spec():
    """docs/figures.md: 'paper' for ASNI = the authors' CIFAR10 ResNet-18 protocol (docs/methods.md §4);
    'gpu' = the authors' full MNIST LeNet-300-100 budget."""
    for figure in ("asni_schedule", "asni_concentration", "asni2"):
        p = pipeline.resolve(figure, "paper")
        train = _bases.asni_config(p, "asni1", 0).train
        assert (p.dataset, p.model, p.s_max, p.kappa) == ("cifar10", "resnet18", 97.0, 16.0)
        assert p.seeds == [0, 1, 2, 3] and p.train_subset == 0
        assert (train.optimizer, train.lr, train.momentum, train.weight_decay, train.batch_size, train.epochs,
                train.lr_schedule) == ("sgd", 0.05, 0.9, 5e-4, 128, 160, "cosine")
        assert p.kappa == train.epochs / 10  # κ ≈ T/10 as in the authors' runs
        g = pipeline.resolve(figure, "gpu")
        train = _bases.asni_config(g, "asni1", 0).train
        assert (g.dataset, g.model, g.s_max, g.kappa, g.seeds, g.train_subset) == (
            "mnist", "lenet300_100", 98.0, 5.0, [0, 1, 2, 3], 0)
        assert (train.optimizer, train.lr, train.batch_size, train.epochs) == ("adam", 1e-3, 60, 50)


@pytest.mark.parametrize(("n", "k", "expected"), [(3, 4, [0, 1, 2]), (21, 4, [0, 7, 13, 20]), (21, 2, [0, 20]),
                                                  (5, 1, [0]), (10, 10, list(range(10)))])
def test_layers_to_draw_keeps_first_and_last_evenly_spaced(n, k, expected):
    layers = [f"l{i}" for i in range(n)]
    assert concentration.layers_to_draw(layers, k) == [f"l{i}" for i in expected]


def test_layers_to_draw_rejects_zero():
    with pytest.raises(ValueError, match="max_layers=0"):
        concentration.layers_to_draw(["a"], 0)


def test_concentration_ticket_panel_is_an_lt_run_of_the_same_data_and_model():
    from sparsity_lab.figures.registry import get_figure

    spec = get_figure("asni_concentration")
    assert not [r for r in spec.runs(pipeline.resolve(spec, "quick")) if r.config.kind == "iterative"]
    (ticket,) = [r for r in spec.runs(pipeline.resolve(spec, "gpu")) if r.config.kind == "iterative"]
    c = ticket.config
    assert (c.method, c.prune_fraction, c.iterations, c.dataset, c.model, c.train.epochs) == (
        "lt", 0.2, 20, "mnist", "lenet300_100", 5)
    assert ticket.tensors == ("final",) and 0.8 ** 20 < 0.02  # as sparse as ASNI-I's S_max = 98 %


def test_panel_a_spreads_the_compared_lines_over_its_height():
    """Near-equal finals at ~98 % and a random init at chance in epoch 0: the axis starts just under the
    lines after epoch 0, not 25 points under them (which squashed them into the top of the panel)."""
    from sparsity_lab.figures import style

    rows = []
    for i, variant in enumerate(asni2.VARIANTS):
        for t in range(5):
            acc = 0.1 if t == 0 else 0.97 + 0.002 * t - 0.001 * i
            rows.append({**_row(t, "accuracy", acc), "seed": 0, "variant": variant})
    frame = asni2.retraining_frame(pd.DataFrame(rows))
    assert 95 < asni2._accuracy_floor(frame) < 97
    fig = asni2.plot_asni2(frame, asni2.storage_table({"w": torch.ones(3, 3, dtype=torch.bool)}, 20))
    assert fig.axes[0].get_ylim()[0] == pytest.approx(asni2._accuracy_floor(frame))
    assert fig.axes[0].get_legend().get_texts()[0].get_fontsize() == style.LEGEND_FONTSIZE >= 9
