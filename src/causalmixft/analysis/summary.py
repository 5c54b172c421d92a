"""report/summary.md: the answer first, then an appendix (figures, fidelity, cost, missing runs,
tables, definitions, configuration).

Nothing here computes a statistic: it lays out the stage's tables, with links relative to the
summary so the folder can be moved as a whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import yaml

from causalmixft.analysis import effects
from causalmixft.analysis.collect import FIDELITY_KEYS
from causalmixft.analysis.definitions import METRIC_DEFINITIONS
from causalmixft.analysis.formatting import md_table, number
from causalmixft.analysis.outputs import PLOTS, TABLES
from causalmixft.analysis.study import ALL, Study

MAX_LISTED_ROWS = 40  # longer tables stay in their CSV files
HEADLINE = ("roc_auc", "accuracy")  # the metrics the answer shows; the others stay in effects.csv


def _fmt(value, spec: str) -> str:
    return "" if value is None or pd.isna(value) else format(float(value), spec)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def answer_section(table: pd.DataFrame, selection: pd.DataFrame, analysis: effects.Analysis,
                   link) -> list[str]:
    """The summary's first section: the paired effects on test rows and the size choice vs chance."""
    lines = [
        "# Answer: paired gains over plain fine-tuning",
        "",
        f"Per real budget, method and synthetic size: the mean over datasets of the paired difference "
        f"to `finetune` (replicates -> folds -> datasets), its {1 - analysis.alpha:.0%} t interval, "
        f"Holm over each named family (split x metric), the minimum detectable effect (MDE) at "
        f"{analysis.power:.0%} power from the observed SD (per test; at alpha / m in `effects.csv`'s `mde_holm`), "
        f"and TOST against the margin {analysis.margin_text()} fixed in the config (Holm over the same family; "
        f"the other metrics have no margin). Fewer than {analysis.min_datasets} "
        f"datasets: '{effects.TOO_FEW}'.",
        "",
        f"![gain heat map]({link('plot_effect_heatmap')})",
        "",
        f"Every cell, on validation and test, ROC-AUC and accuracy: [effects.csv]({link('effects')}).",
        "",
        "| budget | method | n | n/real | metric | datasets | gain [CI] | Holm p | MDE | TOST Holm p | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    test = table[(table["split"] == "test") & table["metric"].isin(HEADLINE)]
    lines += [_effect_row(row) for row in effects.overall(test).itertuples()]
    by_source = test[(test["group"] != ALL) & (test["metric"] == "roc_auc") & (test["size"] > 0)]
    if not by_source.empty:
        lines += [
            "",
            "### By source",
            "",
            "Test ROC-AUC of the methods with synthetic rows per source group, each group's cells in Holm "
            "families of their own (`group` and `family` in effects.csv; accuracy and validation there too).",
            "",
            "| budget | group | method | n | n/real | metric | datasets | gain [CI] | Holm p | MDE | TOST Holm p | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *[_effect_row(row, group=True) for row in by_source.itertuples()],
        ]
    lines += [
        "",
        "## Validation-chosen size against chance",
        "",
        "Agreement: the size validation picks is a test-best one; regret: best test score minus the test "
        "score at the chosen size. References: a size drawn at random from the same candidates, and "
        f"always n = 0 (plain fine-tuning). Table: [size_selection_chance.csv]({link('size_selection_chance')}).",
        "",
        "| budget | method | metric | datasets | agree [CI] | random | regret [CI] | random | always n=0 | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in selection[selection["metric"].isin(HEADLINE)].itertuples():
        agree = f"{row.agree:.2f}" + ("" if pd.isna(row.agree_ci_low) else f" [{row.agree_ci_low:.2f}, {row.agree_ci_high:.2f}]")
        regret = f"{row.regret:.4f}" + ("" if pd.isna(row.regret_ci_low) else f" [{row.regret_ci_low:.4f}, {row.regret_ci_high:.4f}]")
        lines.append(_row([row.real_budget, row.method, row.metric, row.n_datasets, agree, f"{row.agree_random:.2f}",
                           regret, f"{row.regret_random:.4f}", _fmt(row.regret_zero, ".4f"), row.note]))
    return lines


def _effect_row(row, group: bool = False) -> str:
    interval = "" if pd.isna(row.ci_low) else f" [{row.ci_low:+.4f}, {row.ci_high:+.4f}]"
    return _row([
        row.real_budget, *([row.group] if group else []), row.method, row.size, f"{row.size_ratio:.2g}", row.metric,
        row.n_datasets, f"{row.mean_diff:+.4f}{interval}", _fmt(row.p_holm, ".3f"), _fmt(row.mde, ".4f"),
        _fmt(row.tost_p_holm, ".3f"), row.verdict,
    ])


def fidelity_section(fidelity: pd.DataFrame) -> str:
    if fidelity.empty:
        return "No fidelity reports were given."
    cells = fidelity.assign(
        cell=[f"{number(m)} ({int(n)})" for m, n in zip(fidelity["median"], fidelity["n_datasets"])]
    )
    wide = cells.pivot_table(index=["real_budget", "generator", "size"], columns="key", values="cell", aggfunc="first")
    keys = [k for k in FIDELITY_KEYS if k in wide.columns] + sorted(k for k in wide.columns if k not in FIDELITY_KEYS)
    wide = wide[keys].reset_index()
    wide.columns.name = None
    return "Median across datasets (datasets) of the fold-mean value.\n\n" + md_table(wide.fillna("").astype(str))


def early_stopping_section(stops: pd.DataFrame) -> str:
    """Per real budget x method x size (all datasets): how often fine-tuning kept the starting weights."""
    cells = stops[stops["group"] == ALL] if not stops.empty else stops
    if cells.empty:
        return "No fine-tuning curves were given."
    table = pd.DataFrame({
        "real rows": cells["real_budget"].astype(str),
        "method": cells["method"],
        "size": cells["size"].astype(str),
        "selected step 0 (chance)": [f"{share:.0%} ({chance:.0%})" for share, chance in
                                     zip(cells["step0_share"], cells["step0_chance"])],
        "median selected step": cells["selected_step_median"].map(lambda v: number(v, 0)),
        "median evaluations": cells["evaluations_median"].map(lambda v: number(v, 0)),
        "datasets": cells["n_datasets"].astype(str),
    })
    return ("Share of fine-tuning replicates whose validation-selected step is 0 (the starting weights kept), "
            "averaged replicates -> folds -> datasets; in brackets the share a step drawn at random among the "
            "curve's evaluation points would give.\n\n" + md_table(table))


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
            "median CPU s": cost["cpu_s_median"].map(lambda v: number(v, 1)),
        }
    )
    return "Measured on the machine that ran the jobs, from the benchmark files at hand.\n\n" + md_table(table)


