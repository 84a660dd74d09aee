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


def _three_phase(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(31.0)
    y = np.interp(x, [0, 5, 25, 30], [0.15, 0.10, 0.45, 0.20])
    return x, y + np.random.default_rng(seed).normal(0, noise, x.size)


def test_phases_detected_on_synthetic_three_phase_curve() -> None:
    assert style.detect_phases(*_three_phase()) == style.Phases(trough=5.0, peak=25.0)
    noisy = style.detect_phases(*_three_phase(noise=0.002))
    assert noisy is not None and noisy.complete
    assert abs(noisy.trough - 5) <= 1 and abs(noisy.peak - 25) <= 1
    # order of the points and NaNs do not matter
    x, y = _three_phase()
    y[10] = np.nan
    assert style.detect_phases(x[::-1], y[::-1]) == style.Phases(trough=5.0, peak=25.0)


def test_phases_not_detected_or_partial() -> None:
    x = np.arange(20.0)
    assert style.detect_phases(x, 0.1 + 0.01 * x) is None  # only increases
    assert style.detect_phases(x, 0.5 - 0.01 * x) is None  # only decreases
    flat = 0.2 + np.random.default_rng(1).normal(0, 0.0005, x.size)
    assert style.detect_phases(x, flat) is None  # wiggles below min_change
    up_down = np.interp(x, [0, 15, 19], [0.1, 0.4, 0.2])
    assert style.detect_phases(x, up_down) == style.Phases(trough=None, peak=15.0)
    down_up = np.interp(x, [0, 4, 19], [0.2, 0.1, 0.4])
    assert style.detect_phases(x, down_up) == style.Phases(trough=4.0, peak=None)
    assert style.detect_phases(x[:2], x[:2]) is None


def test_annotate_phases_shades_three_segments() -> None:
    fig = Figure()
    ax = fig.subplots()
    x, y = _three_phase()
    ax.plot(x, y)
    phases = style.annotate_phases(ax, x, y)
    assert phases is not None and phases.complete
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["1: decrease", "2: increase", "3: drop"]
    assert len(ax.patches) == 3
    assert style.annotate_phases(ax, x, x) is None


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


def test_phases_detected_when_pqi_starts_at_its_highest() -> None:
    """The quick-profile shape: PQI starts highest, falls, climbs back part of the way, then drops."""
    x = np.arange(16.0)
    y = np.interp(x, [0, 4, 9, 15], [0.16, 0.04, 0.12, 0.02])
    assert style.detect_phases(x, y) == style.Phases(trough=4.0, peak=9.0)


def test_budget_note_points_cpu_profiles_with_unmet_claims_to_the_shipped_gpu_figures():
    from sparsity_lab.claims import fails, holds, untestable
    from sparsity_lab.report.result import GPU_RESULTS, budget_note

    assert GPU_RESULTS in budget_note("quick", [holds("1.1", "s", "r"), fails("1.2", "s", "r")])
    assert GPU_RESULTS in budget_note("smoke", [untestable("1.2", "s", "r")])
    assert budget_note("quick", [holds("1.1", "s", "r")]) == ""  # every claim holds: nothing to excuse
    assert budget_note("gpu", [fails("6.1", "s", "r")]) == ""  # the full budget: a failure is a finding
    assert (Path(__file__).resolve().parents[1] / GPU_RESULTS).is_file()


def test_points_gap_words_the_direction_without_a_sign() -> None:
    from sparsity_lab._format import points_gap

    assert points_gap(90.0, 92.7, "dense") == "2.7 pt below dense"
    assert points_gap(93.1, 92.7) == "0.4 pt above" and points_gap(92.7, 92.7, "dense") == "level with dense"
