"""What the aggregate stage's figures show, read from the Figure objects (axes, series, labels),
on small hand-made tables; the PNG files themselves are checked in test_aggregate_report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PolyCollection

from causalmixft.analysis import plots
from causalmixft.analysis.study import Study

PANEL_TITLES = ["validation accuracy", "test accuracy", "test ROC-AUC"]  # plots.SCALING_PANELS, spelled out
CURVES = {"causalmixft": (0.74, 0.75, 0.76), "scm_only": (0.70, 0.66, 0.65)}  # medians at n = 0, 64, 256


def study(methods=("zeroshot", "finetune", "causalmixft", "scm_only"), datasets=("A", "B")) -> Study:
    curve = [m for m in methods if m not in ("zeroshot", "finetune")]
    grid = [(m, d, 0, s) for m in methods for d in datasets for s in ((64, 256) if m in curve else (0,))]
    return Study.from_params(grid, methods_with_real=["finetune", "causalmixft"], size_dependent=curve)


def xs(line) -> list[float]:
    return np.asarray(line.get_xdata(), float).tolist()


def ys(line) -> list[float]:
    return np.asarray(line.get_ydata(), float).tolist()


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_scaling_plot_draws_each_curve_its_band_and_the_reference_level(tmp_path):
    rows = []
    for split, metric in plots.SCALING_PANELS:
        cell = {"group": "all", "split": split, "metric": metric, "n_datasets": 2}
        rows.append({**cell, "method": "zeroshot", "source": "zeroshot", "size": 0, "median": 0.70, "q25": 0.6,
                     "q75": 0.8})
        for method, medians in CURVES.items():
            for size, median in zip((0, 64, 256), medians):
                rows.append({**cell, "method": method, "source": method, "size": size, "median": median,
                             "q25": median - 0.02, "q75": median + 0.03})
    figure = plots.plot_scaling(pd.DataFrame(rows), study(), tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").exists()
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == PANEL_TITLES
    assert figure.get_suptitle() == "Scores vs synthetic size (all: up to 2 datasets): median across datasets, band: IQR"
    for ax in axes:
        lines = lines_by_label(ax)
        assert set(lines) == {"causalmixft", "scm_only", "zeroshot (median)"}
        for method, medians in CURVES.items():
            assert xs(lines[method]) == [0, 1, 2]  # evenly spaced categories
            assert ys(lines[method]) == pytest.approx(medians)
        assert ys(lines["zeroshot (median)"]) == [0.70, 0.70]
        assert lines["zeroshot (median)"].get_linestyle() == "--"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "64", "256"]
        # one IQR band per curve, from q25 to q75
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        y = bands[0].get_paths()[0].vertices[:, 1]
        assert (y.min(), y.max()) == pytest.approx((0.74 - 0.02, 0.76 + 0.03))
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["zeroshot (median)", "causalmixft", "scm_only"]


def test_many_methods_get_dodged_iqr_bars_instead_of_bands(tmp_path):
    generators = [f"gen{i}" for i in range(plots.MAX_BANDS + 1)]
    methods = ("zeroshot", "finetune", *generators)
    rows = [{"group": "all", "split": split, "metric": metric, "method": method, "size": size, "n_datasets": 1,
             "median": 0.1 * size / 64, "q25": 0.0, "q75": 0.2 * size / 64}
            for split, metric in plots.SCALING_PANELS for method in methods if method != "zeroshot"
            for size in ((0,) if method == "finetune" else (64, 256))]
    figure = plots.plot_scaling_improvement(pd.DataFrame(rows), study(methods), tmp_path / "improvement.png")
    assert figure.get_suptitle().endswith("bars: IQR")
    ax = figure.axes[0]
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len([c for c in ax.collections if isinstance(c, LineCollection)]) == len(generators)
    lines = lines_by_label(ax)
    # Five methods dodged over 0.4: offsets -0.2, -0.1, 0, 0.1, 0.2 around the categories 0, 1, 2.
    assert xs(lines["gen0"]) == pytest.approx([-0.2, 0.8, 1.8])
    assert xs(lines["gen4"]) == pytest.approx([0.2, 1.2, 2.2])
    # n=0 is finetune's point (every generator trains on real rows), 0.1 * size / 64 after it.
    assert ys(lines["gen2"]) == pytest.approx([0.0, 0.1, 0.4])
    assert ys(lines["zeroshot (0 by definition)"]) == [0.0, 0.0]


def test_per_dataset_plot_has_a_panel_per_dataset_with_its_curves_and_reference(tmp_path):
    rows = []
    for dataset, shift in (("A", 0.0), ("B", 0.1)):
        rows.append({"method": "zeroshot", "source": "zeroshot", "dataset": dataset, "size": 0, "value": 0.6 + shift})
        for method, values in CURVES.items():
            rows += [{"method": method, "source": method, "dataset": dataset, "size": size, "value": v + shift}
                     for size, v in zip((0, 64, 256), values)]
    frame = pd.DataFrame(rows).assign(split="test", metric="roc_auc")
    figure = plots.plot_scaling_per_dataset(frame, study(), "test", "roc_auc", tmp_path / "per_dataset.png")
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["A", "B"]
    b = lines_by_label(visible[1])
    assert ys(b["causalmixft"]) == pytest.approx([0.84, 0.85, 0.86])
    assert ys(b["zeroshot"]) == pytest.approx([0.7, 0.7])
    assert figure.get_suptitle().startswith("test ROC-AUC vs synthetic rows n")


def test_critical_difference_diagram_places_ranks_cliques_and_the_cd(tmp_path):
    competitors = {"causalmixft n=64": 1.2, "finetune": 2.0, "zeroshot": 2.8}
    ranks = pd.DataFrame([{"group": "all", "metric": metric, "selection": selection, "competitor": name,
                           "avg_rank": rank} for metric in ("roc_auc", "accuracy")
                          for selection in ("per_size", "val_chosen") for name, rank in competitors.items()])
    tests = pd.DataFrame([{"group": "all", "metric": metric, "selection": selection, "n_datasets": 10,
                           "nemenyi_cd": 1.0, "friedman_chi2": 12.8, "friedman_p": 0.00166, "note": ""}
                          for metric in ("roc_auc", "accuracy") for selection in ("per_size", "val_chosen")])
    figure = plots.plot_critical_difference(ranks, tests, study(), tmp_path / "cd.png")
    ax = figure.axes[0]
    assert ax.get_title() == "test ROC-AUC: every (method, size)"
    texts = {t.get_text() for t in ax.texts}
    assert {"causalmixft n=64 (1.20)", "finetune (2.00)", "zeroshot (2.80)", "Nemenyi CD = 1.00"} <= texts
    assert "10 datasets; Friedman chi2 = 12.80, p = 0.00166" in texts
    # Cliques (ranks within CD = 1 of each other): {1.2, 2.0} and {2.0, 2.8}: two thick bars.
    thick = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_linewidth()[0] == 3.5]
    assert len(thick) == 2
    assert len(figure.axes) == 4  # two metrics x two selections


def test_val_vs_test_scatter_shows_each_configurations_points_and_their_spearman(tmp_path):
    points = {("causalmixft", 64, "A"): (1.0, 2.0), ("causalmixft", 64, "B"): (3.0, 5.0),
              ("finetune", 0, "A"): (-1.0, -2.0)}
    rows = [{"method": m, "size": s, "dataset": d, "metric": metric, "split": split, "improvement": value}
            for (m, s, d), pair in points.items() for metric in ("roc_auc", "accuracy")
            for split, value in zip(("val", "test"), pair)]
    figure = plots.plot_val_vs_test(pd.DataFrame(rows), study(), tmp_path / "val_vs_test.png")
    ax = figure.axes[0]
    scatters = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
    assert scatters == {"finetune": [[-1.0, -2.0]], "causalmixft": [[1.0, 2.0], [3.0, 5.0]]}
    # val (-1, 1, 3) and test (-2, 2, 5) rank alike: rho = 1.
    assert [t.get_text() for t in ax.texts] == ["Spearman rho = 1.00 over 3 (configuration, dataset) points"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("validation improvement (%)", "test improvement (%)")


def test_scaling_fit_plot_draws_the_fit_its_band_and_the_measured_sizes(tmp_path):
    grid = np.log2([32.0, 64.0, 128.0])
    rows = [{"group": "all", "subset": "all", "scale": "absolute", "method": "causalmixft", "split": split,
             "metric": metric, "log2_size": x, "measured": x != grid[1], "n_datasets": 5, "fit": 0.01 * i,
             "band_low": 0.01 * i - 0.005, "band_high": 0.01 * i + 0.005}
            for split, metric in plots.SCALING_PANELS for i, x in enumerate(grid)]
    figure = plots.plot_scaling_fit(pd.DataFrame(rows), study(), tmp_path / "fit.png")
    ax = figure.axes[0]
    assert ax.get_title() == "all: validation accuracy"
    line = lines_by_label(ax)["causalmixft"]
    assert ys(line) == pytest.approx([0.0, 0.01, 0.02])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "128"]  # the measured sizes only
    assert [t.get_text() for t in ax.texts] == ["datasets: 5 per method"]


def test_the_effect_heat_map_puts_each_budget_and_ratio_in_its_cell_boxes_intervals_off_zero_and_stars_holm(tmp_path):
    # (128, 4x): interval off zero and significant after Holm; (128, 1x): interval off zero only;
    # budget 32: too few datasets (no interval)
    cells = {(128, 4): (0.02, 0.01, 0.03, "better"), (128, 1): (0.01, 0.002, 0.018, "inconclusive")}
    rows = []
    for budget, train in ((32, 26), (128, 102)):
        for ratio in (1, 4):
            mean, low, high, verdict = cells.get((budget, ratio), (-0.004, float("nan"), float("nan"), "too few datasets"))
            rows.append({"real_budget": budget, "group": "all", "method": "causalmixft", "size": ratio * train, "size_ratio": float(ratio),
                         "split": "test", "metric": "roc_auc", "n_datasets": 5 if budget == 128 else 3,
                         "mean_diff": mean, "ci_low": low, "ci_high": high, "verdict": verdict})
    rows.append({**rows[0], "method": "zeroshot", "size": 0, "size_ratio": 0.0})  # no size axis: not drawn
    rows.append({**rows[3], "group": "tabmwp", "mean_diff": -0.5})  # a source group's (128, 4x): not drawn
    figure = plots.plot_effect_heatmap(pd.DataFrame(rows), tmp_path / "heat.png")
    (ax,) = [a for a in figure.axes if a.get_title() == "causalmixft"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["32", "128"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1x", "4x"]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert texts[(1, 1)].get_text() == "+0.0200*" and texts[(1, 0)].get_text() == "+0.0100"
    assert texts[(0, 0)].get_text() == "-0.0040"
    assert texts[(0, 0)].get_color() == "grey"  # 3 datasets: too few
    # the colour scale ends at the largest gain (0.02): its dark cell is labelled in white, a pale one in black
    assert texts[(1, 1)].get_color() == "white" and texts[(1, 0)].get_color() == "black"
    boxed = sorted((round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches)
    assert boxed == [(1, 0), (1, 1)]  # (row, column) of the cells whose interval excludes 0
    assert ax.images[0].get_array()[1, 1] == pytest.approx(0.02)
    assert not any(a.get_title() == "zeroshot" for a in figure.axes)