def missing_section(missing: pd.DataFrame) -> str:
    if missing.empty:
        return "None: every expected file is present."
    shown = missing.head(MAX_LISTED_ROWS)
    table = md_table(shown[["kind", "method", "dataset", "fold", "real_budget", "size", "reason"]].astype(str))
    more = f"\n\n{len(missing) - len(shown)} more rows in the CSV file." if len(missing) > len(shown) else ""
    return f"{len(missing)} expected files are missing.\n\n{table}{more}"


def render_summary(
    tables: Mapping[str, pd.DataFrame],
    study: Study,
    analysis: effects.Analysis,
    outputs: Mapping[str, str | Path],
    expected: Sequence[Sequence],
    config: Mapping | None = None,
) -> str:
    """The whole summary; ``study`` is the largest real budget's (the figures show that budget);
    ``expected``: the (method, dataset, fold, budget, size) of every run of the grid."""
    here = Path(outputs["summary"]).parent

    def link(name: str) -> str:
        return Path(os.path.relpath(outputs[name], here)).as_posix()

    budgets = sorted(tables["runs_long"]["real_budget"].unique()) if len(tables["runs_long"]) else []
    absent = tables["missing"].loc[tables["missing"]["kind"] == "run", "method"].value_counts().sort_index()
    n_expected = len(expected)
    # the whole grid's datasets: a dataset too small for the largest budget is not in its ``study``
    datasets = sorted({str(key[1]) for key in expected})
    coverage = f"{n_expected - absent.sum()} of {n_expected} expected runs are present" + (
        f"; missing: {absent.sum()} ({', '.join(f'{m}: {n}' for m, n in absent.items())})" if len(absent) else "")
    lines = [
        *answer_section(tables["effects"], tables["size_selection_chance"], analysis, link),
        "",
        "# Appendix",
        "",
        f"Generated by the aggregate stage from {n_expected} expected runs over {len(datasets)} datasets "
        f"({', '.join(datasets)}); do not edit by hand. {coverage}. Methods: {', '.join(study.methods)}; "
        f"reference: {study.reference}; n=0 point of real + synthetic methods: {study.baseline}; real budgets: "
        f"{', '.join(str(b) for b in budgets)} rows (the figures below show the largest, "
        f"{len(study.datasets)} of the datasets; every table has them all).",
        "",
        "## Figures",
        "",
        *[f"![{name.removeprefix('plot_')}]({link(name)})\n" for name in PLOTS if name != "plot_effect_heatmap"],
        "## Where early stopping ended",
        "",
        early_stopping_section(tables["early_stopping"]),
        "",
        "## Fidelity of the synthetic rows",
        "",
        fidelity_section(tables["fidelity"]),
        "",
        "## Cost per rule",
        "",
        cost_section(tables["cost"]),
        "",
        "## Missing runs",
        "",
        missing_section(tables["missing"]),
        "",
        "## Tables",
        "",
        *[f"- [{name}]({link(name)})" for name in TABLES],
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
