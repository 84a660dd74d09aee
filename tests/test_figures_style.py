"""Shared plotting helpers: band statistics, files, PQI phase detection, captions, sidecars."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sparsity_lab._roots import repository_root
from sparsity_lab.figures import style
from sparsity_lab.report import files
from sparsity_lab.store.meta import code_version_text


def _frame() -> pd.DataFrame:
    rows = []
    values = {("A", 0): [1, 2, 3], ("A", 1): [2, 4, 9], ("B", 0): [5, 5, 5], ("B", 1): [0, 10, 20]}
    for (h, x), ys in values.items():
        rows += [{"method": h, "iteration": x, "seed": s, "value": y} for s, y in enumerate(ys)]
    return pd.DataFrame(rows)


def test_band_stats_mean_and_sample_std_per_hue_and_x() -> None:
    stats = style.band_stats(_frame(), "iteration", "value", "method").set_index(["method", "iteration"])
    assert stats.loc[("A", 0), "mean"] == 2 and stats.loc[("A", 0), "std"] == pytest.approx(1.0)
    assert stats.loc[("A", 1), "mean"] == 5 and stats.loc[("A", 1), "std"] == pytest.approx(math.sqrt(13))
    assert stats.loc[("B", 0), "std"] == 0 and stats.loc[("B", 1), "std"] == pytest.approx(10.0)
    assert (stats["n"] == 3).all()


def test_line_with_band_draws_mean_line_and_band_edges() -> None:
    fig = Figure()
    ax = fig.subplots()
    stats = style.line_with_band(ax, _frame(), "iteration", "value", "method")
    assert [line.get_label() for line in ax.lines] == ["A", "B"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2, 5])
    band_a = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band_a.min() == pytest.approx(1.0) and band_a.max() == pytest.approx(5 + math.sqrt(13))
    assert len(stats) == 4


def test_single_seed_has_no_band_and_duplicates_are_refused() -> None:
    df = _frame()
    one = style.band_stats(df[df.seed == 0], "iteration", "value", "method")
    assert one["std"].isna().all() and (one["n"] == 1).all()
    with pytest.raises(ValueError, match="more than one row per seed"):
        style.band_stats(pd.concat([df, df.iloc[:1]]), "iteration", "value", "method")
    with pytest.raises(ValueError, match="'nope' not in DataFrame"):
        style.band_stats(df, "nope", "value")


def test_by_averages_x_per_iteration_and_log_band_stays_positive() -> None:
    df = pd.DataFrame({"iteration": [0, 0, 1, 1], "seed": [0, 1, 0, 1],
                       "remaining": [1.0, 1.0, 0.5, 0.3], "acc": [0.9, 0.9, 0.1, 1.7]})
    stats = style.band_stats(df, "remaining", "acc", by="iteration")
    np.testing.assert_allclose(stats["remaining"], [1.0, 0.4])
    fig = Figure()
    ax = fig.subplots()
    style.line_with_band(ax, df, "remaining", "acc", by="iteration", logy=True)
    assert ax.get_yscale() == "log"
    assert ax.collections[0].get_paths()[0].vertices[:, 1].min() > 0  # 0.9 - 1.13 < 0 clipped


def test_save_figure_writes_png_at_150_dpi_and_pdf(tmp_path) -> None:
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1])
    paths = files.save_figure(fig, tmp_path / "new" / "dir", "fig_01")
    assert [p.name for p in paths] == ["fig_01.png", "fig_01.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
    from PIL import Image

    assert Image.open(paths[0]).info["dpi"] == pytest.approx((150, 150), abs=0.1)
    with pytest.raises(ValueError, match="plain file stem"):
        files.save_figure(fig, tmp_path, "../escape")


def test_save_figure_keeps_the_constrained_layout_of_a_figure_with_a_colorbar(tmp_path) -> None:
    """The PDF reuses the PNG's layout; the figure keeps its own engine and stays editable afterwards."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    fig = Figure(figsize=(4, 2), layout="constrained")
    axes = fig.subplots(1, 2)
    fig.colorbar(axes[0].pcolormesh(np.arange(6.0).reshape(2, 3)), ax=axes[0])
    axes[1].set_ylabel("a long label " * 3)
    files.save_figure(fig, tmp_path, "cbar")
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    fig.draw_without_rendering()
    before = axes[1].get_position().bounds
    axes[1].set_title("T\nT\nT", fontsize=20)
    fig.draw_without_rendering()  # the restored engine lays the figure out again after an edit
    assert axes[1].get_position().bounds != before


