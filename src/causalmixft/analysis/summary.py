"""report/summary.md: findings, plots, the tables as markdown, definitions and the config.

Nothing here computes a statistic: it lays out the tables of ``aggregate`` and the sentences of
``findings``, with links relative to the summary so the folder can be moved as a whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import yaml

from causalmixft.analysis.answer_text import render_answer
from causalmixft.analysis.collect import FIDELITY_KEYS
from causalmixft.analysis.definitions import METRIC_DEFINITIONS
from causalmixft.analysis.findings import (
    best_size_findings,
    coverage_findings,
    fidelity_findings,
    gap_findings,
    improvement_findings,
    paired_findings,
    rank_findings,
    trend_findings,
)
from causalmixft.analysis.formatting import md_table, metric_label, metric_name, number, pvalue, signed, spread_cell
from causalmixft.analysis.plots import SCALING_PANELS
from causalmixft.analysis.study import Study

MAX_LISTED_ROWS = 40  # longer per-dataset tables stay in their CSV files


def _interval(mean, low, high, digits: int, unit: str = "") -> str:
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(low):
        return f"{mean:+.{digits}f}{unit} (no interval: one dataset)"
    return f"{mean:+.{digits}f}{unit} [{low:+.{digits}f}, {high:+.{digits}f}]"


def improvement_section(improvement: pd.DataFrame, study: Study, group: str) -> str:
    parts = []
    for metric in study.metrics:
        rows = improvement[(improvement["group"] == group) & (improvement["metric"] == metric)]
        configs = rows[["method", "size"]].drop_duplicates()
        table = []
        for _, c in configs.iterrows():
            cell = rows[(rows["method"] == c["method"]) & (rows["size"] == c["size"])].set_index("split")
            test, val = cell.loc["test"], cell.loc["val"]
            table.append(
                {
                    "configuration": study.label(c["method"], int(c["size"])),
                    "datasets": str(int(test["n_datasets"])),
                    "test: mean % [95 % CI]": _interval(test["mean"], test["ci_low"], test["ci_high"], 2, " %"),
                    f"test: mean absolute {metric_label(metric)} [95 % CI]": _interval(
                        test["abs_mean"], test["abs_ci_low"], test["abs_ci_high"], 4),
                    "test: median % [q25, q75]": spread_cell(test),
                    "validation: mean % [95 % CI]": _interval(val["mean"], val["ci_low"], val["ci_high"], 2, " %"),
                }
            )
        title = (
            f"**{metric_label(metric)}**: improvement over {study.reference}, normalized (% of the "
            f"{study.reference} score) and absolute ({metric_label(metric)} points); means over datasets with "
            "percentile-bootstrap 95 % intervals (resampling datasets)"
        )
        parts.append(f"{title}\n\n{md_table(pd.DataFrame(table))}")
    return "\n\n".join(parts)


def paired_section(paired: pd.DataFrame, study: Study, group: str) -> str:
    rows = paired[(paired["group"] == group) & (paired["selection"] == "val_chosen")]
    if rows.empty:
        return "No competitor to compare with plain fine-tuning."
    table = pd.DataFrame(
        {
            "metric": rows["metric"].map(metric_label),
            "competitor": rows["competitor"],
            "better / worse / datasets": [
                f"{b} / {w} / {n}" for b, w, n in zip(rows["n_better"], rows["n_worse"], rows["n_datasets"])
            ],
            "median difference": rows["median_difference"].map(lambda v: signed(v, 4)),
            "Wilcoxon p": rows["wilcoxon_p"].map(pvalue),
            "Holm p": rows["p_holm"].map(pvalue),
            "note": rows["note"],
        }
    )
    return (
        f"Each method (size-dependent ones at their validation-chosen size) against {study.baseline} on "
        "fold-mean test scores: exact two-sided Wilcoxon signed-rank test over datasets, Holm-corrected "
        "within each metric; per-size comparisons in `paired_tests.csv`.\n\n" + md_table(table)
    )


def replicate_section(spread: pd.DataFrame, study: Study) -> str:
    rows = spread[spread["split"] == "test"]
    if rows.empty:
        return "One fine-tuning replicate per run: no seed spread to report (protocol.seeds = 1)."
    table = pd.DataFrame(
        {
            "metric": rows["metric"].map(metric_label),
            "configuration": [study.label(m, int(n)) for m, n in zip(rows["method"], rows["size"])],
            "replicate SD of test score: median [q25, q75] (datasets)": [
                spread_cell(row, 4, sign=False) for _, row in rows.iterrows()
            ],
        }
    )
    return (
        "Standard deviation of the selected test score across fine-tuning replicates of one fold (same data, "
        "different seeds), mean over folds, then across datasets: the optimisation noise every effect above "
        "has to exceed.\n\n" + md_table(table)
    )


def rank_section(ranks: pd.DataFrame, tests: pd.DataFrame, study: Study, group: str) -> str:
    parts = []
    titles = {
        "per_size": "every (method, size) configuration",
        "val_chosen": "each method at its validation-chosen size",
    }
    for metric in study.metrics:
        for selection, title in titles.items():
            block = ranks[(ranks["group"] == group) & (ranks["metric"] == metric) & (ranks["selection"] == selection)]
            table = pd.DataFrame(
                {
                    "competitor": block["competitor"],
                    "average rank": block["avg_rank"].map(lambda v: number(v, 2)),
                    f"mean test {metric_label(metric)}": block["mean_score"].map(number),
                    "datasets": block["n_datasets"].astype(int).astype(str),
                }
            )
            if selection == "val_chosen":
                table["chosen sizes (datasets)"] = block["chosen_sizes"].fillna("")
            chosen = (tests["group"] == group) & (tests["metric"] == metric) & (tests["selection"] == selection)
            t = tests[chosen].iloc[0]
            parts.append(f"**Test {metric_label(metric)}, {title}**\n\n{md_table(table)}\n\n{_test_line(t)}")
    return "\n\n".join(parts)


def _test_line(t) -> str:
    dropped = ""
    if t["dropped_competitors"]:
        dropped += f" Dropped competitors without any score: {t['dropped_competitors']}."
    if t["dropped_datasets"]:
        dropped += f" Dropped datasets lacking a competitor: {t['dropped_datasets']}."
    if t["note"]:
        return f"Friedman test not applicable: {t['note']}.{dropped}"
    return (
        f"Friedman chi2 = {t['friedman_chi2']:.3f}, p = {pvalue(t['friedman_p'])} ({int(t['n_competitors'])} competitors, "
        f"{int(t['n_datasets'])} datasets); Nemenyi CD (alpha = {t['alpha']}) = {t['nemenyi_cd']:.3f}.{dropped}"
    )


def scaling_section(scaling: pd.DataFrame, study: Study, group: str) -> str:
    parts = []
    rows = scaling[scaling["group"] == group]
    for metric in study.metrics:
        for split in ("val", "test"):
            cell = rows[(rows["split"] == split) & (rows["metric"] == metric)]
            if cell.empty:
                continue
            sizes = sorted(int(s) for s in cell["size"].unique())
            table = []
            for size in sizes:
                entry = {"n": str(size)}
                for method in (study.reference, *study.curve_methods):
                    point = cell[(cell["method"] == method) & (cell["size"] == size)]
                    entry[method] = spread_cell(point.iloc[0], 3, sign=False) if len(point) else ""
                table.append(entry)
            title = f"**{metric_name(split, metric)}**: median [q25, q75] (datasets) across datasets"
            parts.append(f"{title}\n\n{md_table(pd.DataFrame(table))}")
    return "\n\n".join(parts)


def trend_section(trend: pd.DataFrame, group: str) -> str:
    rows = trend[trend["group"] == group]
    table = pd.DataFrame(
        {
            "method": rows["method"],
            "score": [metric_name(s, m) for s, m in zip(rows["split"], rows["metric"])],
            "sizes": rows["sizes"],
            "rho > 0 / < 0 / datasets": [
                f"{p} / {n} / {d}"
                for p, n, d in zip(rows["n_rho_positive"], rows["n_rho_negative"], rows["n_datasets"])
            ],
            "median rho": rows["median_rho"].map(lambda v: number(v, 2)),
            "sign test p": rows["sign_test_p"].map(pvalue),
            "Page L (datasets)": [f"{number(l, 0)} ({n})" for l, n in zip(rows["page_L"], rows["page_n_datasets"])],
            "p increasing": rows["page_p_increasing"].map(pvalue),
            "p decreasing": rows["page_p_decreasing"].map(pvalue),
            "Page p two-sided (Holm)": [f"{pvalue(a)} ({pvalue(b)})" for a, b in zip(rows["page_p"], rows["page_p_holm"])],
            "sign test p (Holm)": rows["sign_test_p_holm"].map(pvalue),
            "note": rows["note"],
        }
    )
    return md_table(table)


def gap_section(gap: pd.DataFrame, group: str) -> str:
    rows = gap[gap["group"] == group]
    table = pd.DataFrame(
        {
            "metric": rows["metric"].map(metric_label),
            "method": rows["method"],
            "size": rows["size"].astype(str),
            "datasets": rows["n_datasets"].astype(str),
            "curves (gap defined)": [f"{n} ({d})" for n, d in zip(rows["n_runs"], rows["n_gap_defined"])],
            "gap median [q25, q75]": [
                f"{number(m, 2)} [{number(a, 2)}, {number(b, 2)}]"
                for m, a, b in zip(rows["gap_median"], rows["gap_q25"], rows["gap_q75"])
            ],
            "regret median [q25, q75]": [
                f"{number(m, 4)} [{number(a, 4)}, {number(b, 4)}]"
                for m, a, b in zip(rows["regret_median"], rows["regret_q25"], rows["regret_q75"])
            ],
        }
    )
    return (
        "Per curve (one fine-tuning replicate), then means over replicates, folds (and sizes, for `all`) per "
        "dataset; median and quartiles across datasets.\n\n" + md_table(table)
    )


def best_size_section(best: pd.DataFrame) -> str:
    if len(best) > MAX_LISTED_ROWS:
        return f"{len(best)} rows: see the CSV file."
    table = pd.DataFrame(
        {
            "method": best["method"],
            "metric": best["metric"].map(metric_label),
            "dataset": best["dataset"],
            "n by validation (units)": best["chosen_sizes"],
            "n by test (units)": best["test_best_sizes"],
            "test at validation's n": best["test_at_chosen"].map(number),
            "best test": best["test_best"].map(number),
            "regret": best["regret"].map(lambda v: number(v, 4)),
            "agree": best["agree_share"].map(lambda v: number(v, 2)),
        }
    )
    return (
        "Sizes chosen per fold and fine-tuning replicate (a unit) on that fold's validation rows, n = 0 (the "
        "method's anchor) included; scores and regret are means over replicates, then folds; `agree` is the "
        "share of units where validation picked the test-best size.\n\n" + md_table(table)
    )


def fidelity_section(fidelity: pd.DataFrame) -> str:
    if fidelity.empty:
        return "No fidelity reports were given."
    cells = fidelity.assign(
        cell=[f"{number(m)} ({int(n)})" for m, n in zip(fidelity["median"], fidelity["n_datasets"])]
    )
    wide = cells.pivot_table(index=["generator", "size"], columns="key", values="cell", aggfunc="first")
    keys = [k for k in FIDELITY_KEYS if k in wide.columns] + sorted(k for k in wide.columns if k not in FIDELITY_KEYS)
    wide = wide[keys].reset_index()
    wide.columns.name = None
    return "Median across datasets (datasets) of the fold-mean value.\n\n" + md_table(wide.fillna("").astype(str))


def cost_section(cost: pd.DataFrame) -> str:
    if cost.empty:
        return "No benchmark files were found."
    table = pd.DataFrame(
        {
            "rule": cost["rule"],
            "jobs": cost["jobs"].astype(str),
            "median wall s": cost["wall_s_median"].map(lambda v: number(v, 1)),
            "total wall s": cost["wall_s_total"].map(lambda v: number(v, 1)),
            "total CPU s": cost["cpu_s_total"].map(lambda v: number(v, 1)),
            "max RSS MiB": cost["max_rss_mib"].map(lambda v: number(v, 0)),
            **(
                {"median CPU s": cost["cpu_s_median"].map(lambda v: number(v, 1))}
                if "cpu_s_median" in cost
                else {}
            ),
        }
    )
    return md_table(table)


def growth_section(scaling: pd.DataFrame | None) -> str:
    if scaling is None or scaling.empty:
        return "No benchmark files were found."

    def span(low, high, digits=0):
        if not np.isfinite(low):
            return "-"
        return number(low, digits) if low == high else f"{number(low, digits)}-{number(high, digits)}"

    table = pd.DataFrame(
        {
            "rule": scaling["rule"],
            "variant": scaling["variant"].replace("", "-"),
            "jobs": scaling["jobs"].astype(str),
            "features": [span(lo, hi) for lo, hi in zip(scaling["n_features_min"], scaling["n_features_max"])],
            "sizes": [span(lo, hi) for lo, hi in zip(scaling["size_min"], scaling["size_max"])],
            "median wall s": scaling["wall_s_median"].map(lambda v: number(v, 1)),
            "median CPU s": scaling["cpu_s_median"].map(lambda v: number(v, 1)),
            "max RSS MiB": scaling["max_rss_mib"].map(lambda v: number(v, 0)),
            "wall ~ features^b": scaling["features_exponent"].map(lambda v: number(v, 2)),
            "wall ~ size^c": scaling["size_exponent"].map(lambda v: number(v, 2)),
            "R^2": scaling["r2"].map(lambda v: number(v, 2)),
        }
    )
    return (
        "Per job, from the benchmark files at hand: how the wall time grows with the number of features "
        "and the synthetic size (least-squares power law on log scales, where the jobs span at least two "
        "values; n/a where they do not).\n\n" + md_table(table)
    )


def projection_section(projection: pd.DataFrame | None, target: str | None = None) -> str:
    if projection is None or projection.empty:
        return "No target grid to project to (config/tabarena.yaml next to the workflow)."
    rows = projection[projection["rule"] != "total"]
    totals = projection[projection["rule"] == "total"]
    table = pd.DataFrame(
        {
            "rule": rows["rule"],
            "variant": rows["variant"].replace("", "-"),
            "resource": rows["resource"],
            "jobs": rows["target_jobs"].astype(int).astype(str),
            "measured jobs": rows["measured_jobs"].astype(int).astype(str),
            "device": rows["measured_device"].replace("", "-"),
            "wall h": rows["wall_h"].map(lambda v: number(v, 1)),
            "CPU h": rows["cpu_h"].map(lambda v: number(v, 1)),
            "GPU h": rows["gpu_h"].map(lambda v: number(v, 1)),
            "extrapolated": rows["extrapolated"].map(lambda v: "yes" if v is True else ""),
        }
    )
    lines = [
        f"Projected cost of the grid of `{target or 'the target config'}` from the measured per-job cost: jobs "
        "per rule times the median measured job, scaled to each job's feature count and synthetic size by "
        "the exponents above (negative ones taken as 0) and fine-tuning by the ratio of steps. Wall hours are "
        "the measuring machine's (whatever else ran on it), one job at a time. `extrapolated`: the target's "
        "feature counts or sizes lie outside the measured ones (scaled by a power law beyond them, or not at "
        "all where no fit exists). Basis per row in `cost_projection.csv`.",
        "",
    ]
    for total in totals.to_dict("records"):
        kind = "GPU rules (fine-tuning)" if total["resource"] == "gpu" else "CPU rules"
        gpu = number(total["gpu_h"], 1)
        sentence = (
            f"- {kind}: {int(total['target_jobs'])} jobs, {number(total['wall_h'], 1)} wall hours, "
            f"{number(total['cpu_h'], 1)} CPU hours"
        )
        if total["resource"] == "gpu":
            devices = sorted(set(rows.loc[rows["resource"] == "gpu", "measured_device"]) - {""})
            if gpu == "n/a":
                sentence += (
                    f"; GPU hours n/a: measured on {', '.join(devices) or 'nothing'}, and CPU timings "
                    "are not GPU hours"
                )
            else:
                sentence += f", {gpu} GPU hours (measured on {', '.join(devices)})"
        lines.append(sentence + f" ({total['basis']}).")
    return "\n".join(lines) + "\n\n" + md_table(table)


def missing_section(missing: pd.DataFrame) -> str:
    if missing.empty:
        return "None: every expected file is present."
    shown = missing.head(MAX_LISTED_ROWS)
    table = md_table(shown[["kind", "method", "dataset", "fold", "size", "reason"]].astype(str))
    more = f"\n\n{len(missing) - len(shown)} more rows in the CSV file." if len(missing) > len(shown) else ""
    return f"{len(missing)} expected files are missing.\n\n{table}{more}"


def _trend_family(trend: pd.DataFrame) -> int:
    return int(np.isfinite(trend[["page_p", "sign_test_p"]].to_numpy(float)).sum())


# --- the document ---------------------------------------------------------------------------


def render_summary(
    tables: Mapping[str, pd.DataFrame],
    study: Study,
    outputs: Mapping[str, str | Path],
    n_expected: int,
    config: Mapping | None = None,
    projection_target: str | None = None,
) -> str:
    here = Path(outputs["summary"]).parent

    def link(key: str) -> str:
        return Path(os.path.relpath(outputs[key], here)).as_posix()

    def image(key: str, alt: str) -> str:
        return f"![{alt}]({link(key)})"

    headline = study.metrics[0]
    lines = [
        "# CausalMixFT results summary",
        "",
        f"Generated by the aggregate stage from {n_expected} expected runs over {len(study.datasets)} datasets "
        f"({', '.join(study.datasets)}); do not edit by hand. Methods: {', '.join(study.methods)}; "
        f"reference: {study.reference}; n=0 point of real + synthetic methods: {study.baseline}.",
        "",
        *render_answer(tables, study, link),
        "## Findings",
        "",
        *[f"- {s}" for s in coverage_findings(tables, n_expected)],
    ]
    for group in study.groups:
        if len(study.groups) > 1:
            lines += ["", f"**Dataset group: {group}** ({', '.join(study.groups[group]) or 'no datasets'})", ""]
        sentences = improvement_findings(tables["improvement"], study, group, headline)
        sentences += rank_findings(tables["ranks"], tables["rank_tests"], study, group, headline)
        sentences += paired_findings(tables["paired_tests"], study, group, headline)
        sentences += trend_findings(tables["trend"], study, group)
        sentences += gap_findings(tables["gap_regret"], study, group, headline)
        lines += [f"- {s}" for s in sentences]
    if len(study.groups) > 1:
        lines += ["", "**All datasets: size choice and fidelity**", ""]
    lines += [
        f"- {s}"
        for s in best_size_findings(tables["best_size"], study, headline) + fidelity_findings(tables["fidelity"])
    ]
    lines += [
        "",
        "## Plots",
        "",
        image("plot_scaling", "scaling curves"),
        "",
        image("plot_scaling_improvement", "scaling of the improvement over the reference"),
        "",
        *[
            image(f"plot_scaling_per_dataset_{split}_{metric}", f"per-dataset {split} {metric}") + "\n"
            for split, metric in SCALING_PANELS
        ],
        image("plot_critical_difference", "critical-difference diagrams"),
        "",
        image("plot_val_vs_test", "validation vs test improvement"),
    ]
    for group in study.groups:
        suffix = f" ({group})" if len(study.groups) > 1 else ""
        lines += [
            "",
            f"## Normalized improvement over {study.reference}{suffix}",
            "",
            improvement_section(tables["improvement"], study, group),
            "",
            f"## Average ranks{suffix}",
            "",
            rank_section(tables["ranks"], tables["rank_tests"], study, group),
            "",
            f"## Scaling with the synthetic size{suffix}",
            "",
            scaling_section(tables["scaling"], study, group),
            "",
            f"**Trend tests** (Holm correction over all {_trend_family(tables['trend'])} trend p-values of this "
            f"report)\n\n{trend_section(tables['trend'], group)}",
            "",
            f"## Paired tests against {study.baseline}{suffix}",
            "",
            paired_section(tables["paired_tests"], study, group),
            "",
            f"## Validation-test gap and early-stopping regret{suffix}",
            "",
            gap_section(tables["gap_regret"], group),
        ]
    lines += [
        "",
        "## Seed spread (fine-tuning replicates)",
        "",
        replicate_section(tables["replicate_spread"], study),
        "",
        "## Best size: validation vs test",
        "",
        best_size_section(tables["best_size"]),
        "",
        "## Fidelity of the synthetic rows",
        "",
        fidelity_section(tables["fidelity"]),
        "",
        "## Cost",
        "",
        "**Per rule** (from the benchmark files at hand)",
        "",
        cost_section(tables["cost"]),
        "",
        "**Growth with features and synthetic size**",
        "",
        growth_section(tables.get("cost_scaling")),
        "",
        "**Projection**",
        "",
        projection_section(tables.get("cost_projection"), projection_target),
        "",
        "## Missing runs",
        "",
        missing_section(tables["missing"]),
        "",
        "## Tables",
        "",
        *[f"- [{key}]({link(key)})" for key in tables],
        "",
        "## Metric definitions",
        "",
        METRIC_DEFINITIONS.rstrip(),
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(dict(config), sort_keys=True).rstrip() if config else "# not given",
        "```",
        "",
    ]
    return "\n".join(lines)
