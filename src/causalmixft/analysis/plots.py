"""Figures of the aggregate stage, drawn from its tables.

Figures are built on ``matplotlib.figure.Figure`` directly rather than through pyplot, so no
global backend or figure registry is involved (safe in a Snakemake job and in tests), and they
are saved without the software-version metadata so reruns give identical PNG bytes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from causalmixft.analysis.effects import TOO_FEW, overall
from causalmixft.analysis.formatting import metric_label, metric_name, plural
from causalmixft.analysis.stats import cd_cliques, spearman_or_nan
from causalmixft.analysis.study import ALL, Study
from causalmixft.io import atomic_path

# The research question's three views of a scaling curve.
SCALING_PANELS = (("val", "accuracy"), ("test", "accuracy"), ("test", "roc_auc"))
SIZE_AXIS_LABEL = "synthetic rows n (n=0: fine-tuning without synthetic rows)"


def method_colors(study: Study) -> dict[str, tuple]:
    palette = colormaps["tab10"]
    return {method: palette(i % 10) for i, method in enumerate(study.methods)}


def save(figure: Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, metadata={"Software": None})


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _size_axis(ax, sizes: list[int]) -> None:
    # Sizes are roughly geometric (0, 64, 256, 1024): evenly spaced categories keep every point
    # readable, and the ticks carry the actual sizes.
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set_xlim(-0.3, len(sizes) - 0.7)


def _figure_legend(figure: Figure, axes) -> None:
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if labels:
        figure.legend(
            [handles[label] for label in labels],
            labels,
            loc="outside lower center",
            ncols=min(len(labels), 5),
            frameon=False,
        )


# Up to this many curves share a panel with IQR bands; more bands overlap into one grey area,
# so the IQR becomes a vertical bar per point, the methods dodged sideways at each size.
MAX_BANDS = 4


def _draw_curves(ax, lines: dict[str, pd.DataFrame], sizes: list[int], colors: dict) -> None:
    """Median line with its interquartile range for each method (columns size, median, q25, q75)."""
    bands = len(lines) <= MAX_BANDS
    for i, (method, line) in enumerate(lines.items()):
        x = np.array([sizes.index(int(s)) for s in line["size"]], dtype=float)
        if not bands:
            x += 0.4 * (i / (len(lines) - 1) - 0.5)
        ax.plot(x, line["median"], marker="o", markersize=6 if bands else 4, color=colors[method], label=method)
        if bands:
            ax.fill_between(x, line["q25"], line["q75"], color=colors[method], alpha=0.18, linewidth=0)
        else:
            ax.vlines(x, line["q25"], line["q75"], color=colors[method], alpha=0.7, linewidth=1.5)


def _iqr_label(n_lines: int) -> str:
    return "band: IQR" if n_lines <= MAX_BANDS else "bars: IQR"


def _scaling_figure(panels: dict, sizes: list[int], study: Study, ylabel: str, title: str, path: str | Path) -> Figure:
    """One panel per SCALING_PANELS entry; ``panels[(split, metric)]`` = (curves by method, level of
    the dashed reference line or None, its legend label)."""
    colors = method_colors(study)
    figure = Figure(figsize=(13, 4.4), layout="constrained")
    axes = figure.subplots(1, len(SCALING_PANELS), squeeze=False)[0]
    for ax, (split, metric) in zip(axes, SCALING_PANELS):
        lines, level, level_label = panels[(split, metric)]
        ax.set_title(metric_name(split, metric))
        if not lines:
            _no_data(ax)
            continue
        if level is not None:
            ax.axhline(level, color="grey", linestyle="--", linewidth=1, label=level_label)
        _draw_curves(ax, lines, sizes, colors)
        _size_axis(ax, sizes)
        ax.set_xlabel(SIZE_AXIS_LABEL, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    _figure_legend(figure, axes)
    n_lines = max((len(lines) for lines, _, _ in panels.values()), default=0)
    figure.suptitle(f"{title}: median across datasets, {_iqr_label(n_lines)}")
    save(figure, path)
    return figure


def plot_scaling(summary: pd.DataFrame, study: Study, path: str | Path, group: str = ALL) -> Figure:
    """Scores vs synthetic size, one line per size-dependent method; dashed: the reference's median."""
    rows = summary[summary["group"] == group]
    curves = rows[rows["method"].isin(study.curve_methods)]
    panels = {}
    for split, metric in SCALING_PANELS:
        panel = rows[(rows["split"] == split) & (rows["metric"] == metric)]
        lines = {m: panel[panel["method"] == m].sort_values("size") for m in study.curve_methods}
        reference = panel[panel["method"] == study.reference]
        level = reference["median"].iloc[0] if len(reference) else None
        panels[(split, metric)] = ({m: line for m, line in lines.items() if len(line)}, level,
                                   f"{study.reference} (median)")
    n = int(curves["n_datasets"].max()) if len(curves) else 0
    sizes = sorted(int(s) for s in curves["size"].unique())
    return _scaling_figure(panels, sizes, study, "score",
                    f"Scores vs synthetic size ({group}: up to {plural(n, 'dataset')})", path)


