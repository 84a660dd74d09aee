"""SAP-paper figures 1-6 (docs/figures.md): data preparation on synthetic tidy records, drawing via a
fake store, and one end-to-end smoke run through the real runners."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures import pq_ablation
from sparsity_lab.figures import pq_heatmaps as heatmaps
from sparsity_lab.figures import pruning_scopes as scopes
from sparsity_lab.figures import sap_trajectories as trajectories
from sparsity_lab.figures import sap_vs_lth as comparison
from sparsity_lab.figures.registry import Inputs, get_figure
from sparsity_lab.report import pipeline

LAYERS = ("fc1.weight", "fc2.weight", "fc3.weight", "fc4.weight")
SAP = "SAP (p=0.5, q=1)"
LT = "LT (P=0.2)"


def _row(t, stage, metric, value, scope="model", group="all", p=math.nan, q=math.nan):
    return {"iteration": t, "stage": stage, "metric": metric, "scope": scope, "group": group, "p": p, "q": q,
            "value": float(value)}


def fake_records(run_id: str, seed: int, T: int, *, acc=None, remaining=None, pqi=None, pruned_acc=None,
                 grid: bool = False, layer_metric: str = "remaining", speedup=None, **config) -> pd.DataFrame:
    """Tidy records (README "Stored records") of one run with the given per-iteration curves."""
    acc = acc if acc is not None else [0.9 - 0.01 * t for t in range(T + 1)]
    remaining = remaining if remaining is not None else [0.8 ** t for t in range(T + 1)]
    pqi = pqi if pqi is not None else [0.15 + 0.01 * t for t in range(T + 1)]
    pruned_acc = pruned_acc if pruned_acc is not None else [a - 0.05 for a in acc]
    rows = []
    for t in range(T + 1):
        rows += [_row(t, "retrained", "accuracy", acc[t]), _row(t, "retrained", "remaining", remaining[t]),
                 _row(t, "retrained", "speedup", (speedup or [1 / r for r in remaining])[t]),
                 _row(t, "retrained", "pqi", pqi[t], "global", p=0.5, q=1.0),
                 _row(t, "retrained", "gini", 0.4 + 0.02 * t, "global")]
        for i, layer in enumerate(LAYERS):
            rows += [_row(t, "retrained", layer_metric, remaining[t] ** (1 + i / 4), "layer", layer),
                     _row(t, "retrained", "pqi", pqi[t] + i / 100, "layer", layer, 0.5, 1.0)]
        if grid:
            for p in heatmaps.P_GRID:
                for q in heatmaps.Q_GRID:
                    if p < q:  # (0.5, 1.0) repeats the tracked pair with the same value
                        value = pqi[t] if (p, q) == (0.5, 1.0) else (q - p) / 2 + t / 100
                        rows.append(_row(t, "retrained", "pqi", value, "global", p=p, q=q))
        if t < T:
            rows += [_row(t, "pruned", "accuracy", pruned_acc[t]), _row(t, "pruned", "remaining", remaining[t + 1]),
                     _row(t, "pruned", "pqi", pqi[t] + 0.03, "global", p=0.5, q=1.0)]
    frame = pd.DataFrame(rows)
    return frame.assign(run_id=run_id, seed=seed, **config)


def fake_fetch(configs, **_):
    """Stand-in for the store: deterministic curves per config (SAP's PQI goes down, up, down)."""
    frames = []
    for cfg in {c.run_id: c for c in configs}.values():
        T = cfg.iterations
        jitter = (zlib.crc32(cfg.run_id.encode()) % 100) / 1e4
        pqi = [0.2 - 0.02 * t if t <= 1 else 0.18 + 0.03 * (t - 1) for t in range(T + 1)]
        pqi[-1] = pqi[-2] - 0.05
        rate = 0.7 if cfg.method == "sap" else 0.8
        frames.append(fake_records(cfg.run_id, cfg.seed, T, remaining=[rate ** t for t in range(T + 1)],
                                   acc=[0.9 - 0.02 * t + jitter for t in range(T + 1)],
                                   pqi=[v + jitter for v in pqi], grid=True, method=cfg.method,
                                   config_scope=cfg.scope, config_p=cfg.p, config_q=cfg.q))
    return pd.concat(frames, ignore_index=True)


def labelled(runs):
    """records + assignments from [(run_id, family, label, seed, kwargs)]."""
    frames, rows = [], []
    for run_id, family, label, seed, kw in runs:
        frames.append(fake_records(run_id, seed, kw.pop("T", 3), **kw))
        rows.append({"run_id": run_id, "family": family, "label": label})
    return common.attach_labels(pd.concat(frames, ignore_index=True), pd.DataFrame(rows))


# -- shared helpers -------------------------------------------------------------------------------

def test_attach_labels_duplicates_shared_runs_and_rejects_missing():
    records = fake_records("r1", 0, 2)
    both = common.attach_labels(records, pd.DataFrame({"run_id": ["r1", "r1"], "family": ["a", "b"],
                                                       "label": ["x", "x"]}))
    assert len(both) == 2 * len(records)
    assert set(both["family"]) == {"a", "b"}
    with pytest.raises(ValueError, match="no records for run"):
        common.attach_labels(records, pd.DataFrame({"run_id": ["r2"], "family": [""], "label": ["y"]}))


def test_one_per_collapses_equal_duplicates_and_rejects_conflicts():
    frame = pd.DataFrame({"k": [1, 1, 2], "value": [0.5, 0.5, 0.7]})
    assert common.one_per(frame, ["k"])["value"].tolist() == [0.5, 0.7]
    with pytest.raises(ValueError, match="conflicting"):
        common.one_per(pd.DataFrame({"k": [1, 1], "value": [0.5, 0.6]}), ["k"])


def test_select_names_what_is_present_when_nothing_matches():
    with pytest.raises(KeyError, match="present"):
        common.select(fake_records("r", 0, 1), "hoyer", scope="global")


def test_summarise_mean_and_sample_std_over_seeds():
    frame = pd.DataFrame({"label": ["a"] * 3, "iteration": [0] * 3, "seed": [0, 1, 2], "value": [1.0, 2.0, 6.0]})
    row = common.summarise(frame, ["label", "iteration"]).iloc[0]
    assert row["mean"] == pytest.approx(3.0)
    assert row["std"] == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert row["n"] == 3


def test_resolved_params_build_the_configs_of_the_runs():
    params = pipeline.resolve("sap_trajectories", "smoke", epochs=3, iterations=5, seeds=None)
    assert params.epochs == 3 and params.iterations == 5 and params.seeds == [0]
    configs = [r.config for r in get_figure(1).runs(params)]
    assert {(c.train.epochs, c.iterations, c.seed) for c in configs} == {(3, 5, 0)}


def test_method_variants_rejects_unknown_labels():
    assert [v.label for v in common.method_variants()] == [SAP, "SAP (p=1, q=2)", LT, "OS (P=0.2)"]
    with pytest.raises(ValueError, match="allowed"):
        common.method_variants(["SAP"])


# -- figure 1 -------------------------------------------------------------------------------------

def test_trajectory_frame_percent_and_per_seed_differences():
    records = labelled([("a", "", SAP, 0, {"acc": [0.9, 0.8, 0.7], "pruned_acc": [0.6, 0.5, 0.0], "T": 2}),
                        ("b", "", SAP, 1, {"acc": [0.8, 0.8, 0.6], "pruned_acc": [0.7, 0.2, 0.0], "T": 2})])
    frame = trajectories.trajectory_frame(records).set_index(["seed", "panel", "iteration"])["value"]
    assert frame[(0, "accuracy", 1)] == pytest.approx(80.0)
    assert frame[(0, "remaining", 2)] == pytest.approx(64.0)
    assert frame[(1, "accuracy_gap", 1)] == pytest.approx(80.0 - 20.0)
    assert frame[(0, "pqi_gap", 0)] == pytest.approx(0.03)  # pruned − retrained
    assert (0, "accuracy_gap", 2) not in frame.index  # no pruned model after the last iteration
    stats = common.summarise(trajectories.trajectory_frame(records), ["panel", "iteration"])
    gap0 = stats[(stats["panel"] == "accuracy_gap") & (stats["iteration"] == 0)].iloc[0]
    assert gap0["mean"] == pytest.approx(20.0) and gap0["std"] == pytest.approx(math.sqrt(200.0))


def test_phases_table_is_the_claims_rule():
    """The phase table reports what claim 1.1's rule finds (claims.pqi_phases.find_phases), nothing else:
    a rise and a small late drop without a collapse (the gpu profile's LT) is not "three phases"."""
    from sparsity_lab.claims.pqi_phases import find_phases

    pqi = [0.20, 0.15, 0.12, 0.14, 0.20, 0.30, 0.40, 0.25, 0.15, 0.12, 0.10]
    collapse = [0.90, 0.90, 0.90, 0.89, 0.88, 0.87, 0.80, 0.50, 0.30, 0.15, 0.12]
    small_drop = [0.20, 0.12, 0.10, 0.09, 0.09, 0.10, 0.11, 0.12, 0.13, 0.14, 0.133]
    records = labelled([("a", "", SAP, 0, {"pqi": pqi, "acc": collapse, "T": 10}),
                        ("b", "", LT, 0, {"pqi": small_drop, "acc": [0.9] * 11, "T": 10})])
    table = trajectories.phases_table(trajectories.trajectory_frame(records)).set_index("label")
    sap = table.loc[SAP]
    assert (sap["trough_iteration"], sap["peak_iteration"], sap["drop_iteration"]) == (2, 6, 7)
    assert sap["three_phases"] and sap["reached"] == "three phases"
    rule = find_phases(pd.Series(pqi), 100 * pd.Series(collapse))
    assert sap["finding"] == rule.text and (rule.t_min, rule.t_max, rule.t_3) == (2, 6, 7)
    lt = table.loc[LT]
    assert not lt["three_phases"] and lt["reached"] == "no drop" and math.isnan(lt["drop_iteration"])
    short = labelled([("c", "", SAP, 0, {"pqi": [0.2, 0.1, 0.3], "T": 2})])
    row = trajectories.phases_table(trajectories.trajectory_frame(short)).iloc[0]
    assert row["reached"] == "untestable" and "too short" in row["finding"]


def test_endpoint_table_reads_last_iteration():
    records = labelled([("a", "f", SAP, 0, {"acc": [0.9, 0.95, 0.5], "T": 2})])
    row = trajectories.endpoint_table(trajectories.trajectory_frame(records)).iloc[0]
    assert row["accuracy_at_T (%)"] == pytest.approx(50.0) and row["best_at_iteration"] == 1
    assert row["remaining_at_T (%)"] == pytest.approx(64.0)


# -- figure 2 -------------------------------------------------------------------------------------

def test_accuracy_is_paired_with_its_own_runs_remaining():
    records = labelled([("g", "global", SAP, 0, {"remaining": [1.0, 0.5, 0.25], "acc": [0.9, 0.8, 0.7], "T": 2}),
                        ("n", "neuron", SAP, 0, {"remaining": [1.0, 0.9, 0.81], "acc": [0.9, 0.6, 0.3], "T": 2})])
    pairs = scopes.accuracy_vs_remaining(records).set_index(["family", "iteration"])
    assert tuple(pairs.loc[("global", 2), ["remaining", "accuracy"]]) == pytest.approx((25.0, 70.0))
    assert tuple(pairs.loc[("neuron", 2), ["remaining", "accuracy"]]) == pytest.approx((81.0, 30.0))
    assert (pairs["run_id"].groupby(level="family").nunique() == 1).all()


def test_pick_layers_first_middle_last():
    assert list(scopes.pick_layers(LAYERS)) == ["fc1.weight", "fc3.weight", "fc4.weight"]
    assert list(scopes.pick_layers(["a", "b"])) == ["a", "b"]
    assert scopes.pick_layers(["only"]) == {"only": "first: only"}
    with pytest.raises(ValueError):
        scopes.pick_layers([])


@pytest.mark.parametrize("metric", ["remaining", "density"])
def test_layer_frame_reads_layer_remaining_and_pqi(metric):
    records = labelled([("g", "global", SAP, 0, {"remaining": [1.0, 0.5], "T": 1, "layer_metric": metric})])
    frame = scopes.layer_frame(records).set_index(["layer", "panel", "iteration"])["value"]
    assert frame[("last: fc4.weight", "remaining", 1)] == pytest.approx(100 * 0.5 ** 1.75)
    assert frame[("middle: fc3.weight", "pqi", 0)] == pytest.approx(0.15 + 0.02)
    assert len(frame.index.get_level_values("layer").unique()) == 3


# -- figure 5 -------------------------------------------------------------------------------------

def test_pq_pivot_full_grid_with_nan_where_undefined():
    records = labelled([("s", "", SAP, 0, {"grid": True, "T": 2})])
    grid = heatmaps.pq_grid_frame(records, [0, 2])
    table = heatmaps.pq_pivot(grid, SAP, 2)
    assert table.shape == (10, 11)
    assert math.isnan(table.loc[1.0, 1.0]) and not math.isnan(table.loc[0.9, 1.0])
    p, q = np.meshgrid(table.index, table.columns, indexing="ij")
    assert np.isnan(table.to_numpy()[p >= q - 1e-12]).all()
    assert np.isfinite(table.to_numpy()[p < q - 1e-12]).all()
    assert table.loc[0.3, 1.7] == pytest.approx((1.7 - 0.3) / 2 + 0.02)
    assert table.loc[0.5, 1.0] == pytest.approx(0.15 + 0.02)  # the tracked pair, recorded twice, once here
    with pytest.raises(ValueError, match="iteration"):
        heatmaps.pq_grid_frame(records, [5])
    assert heatmaps.default_iterations(1) == (0, 1) and heatmaps.default_iterations(8) == (0, 4, 8)


# -- figure 6 -------------------------------------------------------------------------------------

def _eff(label, seed, remaining, accuracy, family="s"):
    return pd.DataFrame({"family": family, "label": label, "seed": seed, "iteration": range(len(accuracy)),
                         "remaining": remaining, "accuracy": accuracy, "speedup": [100 / r for r in remaining]})


def test_sparsest_within_one_point_of_dense():
    frame = pd.concat([
        _eff("A", 0, [100, 50, 20, 10], [90.0, 89.4, 88.8, 80.0]),
        _eff("A", 1, [100, 50, 20, 10], [90.0, 89.6, 89.0, 80.0]),   # means 89.5, 88.9: 20 % fails by 0.1
        _eff("B", 0, [100, 40, 20, 10], [90.0, 85.0, 89.2, 70.0]),   # recovers after a dip: 20 % qualifies
        _eff("C", 0, [100, 80], [90.0, 88.0]),
    ], ignore_index=True)
    table = comparison.sparsest_within(frame).set_index("method")
    assert table.loc["A", "dense accuracy (%)"] == pytest.approx(90.0)
    assert table.loc["A", "sparsest remaining (%)"] == 50 and table.loc["A", "accuracy there (%)"] == pytest.approx(89.5)
    assert table.loc["B", "sparsest remaining (%)"] == 20 and table.loc["B", "compression (×)"] == pytest.approx(5.0)
    assert table.loc["C", "sparsest remaining (%)"] == 100
    none = comparison.sparsest_within(pd.concat([_eff("A", 0, [100, 50], [90.0, 10.0]),
                                                 _eff("B", 0, [100, 50], [80.0, 10.0])]), tolerance=1.0)
    assert none.set_index("method").loc["A", "sparsest remaining (%)"] == 100  # dense = 85: A's 90 qualifies
    assert math.isnan(none.set_index("method").loc["B", "sparsest remaining (%)"])


def test_efficiency_frame_pairs_x_values_per_run():
    records = labelled([("a", "s", SAP, 0, {"remaining": [1.0, 0.5], "speedup": [1.0, 1.7], "T": 1}),
                        ("b", "s", LT, 0, {"remaining": [1.0, 0.8], "speedup": [1.0, 1.2], "T": 1})])
    frame = comparison.efficiency_frame(records).set_index(["label", "iteration"])
    assert frame.loc[(SAP, 1), "speedup"] == pytest.approx(1.7) and frame.loc[(LT, 1), "remaining"] == 80.0


# -- ablation variants ----------------------------------------------------------------------------

def test_ablation_variants_and_shared_runs():
    pq = pq_ablation.pq_variants((0.2, 0.5), (1.2, 2.0))
    assert [(v.overrides["p"], v.overrides["q"]) for v in pq] == [(0.2, 1.0), (0.5, 1.0), (1.0, 1.2), (1.0, 2.0)]
    params = pipeline.resolve("eta_gamma_ablation", "smoke", eta_values=[0.0, 0.1], gamma_values=[1.0, 3.0])
    runs = get_figure("eta_gamma_ablation").runs(params)
    assert len({r.run_id for r in runs}) == 3 and len(runs) == 4  # η_r = 0, γ = 1 is in both families: one run
    assert pipeline.resolve("pq_ablation", "quick").p_values == [0.2, 0.4, 0.5, 0.6, 0.8]
    assert pipeline.resolve("pq_ablation", "gpu").epochs == 5 and pipeline.resolve("sap_trajectories", "gpu").epochs == 10


# -- drawing every figure on fake records ---------------------------------------------------------

@pytest.mark.parametrize("name, n_axes", [
    ("01_sap_trajectories", 8), ("02_pruning_scopes", 9), ("03_pq_ablation", 8),
    ("04_eta_gamma_ablation", 8), ("05_pq_heatmaps", 2 * 3 + 1), ("06_sap_vs_lth", 2),
])
def test_figures_draw_on_fake_records_with_a_full_caption(name, n_axes):
    spec = get_figure(name)
    params = pipeline.resolve(spec, "smoke", iterations=4)
    runs = spec.runs(params)
    inputs = Inputs(pipeline.with_labels(fake_fetch([r.config for r in runs]), runs), runs)
    drawn = spec.draw(inputs, params)
    assert len(drawn.figure.axes) == n_axes
    assert all(isinstance(t, pd.DataFrame) and not t.empty for t in drawn.tables.values())
    for part in ("profile smoke", "T=4", "E=1", "seeds 0", "ranked: last", "training set: all images"):
        assert part in drawn.caption, part


# -- end to end through the real runners ----------------------------------------------------------

def test_sap_trajectories_smoke_end_to_end(tmp_path):
    from sparsity_lab.store import ResultsStore

    result = pipeline.make_figure("sap_trajectories", "smoke", store=ResultsStore(tmp_path / "store"),
                                  output_dir=tmp_path / "fig", progress=False, device="cpu")
    for suffix in (".png", ".pdf", ".meta.json", "__claims.csv"):
        assert (tmp_path / "fig" / f"01_sap_trajectories{suffix}").is_file(), suffix
    assert len(result.run_ids) == 4 and result.verdicts
    assert "drawn with code " in result.caption and "runs trained with code " in result.caption
    summary = result.tables["Trajectories (mean ± std over seeds)"]
    acc = summary[summary["panel"] == "remaining"]
    assert acc[acc["iteration"] == 0]["mean"].eq(100.0).all()  # nothing pruned before the first pruning


def test_method_colours_are_fixed_across_figures():
    one = common.method_palette([SAP, LT, "OS (P=0.2)"])
    two = common.method_palette(["Random ticket (LT masks)", "OS (P=0.2)", LT])
    assert one[LT] == two[LT] and one["OS (P=0.2)"] == two["OS (P=0.2)"]
    assert two["Random ticket (LT masks)"] not in {one[SAP], one[LT], one["OS (P=0.2)"]}
    assert len(set(common.method_palette([SAP, "SAP (p=1, q=2)", LT, "OS (P=0.2)"]).values())) == 4


def test_snip_joins_figure_6_by_label_and_is_drawn(tmp_path):
    """A data-dependent rule (SNIP) is one more method label of figure 6: planned as method='snip', trained,
    drawn with its fixed colour, and left out of the other figures' defaults."""
    from sparsity_lab.store import ResultsStore

    spec = get_figure("sap_vs_lth")
    params = pipeline.resolve(spec, "smoke", methods=["LT (P=0.2)", "SNIP (P=0.2)"], random_ticket=False)
    methods = sorted(r.config.method for r in spec.runs(params))
    assert methods == ["lt", "snip"]
    assert "snip" not in {r.config.method for r in get_figure("sap_trajectories").runs(
        pipeline.resolve("sap_trajectories", "smoke"))}
    result = pipeline.make_figure(spec, "smoke", store=ResultsStore(tmp_path / "store"), progress=False,
                                  methods=["LT (P=0.2)", "SNIP (P=0.2)"], random_ticket=False)
    labels = {line.get_label() for ax in result.figure.axes for line in ax.get_lines()}
    assert "SNIP (P=0.2)" in labels
