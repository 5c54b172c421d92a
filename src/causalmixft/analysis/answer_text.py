"""The "Answer" section at the top of report/summary.md, laid out from the answer tables.

Nothing here computes a statistic (answer.py does); every number is read from a table and
printed with its unit and interval. Dataset groups (e.g. TabArena and TabMWP-derived tasks) are
columns side by side.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import pandas as pd

from causalmixft.analysis.answer import CAUSAL_METHOD, CHANCE, LEVEL, PAPER_CLAIMS
from causalmixft.analysis.findings import paired_findings
from causalmixft.analysis.formatting import md_table, metric_label, metric_name, number, plural, pvalue, signed
from causalmixft.analysis.plots import SCALING_PANELS
from causalmixft.analysis.study import ALL, Study

CI = f"{int(100 * LEVEL)} % CI"
# (value, lower, upper) columns of the answer tables
PEAK = ("peak_fit", "peak_band_low", "peak_band_high")
AGREE = ("agree_mean", "agree_ci_low", "agree_ci_high")
REGRET = ("regret_mean", "regret_ci_low", "regret_ci_high")
RHO = ("spearman", "spearman_ci_low", "spearman_ci_high")


def _three(row, columns: tuple[str, str, str], scale: float = 1.0) -> list[float]:
    return [scale * row[column] for column in columns]


def _ci(value, low, high, digits: int, unit: str = "", sign: bool = True) -> str:
    """``+0.0123 [+0.0010, +0.0230]``: a value with its interval (``sign``: print the + of positives)."""
    fmt = signed if sign else number
    if not np.isfinite(value):
        return "n/a"
    if not np.isfinite(low):
        return f"{fmt(value, digits)}{unit} (no interval)"
    return f"{fmt(value, digits)}{unit} [{fmt(low, digits)}, {fmt(high, digits)}]"


def _ratio(row, edge: bool = True) -> str:
    """``n = 512 (2.51 x real [1.25, 5.02])``: the peak size as a multiple of the real train rows."""
    if not np.isfinite(row["peak_ratio"]):
        return "no peak (" + (row["note"] or "no data") + ")"
    ratio = _ci(row["peak_ratio"], row["ratio_ci_low"], row["ratio_ci_high"], 2, sign=False)
    edge = f", the {row['edge']} measured" if edge and row["edge"] else ""
    return f"n = {number(row['peak_size'], 0)} ({ratio} x real{edge})"


def _pick(frame: pd.DataFrame, **where) -> pd.DataFrame:
    rows = frame
    for column, value in where.items():
        rows = rows[rows[column].astype(str) == str(value)]
    return rows


def _peak_cell(peaks: pd.DataFrame, metric: str, **where) -> str:
    absolute = _pick(peaks, scale="absolute", metric=metric, **where)
    normalized = _pick(peaks, scale="normalized", metric=metric, **where)
    if absolute.empty:
        return ""
    a = absolute.iloc[0]
    text = f"{_ratio(a)}; gain {_ci(*_three(a, PEAK), 4)} {metric_label(metric)}"
    if len(normalized):
        n = normalized.iloc[0]
        text += f", {_ci(*_three(n, PEAK), 2, ' %')}"
    return f"{text} ({int(a['n_datasets'])})"


def headline(study: Study) -> tuple[str, str]:
    """(method, metric) of the lead sentence: CausalMixFT on test ROC-AUC when the grid has them."""
    method = CAUSAL_METHOD if CAUSAL_METHOD in study.curve_methods else study.curve_methods[0]
    return method, "roc_auc" if "roc_auc" in study.metrics else study.metrics[0]


def lead(tables: Mapping[str, pd.DataFrame], study: Study) -> str:
    method, metric = headline(study)
    name = metric_label(metric)
    peak = _pick(tables["scaling_peak"], group=ALL, subset="all", method=method, split="test", metric=metric)
    absolute, normalized = _pick(peak, scale="absolute"), _pick(peak, scale="normalized")
    if absolute.empty:
        return f"No {method} run has a test {name} to fit: the question has no answer from these runs."
    a = absolute.iloc[0]
    relative = (
        ""
        if normalized.empty
        else (f" ({_ci(*_three(normalized.iloc[0], PEAK), 2, ' %')}" f" of {study.baseline}'s score)")
    )
    edge = f"; the peak is the {a['edge']} measured, so the curve may go on beyond it" if a["edge"] else ""
    sentences = [
        f"**{method} against plain fine-tuning ({study.baseline}), test {name}, {int(a['n_datasets'])} datasets**: the "
        f"improvement, fitted against log2 n (degree-{int(a['degree'])} least squares), peaks at "
        f"{_ratio(a, edge=False)}, where real = the {number(a['n_real_train'], 0)} real train rows{edge}; the fitted "
        f"gain there is {_ci(*_three(a, PEAK), 4)} {name}{relative}."
    ]
    select = _pick(tables["size_selection"], group=ALL, method=method, metric=metric)
    if len(select):
        s = select.iloc[0]
        sentences.append(
            f"Choosing the size per fold on validation rows picks the test-best size in "
            f"{_ci(*_three(s, AGREE, 100), 0, ' %', sign=False)} of the choices "
            f"(mean over datasets), at a mean test regret of {_ci(*_three(s, REGRET), 4)} {name}."
        )
    by_size = _pick(tables["val_test_by_size"], group=ALL, method=method, metric=metric)
    if len(by_size) >= 2:
        first, last = by_size.iloc[0], by_size.iloc[-1]
        sentence = (
            f"From n = {first['size']} to n = {last['size']}, the median validation-test curve gap goes from "
            f"{number(first['gap_median'], 2)} to {number(last['gap_median'], 2)} (0 = validation ranks the steps as "
            "test does)"
        )
        if np.isfinite(first["spearman"]) and np.isfinite(last["spearman"]):
            sentence += (
                f" and the Spearman correlation over datasets of validation and test gains from "
                f"{_ci(*_three(first, RHO), 2)} to {_ci(*_three(last, RHO), 2)}"
            )
        sentences.append(sentence + ".")
    return " ".join(sentences)


def curve_section(peaks: pd.DataFrame, study: Study) -> str:
    parts = []
    for split, metric in SCALING_PANELS:
        if metric not in study.metrics:
            continue
        rows = [
            {
                "method": m,
                **{g: _peak_cell(peaks, metric, group=g, subset="all", method=m, split=split) for g in study.groups},
            }
            for m in study.curve_methods
        ]
        parts.append(f"**{metric_name(split, metric)}**\n\n{md_table(pd.DataFrame(rows))}")
    legend = (
        f"Per cell: the size n where the fitted improvement over {study.baseline} peaks (n / real train rows "
        f"[{CI}]), the fitted gain there in score units and in % of {study.baseline}'s score [{CI} band], "
        "(datasets). Fitted values at every size: `scaling_fit.csv`."
    )
    return "\n\n".join([legend, *parts])


def selection_section(selection: pd.DataFrame, study: Study) -> str:
    rows = []
    for (method, metric), _ in selection.groupby(["method", "metric"], sort=False):
        row = {"method": method, "metric": metric_label(metric)}
        for group in study.groups:
            cell = _pick(selection, group=group, method=method, metric=metric)
            if cell.empty:
                row[group] = ""
                continue
            s = cell.iloc[0]
            row[group] = (
                f"agree {_ci(*_three(s, AGREE, 100), 0, ' %', sign=False)}; "
                f"regret {_ci(*_three(s, REGRET), 4)} "
                f"{metric_label(metric)}; n = 0 chosen in {number(100 * s['zero_share'], 0)} %; median chosen "
                f"n = {number(s['chosen_ratio_median'], 2)} x real ({int(s['n_datasets'])})"
            )
        rows.append(row)
    return md_table(pd.DataFrame(rows))


def val_test_section(by_size: pd.DataFrame, study: Study) -> str:
    method, _ = headline(study)
    parts = []
    for metric in study.metrics:
        rows = _pick(by_size, method=method, metric=metric)
        table = []
        for size in sorted(rows["size"].unique()):
            entry = {"n": str(size)}
            for group in study.groups:
                cell = _pick(rows, group=group, size=size)
                entry[group] = (
                    ""
                    if cell.empty
                    else (
                        f"rho {_ci(*_three(cell.iloc[0], RHO), 2)} "
                        f"({int(cell.iloc[0]['n_datasets'])}); gap {number(cell.iloc[0]['gap_median'], 2)}; "
                        f"regret {number(cell.iloc[0]['regret_median'], 4)}"
                    )
                )
            table.append(entry)
        parts.append(
            f"**{method}, {metric_label(metric)}** (n = 0: {study.anchor(method)})\n\n{md_table(pd.DataFrame(table))}"
        )
    return "\n\n".join(parts)


def chance_section(chance: pd.DataFrame, peaks: pd.DataFrame, study: Study) -> str:
    if chance.empty:
        return "ROC-AUC is not among the study's metrics: no chance check."
    status = chance.drop_duplicates("dataset").set_index("dataset")["dataset_status"]
    listed = {s: ", ".join(status.index[status == s]) or "none" for s in ("near chance", "undetermined")}
    best = chance.sort_values("mean", ascending=False).drop_duplicates("dataset").set_index("dataset")
    near = [
        f"{d} (best: {best.loc[d, 'method']} {number(best.loc[d, 'mean'])}, Holm p {number(best.loc[d, 'p_holm'])})"
        for d in status.index[status == "near chance"]
    ]
    method, metric = headline(study)
    rows = [
        {
            "datasets": subset,
            **{g: _peak_cell(peaks, metric, group=g, subset=subset, method=method, split="test") for g in study.groups},
        }
        for subset in ("all", "above_chance")
    ]
    return (
        f"Near chance (no method's test ROC-AUC is above {CHANCE} by a one-sided test against the "
        f"Mann-Whitney null of its test rows, Holm over the dataset's methods, alpha {study.alpha:g}): "
        f"{'; '.join(near) or 'none'}. Undetermined (no test class counts, fewer than 2 folds): "
        f"{listed['undetermined']}. "
        f"They stay in every table; the fit below is repeated without them.\n\n"
        f"**{method}, test {metric_label(metric)}, with and without near-chance datasets**\n\n"
        + md_table(pd.DataFrame(rows))
    )


def dag_section(dag: pd.DataFrame, study: Study) -> str:
    if dag.empty:
        return f"The grid has no {CAUSAL_METHOD} run with a DAG control (scm_emptydag, scm_randomdag): not answered."
    _, metric = headline(study)
    rows = []
    for (control, size), _ in _pick(dag, metric=metric).groupby(["control", "size"], sort=False):
        entry = {"control": control, "n": str(size)}
        for group in study.groups:
            cell = _pick(dag, group=group, metric=metric, control=control, size=size)
            if cell.empty:
                entry[group] = ""
                continue
            r = cell.iloc[0]
            test = f"Holm p = {pvalue(r['p_holm'])}" if not r["note"] else "too few datasets"
            entry[group] = (
                f"{_ci(r['mean_difference'], r['ci_low'], r['ci_high'], 4)} {metric_label(metric)}; "
                f"better {r['n_better']} / worse {r['n_worse']} of {r['n_datasets']}; {test}"
            )
        rows.append(entry)
    return (
        f"{CAUSAL_METHOD} minus the control at equal n, fold-mean test {metric_label(metric)} per dataset "
        f"(positive: the discovered DAG is better); n = all: mean over the shared sizes; exact Wilcoxon over datasets, "
        f"Holm within "
        f"each group and metric.\n\n{md_table(pd.DataFrame(rows))}"
    )


PAPER_TEXT = (
    "Bühler, Purucker and Hutter (arXiv 2601.04110) **claim** the medians of the `paper (claimed)` column below, "
    "over 33 TabArena classification datasets with the Mitra backbone, one synthetic amount per dataset and "
    "early stopping on the validation rows (the abstract does not say how its ROC-AUC improvement is "
    "normalized, nor its unit). This study differs in backbone ({backbone}, not Mitra), in protocol (the "
    "synthetic size swept and chosen per fold on validation rows, paired replicates, episodes mixed as "
    "`finetune.mixing` below says) and in datasets (those of this report, TabMWP-derived tasks included where "
    "configured). Its improvement is in % of the zero-shot score; its gap is 1 - Spearman of one replicate's "
    "validation and test curves, averaged per dataset."
)


def claims_section(claims: pd.DataFrame, study: Study, backbones: list[str]) -> str:
    text = PAPER_TEXT.format(backbone=", ".join(backbones) or "none ran")
    if claims.empty:
        return text + "\n\nThe grid lacks what the comparison needs (ROC-AUC, the baseline and CausalMixFT)."
    rows = []
    for claim in PAPER_CLAIMS:
        entry = {"claim": claim, "paper (claimed)": number(PAPER_CLAIMS[claim], 2)}
        for group in study.groups:
            cell = _pick(claims, group=group, claim=claim)
            r = cell.iloc[0]
            value = _ci(r["study"], r["ci_low"], r["ci_high"], 2, sign="gap" not in claim)
            entry[f"this study: {group}"] = f"{value} ({int(r['n_datasets'])})"
        entry["unit, basis"] = f"{r['unit']}; {r['basis']}"
        rows.append(entry)
    legend = f"Medians across datasets [{CI}, bootstrap over datasets] (datasets):"
    return f"{text}\n\n{legend}\n\n{md_table(pd.DataFrame(rows))}"


def render_answer(tables: Mapping[str, pd.DataFrame], study: Study, link: Callable[[str], str]) -> list[str]:
    """Lines of the Answer section; ``link(key)`` is an output's path relative to the summary."""
    if not study.curve_methods:
        return ["## Answer", "", "The grid has no size-dependent method: no synthetic size to answer about.", ""]
    _, metric = headline(study)
    groups = ", ".join(f"`{g}`: {plural(len(d), 'dataset')}" for g, d in study.groups.items())
    return [
        "## Answer",
        "",
        lead(tables, study),
        "",
        f"Dataset groups side by side in every table below ({groups}). Intervals: {CI}, percentile bootstrap over "
        f"datasets. Plot: [fitted improvement curves]({link('plot_scaling_fit')}); per dataset: "
        + ", ".join(f"[{metric_name(s, m)}]({link(f'plot_scaling_per_dataset_{s}_{m}')})" for s, m in SCALING_PANELS)
        + f"; tables [scaling_fit]({link('scaling_fit')}), [scaling_peak]({link('scaling_peak')}).",
        "",
        "### Improvement against synthetic size",
        "",
        curve_section(tables["scaling_peak"], study),
        "",
        f"### Does validation pick the size test would pick? ([size_selection]({link('size_selection')}), "
        f"per dataset: [best_size]({link('best_size')}))",
        "",
        selection_section(tables["size_selection"], study),
        "",
        f"### Validation as a guide to test, by size ([val_test_by_size]({link('val_test_by_size')}))",
        "",
        "rho: Spearman over datasets between validation and test improvement over the reference (datasets); gap and "
        "regret: median curve gap and early-stopping regret of that size across datasets.",
        "",
        val_test_section(tables["val_test_by_size"], study),
        "",
        f"### Datasets at chance level ([chance]({link('chance')}))",
        "",
        chance_section(tables["chance"], tables["scaling_peak"], study),
        "",
        f"### Is the causal structure what helps? ([dag_controls]({link('dag_controls')}))",
        "",
        dag_section(tables["dag_controls"], study),
        "",
        f"### The paper's claims and this study ([claims]({link('claims')}))",
        "",
        claims_section(tables["claims"], study, sorted(tables["runs_long"]["backbone"].dropna().unique())),
        "",
        f"### Tests and ranks ([paired_tests]({link('paired_tests')}), [ranks]({link('ranks')}), "
        f"[critical-difference diagram]({link('plot_critical_difference')}))",
        "",
        *[f"- {s}" for s in paired_findings(tables["paired_tests"], study, ALL, metric)],
        "",
    ]