def improvement_curves(improvement: pd.DataFrame, study: Study, group: str, split: str, metric: str) -> dict:
    """Per curve method: its improvement over the reference along the sizes, n=0 from its anchor.

    The anchor's n=0 row is the reference itself (0 by definition) for purely synthetic methods.
    """
    rows = improvement[(improvement["group"] == group) & (improvement["split"] == split)
                       & (improvement["metric"] == metric)]
    lines = {}
    for method in study.curve_methods:
        own = rows[(rows["method"] == method) & (rows["size"] > 0)]
        if own.empty:
            continue
        anchor = study.anchor(method)
        if anchor == study.reference:
            start = pd.DataFrame([{"size": 0, "median": 0.0, "q25": 0.0, "q75": 0.0}])
        else:
            start = rows[(rows["method"] == anchor) & (rows["size"] == 0)][["size", "median", "q25", "q75"]]
        lines[method] = pd.concat([start, own[["size", "median", "q25", "q75"]]], ignore_index=True)
    return lines


def plot_scaling_improvement(improvement: pd.DataFrame, study: Study, path: str | Path, group: str = ALL) -> Figure:
    """Normalized improvement over the reference (%) vs synthetic size: the scaling curves with the
    datasets' different score levels taken out, so methods can be told apart."""
    panels = {
        (split, metric): (improvement_curves(improvement, study, group, split, metric), 0.0,
                          f"{study.reference} (0 by definition)")
        for split, metric in SCALING_PANELS
    }
    rows = improvement[improvement["group"] == group]
    n = int(rows["n_datasets"].max()) if len(rows) else 0
    sizes = sorted({0, *(int(s) for s in improvement["size"])})
    return _scaling_figure(panels, sizes, study, f"improvement over {study.reference} (%)",
                    f"Normalized improvement over {study.reference} vs synthetic size ({group}: up to "
                    f"{plural(n, 'dataset')})", path)


def plot_scaling_per_dataset(
    per_dataset: pd.DataFrame, study: Study, split: str, metric: str, path: str | Path
) -> Figure:
    """One panel per dataset: fold-mean score vs size for every size-dependent method."""
    rows = per_dataset[(per_dataset["split"] == split) & (per_dataset["metric"] == metric)]
    curves = rows[rows["method"].isin(study.curve_methods)]
    sizes = sorted(int(s) for s in curves["size"].unique())
    datasets = list(study.datasets)
    columns = min(4, len(datasets))
    n_rows = math.ceil(len(datasets) / columns)
    colors = method_colors(study)
    figure = Figure(figsize=(3.4 * columns + 0.5, 2.7 * n_rows + 1.0), layout="constrained")
    axes = figure.subplots(n_rows, columns, squeeze=False).ravel()
    for ax, dataset in zip(axes, datasets):
        ax.set_title(dataset, fontsize=10)
        panel = rows[rows["dataset"] == dataset]
        if panel[panel["method"].isin(study.curve_methods)].empty:
            _no_data(ax, "no runs")
            continue
        reference = panel[panel["method"] == study.reference]
        if len(reference):
            ax.axhline(reference["value"].iloc[0], color="grey", linestyle="--", linewidth=1, label=study.reference)
        for method in study.curve_methods:
            line = panel[panel["method"] == method].sort_values("size")
            if len(line):
                ax.plot(
                    [sizes.index(int(s)) for s in line["size"]],
                    line["value"],
                    marker="o",
                    color=colors[method],
                    label=method,
                )
        _size_axis(ax, sizes)
        ax.grid(alpha=0.3)
    for ax in axes[len(datasets) :]:
        ax.set_visible(False)
    _figure_legend(figure, axes)
    figure.suptitle(
        f"{metric_name(split, metric)} vs synthetic rows n (mean over folds; n=0: fine-tuning without synthetic rows)"
    )
    save(figure, path)
    return figure