def _three_phase() -> tuple[pd.Series, pd.Series]:
    t = np.arange(31)
    pqi = pd.Series(np.interp(t, [0, 5, 25, 30], [0.15, 0.10, 0.45, 0.20]), index=t)
    acc = pd.Series(np.where(t < 27, 90.0, 20.0), index=t)
    return pqi, acc


def test_annotate_phases_shades_what_the_claims_rule_finds() -> None:
    fig = Figure()
    ax = fig.subplots()
    pqi, acc = _three_phase()
    phases = style.annotate_phases(ax, pqi, acc)
    assert phases is not None and phases.complete and (phases.t_min, phases.t_max) == (5, 25)
    assert phases == style.find_phases(pqi, acc)  # the rule claim 1.1 tests
    assert sorted(t.get_text() for t in ax.texts) == ["1: decrease", "2: increase", "3: drop"]
    assert len(ax.patches) == 3
    ax = fig.subplots()
    no_collapse = style.annotate_phases(ax, pqi, pd.Series(90.0, index=pqi.index))  # drop without collapse
    assert no_collapse is not None and not no_collapse.complete and no_collapse.reached == "no collapse"
    up = pd.Series(0.1 + 0.01 * np.arange(20.0))
    assert style.annotate_phases(fig.subplots(), up, pd.Series(90.0, index=up.index)) is None  # no decrease
    assert style.annotate_phases(fig.subplots(), up[:3], pd.Series(90.0, index=up.index[:3])) is None  # too short


def test_caption_has_every_required_field() -> None:
    text = style.caption("quick", "fashionmnist", "mlp", 15, 2, [0, 1], "global", "final epoch",
                         extra={"p": 0.5})
    for part in ("profile quick", "dataset fashionmnist", "model mlp", "T=15", "E=2", "seeds 0, 1 (n=2)",
                 "scope global", "ranked: final epoch", "p=0.5"):
        assert part in text
    assert "seeds n=4" in style.caption("paper", "cifar10", "cnn", 30, 200, 4, "layer", "best val")
    assert "T=–" in style.caption("smoke", "x", None, None, None, None, None, None)
    assert re.fullmatch(r"\d+\.\d+\.\d+\+([0-9a-f]{4,}(\.dirty)?|nogit)", code_version_text())


def test_write_meta_and_output_dir(tmp_path, monkeypatch) -> None:
    path = files.write_meta(tmp_path, "07_x", run_ids=["b", "a", "b"], caption="cap",
                            figures=[tmp_path / "07_x.png"], extra={"note": 1})
    meta = json.loads(path.read_text())
    assert path.name == "07_x.meta.json" and meta["run_ids"] == ["a", "b"] and meta["figures"] == ["07_x.png"]
    assert meta["caption"] == "cap" and meta["note"] == 1 and meta["code_version"] == code_version_text()
    with pytest.raises(ValueError, match="reserved"):
        files.write_meta(tmp_path, "07_x", extra={"run_ids": []})
    monkeypatch.chdir(tmp_path)  # the repository's reports/, whatever the working directory
    assert files.resolve_output_dir(None, "smoke") == repository_root() / "reports" / "smoke" / "figures"
    assert files.resolve_output_dir("/abs/figs", "smoke").as_posix() == "/abs/figs"


def test_budget_note_appears_wherever_a_claim_does_not_hold():
    from sparsity_lab.claims import fails, holds, untestable
    from sparsity_lab.report.result import GPU_RESULTS, budget_note

    assert GPU_RESULTS in budget_note("quick", [holds("1.1", "s", "r"), fails("1.2", "s", "r")])
    assert GPU_RESULTS in budget_note("smoke", [untestable("1.2", "s", "r")])
    assert budget_note("quick", [holds("1.1", "s", "r")]) == ""  # every claim holds: nothing to excuse
    gpu = budget_note("gpu", [holds("6.2", "s", "r"), fails("6.1", "s", "r")])
    assert "6.1 fails" in gpu and "6.2" not in gpu and "GPU budget" in gpu and "finding" in gpu  # every profile
    assert "1.2 untestable" in budget_note("paper", [untestable("1.2", "s", "r")])
    assert budget_note("gpu", [holds("6.2", "s", "r")]) == ""
    assert (Path(__file__).resolve().parents[1] / GPU_RESULTS).is_file()


def test_points_gap_words_the_direction_without_a_sign() -> None:
    from sparsity_lab._format import points_gap

    assert points_gap(90.0, 92.7, "dense") == "2.7 pt below dense"
    assert points_gap(98.04, 98.01, digits=2) == "0.03 pt above"  # ASNI-II vs dense: no "-0.03 below"
    assert points_gap(93.1, 92.7) == "0.4 pt above" and points_gap(92.7, 92.7, "dense") == "level with dense"