def plot_critical_difference(
    ranks: pd.DataFrame, tests: pd.DataFrame, study: Study, path: str | Path, group: str = ALL
) -> Figure:
    """Critical-difference diagrams (average test rank; bars join competitors within the Nemenyi CD)."""
    selections = ("per_size", "val_chosen")
    titles = {"per_size": "every (method, size)", "val_chosen": "each method at its validation-chosen size"}
    heights = []
    for metric in study.metrics:
        k = [
            len(ranks[(ranks["group"] == group) & (ranks["metric"] == metric) & (ranks["selection"] == s)])
            for s in selections
        ]
        heights.append(1.6 + 0.28 * math.ceil(max(k + [1]) / 2) + 0.5)
    figure = Figure(figsize=(15, sum(heights)), layout="constrained")
    axes = figure.subplots(len(study.metrics), len(selections), squeeze=False, gridspec_kw={"height_ratios": heights})
    for row, metric in enumerate(study.metrics):
        for column, selection in enumerate(selections):
            block = ranks[(ranks["group"] == group) & (ranks["metric"] == metric) & (ranks["selection"] == selection)]
            test = tests[(tests["group"] == group) & (tests["metric"] == metric) & (tests["selection"] == selection)]
            test = test.iloc[0] if len(test) else None
            title = f"test {metric_label(metric)}: {titles[selection]}"
            _draw_cd(axes[row, column], block["competitor"].tolist(), block["avg_rank"].to_numpy(float), test, title)
    save(figure, path)
    return figure


def _draw_cd(ax, names: list[str], ranks: np.ndarray, test, title: str) -> None:
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    if not names:
        ax.text(
            0.5, 0.5, "no complete datasets to rank", ha="center", va="center", transform=ax.transAxes, color="grey"
        )
        return
    order = np.argsort(ranks, kind="mergesort")
    names, ranks = [names[i] for i in order], ranks[order]
    k = len(names)
    high = max(k, 2)
    left, right = 0.3, 0.7  # axis span in axes coordinates; labels sit outside it

    def x(rank: float) -> float:
        return left + (right - left) * (rank - 1) / (high - 1)

    cd = float(test["nemenyi_cd"]) if test is not None else np.nan
    cliques = cd_cliques(ranks, cd)
    label_top = -0.25 - 0.12 * len(cliques)
    ax.hlines(0, x(1), x(high), color="black", linewidth=1)
    for r in range(1, high + 1):
        ax.vlines(x(r), 0, 0.06, color="black", linewidth=1)
        ax.text(x(r), 0.1, str(r), ha="center", va="bottom", fontsize=8)
    n_left = math.ceil(k / 2)
    for index, (name, rank) in enumerate(zip(names, ranks)):
        on_left = index < n_left
        row = index if on_left else k - 1 - index
        y = label_top - 0.22 * row
        end = left - 0.02 if on_left else right + 0.02
        ax.vlines(x(rank), y, 0, color="black", linewidth=0.8)
        ax.hlines(y, min(end, x(rank)), max(end, x(rank)), color="black", linewidth=0.8)
        ax.text(
            end + (-0.01 if on_left else 0.01),
            y,
            f"{name} ({rank:.2f})",
            ha="right" if on_left else "left",
            va="center",
            fontsize=8,
        )
    for level, (i, j) in enumerate(cliques):
        y = -0.12 - 0.12 * level
        ax.hlines(y, x(ranks[i]) - 0.008, x(ranks[j]) + 0.008, color="black", linewidth=3.5)
    if np.isfinite(cd):
        ax.hlines(0.32, x(1), x(1 + cd), color="firebrick", linewidth=1.5)
        ax.text(x(1 + cd) + 0.01, 0.32, f"Nemenyi CD = {cd:.2f}", va="center", fontsize=8, color="firebrick")
    caption = _cd_caption(test)
    bottom = label_top - 0.22 * (n_left - 1) - 0.3
    ax.text(0.5, bottom, caption, ha="center", va="top", fontsize=8, color="dimgrey")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom - 0.2, 0.45)


def _cd_caption(test) -> str:
    if test is None:
        return "no test"
    base = plural(test["n_datasets"], "dataset")
    if test["note"]:
        return f"{base}; Friedman test not applicable: {test['note']}"
    return f"{base}; Friedman chi2 = {test['friedman_chi2']:.2f}, p = {test['friedman_p']:.3g}"


def plot_val_vs_test(improvement_per_dataset: pd.DataFrame, study: Study, path: str | Path) -> Figure:
    """Per-dataset improvement over the reference: validation (x) vs test (y), one colour per method."""
    colors = method_colors(study)
    figure = Figure(figsize=(5.2 * len(study.metrics), 5.0), layout="constrained")
    axes = figure.subplots(1, len(study.metrics), squeeze=False)[0]
    wide = improvement_per_dataset.pivot_table(
        index=["method", "size", "dataset", "metric"], columns="split", values="improvement", aggfunc="first"
    ).reindex(columns=["val", "test"])
    wide = wide.dropna().reset_index()
    for ax, metric in zip(axes, study.metrics):
        points = wide[wide["metric"] == metric]
        ax.set_title(f"{metric_label(metric)}: improvement over {study.reference} (%)")
        if points.empty:
            _no_data(ax)
            continue
        for method in study.methods:
            mine = points[points["method"] == method]
            if len(mine):
                ax.scatter(mine["val"], mine["test"], s=22, color=colors[method], alpha=0.8, label=method)
        low = float(min(points["val"].min(), points["test"].min()))
        high = float(max(points["val"].max(), points["test"].max()))
        ax.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle=":", label="test = validation")
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axvline(0, color="grey", linewidth=0.6)
        rho = spearman_or_nan(points["val"].to_numpy(), points["test"].to_numpy())
        rho_text = f"Spearman rho = {rho:.2f}" if np.isfinite(rho) else "Spearman rho undefined"
        ax.text(
            0.02,
            0.98,
            f"{rho_text} over {len(points)} (configuration, dataset) points",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
        ax.set_xlabel("validation improvement (%)")
        ax.set_ylabel("test improvement (%)")
        ax.grid(alpha=0.3)
    _figure_legend(figure, axes)
    save(figure, path)
    return figure


def _dataset_counts(counts: dict[str, int]) -> str:
    """'datasets: 22 per method', or one line per method where they differ: a long single line
    would leave the panel and make the constrained layout squeeze every axis to fit it."""
    if len(set(counts.values())) == 1:
        return f"datasets: {next(iter(counts.values()))} per method"
    return "datasets:\n" + "\n".join(f"{method} {n}" for method, n in counts.items())


def plot_scaling_fit(fit: pd.DataFrame, study: Study, path: str | Path) -> Figure:
    """Fitted absolute improvement over plain fine-tuning vs log2 synthetic size (answer.py), with
    its bootstrap band over datasets; one row per dataset group, one column per SCALING_PANELS view."""
    colors = method_colors(study)
    rows = fit[(fit["subset"] == "all") & (fit["scale"] == "absolute")]
    groups = list(study.groups)
    figure = Figure(figsize=(13, 3.6 * len(groups) + 0.8), layout="constrained")
    axes = figure.subplots(len(groups), len(SCALING_PANELS), squeeze=False)
    for row, group in enumerate(groups):
        for column, (split, metric) in enumerate(SCALING_PANELS):
            ax = axes[row, column]
            panel = rows[(rows["group"] == group) & (rows["split"] == split) & (rows["metric"] == metric)]
            ax.set_title(f"{group}: {metric_name(split, metric)}", fontsize=10)
            if panel.empty:
                _no_data(ax)
                continue
            ax.axhline(0, color="grey", linestyle="--", linewidth=1, label=f"{study.baseline} (0 by definition)")
            counts = {}
            for method, line in panel.groupby("method", sort=False):
                line = line.sort_values("log2_size")
                counts[method] = int(line["n_datasets"].iloc[0])
                ax.plot(line["log2_size"], line["fit"], color=colors[method], label=method)
                ax.fill_between(line["log2_size"], line["band_low"], line["band_high"], color=colors[method],
                                alpha=0.18, linewidth=0)
                measured = line[line["measured"]]
                ax.scatter(measured["log2_size"], measured["fit"], s=14, color=colors[method])
            ax.text(0.02, 0.98, _dataset_counts(counts), transform=ax.transAxes, va="top", fontsize=7)
            ticks = sorted(panel.loc[panel["measured"], "log2_size"].unique())
            ax.set_xticks(ticks, [str(int(round(2**t))) for t in ticks])
            ax.set_xlabel("synthetic rows n (log2 scale)", fontsize=8)
            ax.set_ylabel(f"{metric_label(metric)} - {study.baseline}", fontsize=8)
            ax.grid(alpha=0.3)
    _figure_legend(figure, axes.ravel())
    figure.suptitle(f"Improvement over {study.baseline} vs synthetic size: least-squares fit in log2 n, "
                    "band: 95 % bootstrap over datasets")
    save(figure, path)
    return figure


def plot_effect_heatmap(effects: pd.DataFrame, path: str | Path, split: str = "test", metric: str = "roc_auc") -> Figure:
    """One panel per method: the paired mean gain over plain fine-tuning (``effects.effects``) over
    real budget (rows) x synthetic size as a multiple of the real train rows (columns); a cell whose
    interval excludes 0 is outlined, one whose Holm-adjusted test also rejects 0 starred, a
    'too few datasets' cell (no interval) greyed."""
    # methods with synthetic rows only: a size-0 method (zeroshot) has no size axis to draw
    effects = overall(effects)  # every dataset together; the source groups are in effects.csv
    frame = effects[(effects["split"] == split) & (effects["metric"] == metric) & (effects["size"] > 0)]
    methods = sorted(frame["method"].unique())
    figure = Figure(figsize=(4.2 * max(len(methods), 1), 3.4), layout="constrained")
    axes = figure.subplots(1, max(len(methods), 1), squeeze=False)[0]
    values = frame["mean_diff"].to_numpy(float)
    # the colour scale spans at least one AUC point, so noise-sized gains do not look saturated
    largest = float(np.nanmax(np.abs(values))) if len(values) and np.isfinite(values).any() else 0.0
    limit = max(largest, 0.01)
    if not methods:
        _no_data(axes[0])
    for ax, method in zip(axes, methods):
        own = frame[frame["method"] == method]
        budgets = sorted(own["real_budget"].unique())
        ratios = sorted(own["size_ratio"].round(3).unique())
        grid = np.full((len(budgets), len(ratios)), np.nan)
        for row in own.itertuples():
            grid[budgets.index(row.real_budget), ratios.index(round(row.size_ratio, 3))] = row.mean_diff
        image = ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        for row in own.itertuples():
            i, j = budgets.index(row.real_budget), ratios.index(round(row.size_ratio, 3))
            significant = str(row.verdict) in ("better", "worse")  # Holm-adjusted p below the config's alpha
            excludes_zero = bool(row.ci_low > 0 or row.ci_high < 0)  # False for NaN (too few datasets)
            if excludes_zero:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
            # four decimals, as the README's table: the study's gains are tenths of an AUC point
            text = "n/a" if not np.isfinite(row.mean_diff) else f"{row.mean_diff:+.4f}" + ("*" if significant else "")
            dark = np.isfinite(row.mean_diff) and abs(row.mean_diff) > 0.6 * limit  # RdBu's ends are dark
            colour = "grey" if str(row.verdict) == TOO_FEW else "white" if dark else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(ratios)), [f"{r:.2g}x" for r in ratios])
        ax.set_yticks(range(len(budgets)), [str(b) for b in budgets])
        ax.set_xlabel("synthetic rows / real train rows")
        ax.set_ylabel("real budget (rows)")
        ax.set_title(method, fontsize=9)
    if methods:
        figure.colorbar(image, ax=list(axes), label=f"{metric_name(split, metric)} gain vs finetune")
    figure.suptitle(f"Paired {metric_name(split, metric)} gain over plain fine-tuning (box: the interval excludes 0;"
                    f" *: significant after Holm)", fontsize=9)
    save(figure, path)
    return figure
