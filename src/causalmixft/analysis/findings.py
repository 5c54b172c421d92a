"""The "Findings" of report/summary.md: plain sentences generated from the tables.

Every sentence reads its numbers from a table and words them conditionally (above or not,
significant or not, not applicable and why), so the text cannot drift from the numbers. A
difference of means or medians is never called significant: only the Friedman, Wilcoxon and
Page's L tests are, after Holm correction where a report runs a family of them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from causalmixft.analysis.collect import TWO_SAMPLE_KEYS
from causalmixft.analysis.formatting import metric_label, metric_name, number, plural, pvalue, signed
from causalmixft.analysis.plots import SCALING_PANELS
from causalmixft.analysis.study import ALL, Study

FEW_DATASETS = 5  # below this many datasets, medians get a low-power caveat


def coverage_findings(tables: Mapping[str, pd.DataFrame], n_expected: int) -> list[str]:
    missing = tables["missing"]
    runs = missing[missing["kind"] == "run"]
    if runs.empty:
        return [f"All {n_expected} expected runs are present."]
    by_method = ", ".join(f"{method}: {n}" for method, n in runs.groupby("method", sort=True).size().items())
    return [
        f"{n_expected - len(runs)} of {n_expected} expected runs are present; missing: {len(runs)} ({by_method}). "
        "Missing runs contribute no value to any table (see Missing runs)."
    ]


def _effect(row, metric: str, separator: str = ";") -> str:
    """Mean improvement with its unit and bootstrap interval, normalized and absolute."""
    def interval(mean, low, high, digits, unit):
        if not np.isfinite(low):
            return f"{signed(mean, digits)}{unit}"
        return f"{signed(mean, digits)}{unit} [95 % CI {signed(low, digits)} to {signed(high, digits)}]"

    return (
        f"{interval(row['mean'], row['ci_low'], row['ci_high'], 2, ' %')} normalized, "
        f"{interval(row['abs_mean'], row['abs_ci_low'], row['abs_ci_high'], 4, '')} absolute "
        f"{metric_label(metric)}{separator} {plural(row['n_datasets'], 'dataset')}"
    )


def improvement_findings(improvement: pd.DataFrame, study: Study, group: str, metric: str) -> list[str]:
    selected = (improvement["group"] == group) & (improvement["metric"] == metric) & (improvement["split"] == "test")
    rows = improvement[selected]
    label = f"mean test {metric_label(metric)} improvement over {study.reference}"
    out = []
    baseline = rows[(rows["method"] == study.baseline) & (rows["n_datasets"] > 0)]
    base_mean = baseline.iloc[0]["mean"] if len(baseline) else np.nan
    if len(baseline):
        out.append(f"{study.baseline} (n=0): {label} {_effect(baseline.iloc[0], metric)}.")
    for method in study.curve_methods:
        curve = rows[(rows["method"] == method) & (rows["n_datasets"] > 0)].sort_values("size")
        if curve.empty:
            out.append(f"{method}: no size has a defined {label}.")
            continue
        points = "; ".join(f"n={int(r['size'])}: {_effect(r, metric, ',')}" for _, r in curve.iterrows())
        sentence = f"{method}: {label} {points}."
        if np.isfinite(base_mean):
            above = curve.loc[curve["mean"] > base_mean, "size"].astype(int).tolist()
            which = f" (n={', '.join(map(str, above))})" if above else ""
            sentence += (
                f" Its mean is above {study.baseline}'s ({signed(base_mean)} %) "
                f"at {len(above)} of {len(curve)} sizes{which}; see the paired tests for whether any "
                "difference is significant."
            )
        out.append(sentence)
    if len(rows) and rows["n_datasets"].max() < FEW_DATASETS:
        out.append(
            f"These means rest on fewer than {FEW_DATASETS} datasets: too few datasets for the intervals to be "
            "more than a rough guide, and they can move a lot with one more dataset."
        )
    return out


def paired_findings(paired: pd.DataFrame, study: Study, group: str, metric: str) -> list[str]:
    rows = paired[(paired["group"] == group) & (paired["metric"] == metric) & (paired["selection"] == "val_chosen")]
    if rows.empty:
        return []
    tested = rows[rows["note"] == ""]
    if tested.empty:
        return [f"Paired tests against {study.baseline} (test {metric_label(metric)}): not run, "
                f"{rows.iloc[0]['note']}."]
    listed = "; ".join(
        f"{r['competitor']} better on {r['n_better']} and worse on {r['n_worse']} of {r['n_datasets']} datasets, "
        f"Holm p = {pvalue(r['p_holm'])}{' (significant)' if r['significant'] else ''}"
        for _, r in tested.iterrows()
    )
    return [f"Against {study.baseline} (test {metric_label(metric)}, Wilcoxon signed-rank over datasets, "
            f"Holm-corrected, alpha = {study.alpha}): {listed}."]


def rank_findings(ranks: pd.DataFrame, tests: pd.DataFrame, study: Study, group: str, metric: str) -> list[str]:
    """The headline ranking: each method at its validation-chosen size (no test-set selection)."""

    def block_of(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["group"] == group) & (frame["metric"] == metric) & (frame["selection"] == "val_chosen")]

    block, test = block_of(ranks), block_of(tests)
    name = f"test {metric_label(metric)}"
    if block.empty or test.empty:
        note = test.iloc[0]["note"] if len(test) else "no ranks"
        return [f"Average {name} ranks (each method at its validation-chosen size): not available ({note})."]
    t = test.iloc[0]
    listed = ", ".join(f"{r['competitor']} {r['avg_rank']:.2f}" for _, r in block.iterrows())
    sentence = (
        f"Average {name} rank with each method at its validation-chosen size "
        f"({plural(t['n_datasets'], 'dataset')}; 1 = best): {listed}."
    )
    if t["note"]:
        return [f"{sentence} Friedman test not applicable: {t['note']}."]
    significant = t["friedman_p"] < study.alpha
    sentence += (
        f" Friedman chi2 = {t['friedman_chi2']:.2f}, p = {pvalue(t['friedman_p'])}: rank differences are "
        f"{'significant' if significant else 'not significant'} at alpha = {study.alpha}."
    )
    if significant:
        sentence += " " + _nemenyi_pairs(block, t["nemenyi_cd"])
    return [sentence]


def _nemenyi_pairs(block: pd.DataFrame, cd: float) -> str:
    ranked = list(zip(block["competitor"], block["avg_rank"]))
    pairs = [f"{a} vs {b}" for i, (a, ra) in enumerate(ranked) for b, rb in ranked[i + 1 :] if abs(rb - ra) >= cd]
    if not pairs:
        return f"No pair's average ranks differ by the Nemenyi CD ({cd:.2f}) or more."
    return f"Pairs whose average ranks differ by at least the Nemenyi CD ({cd:.2f}): {'; '.join(pairs)}."


def trend_findings(trend: pd.DataFrame, study: Study, group: str) -> list[str]:
    out = []
    rows = trend[trend["group"] == group]
    for split, metric in _trend_views(study):
        for method in study.curve_methods:
            cell = rows[(rows["method"] == method) & (rows["split"] == split) & (rows["metric"] == metric)]
            if cell.empty:
                continue
            r = cell.iloc[0]
            sizes = r["sizes"].split()
            anchor = f"; n=0 is {study.anchor(method)}" if "0" in sizes else ""
            sentence = f"{method}, {metric_name(split, metric)} vs synthetic size (n = {', '.join(sizes)}{anchor}): "
            if r["n_rho_defined"]:
                sentence += (
                    f"Spearman rho(size, score) > 0 in {r['n_rho_positive']} and < 0 in {r['n_rho_negative']} "
                    f"of {plural(r['n_datasets'], 'dataset')} (sign test p = {pvalue(r['sign_test_p'])})"
                )
            else:
                sentence += "the per-dataset Spearman correlation is undefined (fewer than 3 sizes or constant scores)"
            if r["note"]:
                sentence += f"; Page's L test not applicable ({r['note']})."
            else:
                sentence += (
                    f"; Page's L = {r['page_L']:.0f} over {r['page_n_datasets']} datasets, "
                    f"increasing p = {pvalue(r['page_p_increasing'])}, decreasing p = {pvalue(r['page_p_decreasing'])}: "
                    f"{_trend_verdict(r, study.alpha)}."
                )
            out.append(sentence)
    return out


def _trend_views(study: Study) -> list[tuple[str, str]]:
    """Validation accuracy (the research question's selection signal), then test for every metric."""
    views = [view for view in SCALING_PANELS if view[1] in study.metrics and view[0] == "val"]
    return views + [("test", metric) for metric in study.metrics]


def _trend_verdict(row, alpha: float) -> str:
    # Two-sided Page p (twice the smaller one-sided p), Holm-corrected over the report's trend tests.
    if row["page_p_holm"] < alpha:
        return (f"a significant {row['direction']} trend (two-sided, Holm-corrected p = "
                f"{pvalue(row['page_p_holm'])} < {alpha})")
    return f"no significant monotone trend after Holm correction (p = {pvalue(row['page_p_holm'])}, alpha = {alpha})"


def gap_findings(gap: pd.DataFrame, study: Study, group: str, metric: str) -> list[str]:
    rows = gap[(gap["group"] == group) & (gap["metric"] == metric) & (gap["size"] == ALL)]
    if rows.empty:
        return []
    name = metric_label(metric)
    gaps, regrets = [], []
    for _, r in rows.iterrows():
        if r["n_gap_defined"]:
            gaps.append(f"{r['method']} {number(r['gap_median'], 2)} ({plural(r['n_datasets'], 'dataset')}, "
                        f"{r['n_gap_defined']} of {r['n_runs']} curves defined)")
        else:
            gaps.append(f"{r['method']} undefined (no curve has 3 or more non-constant evaluation points)")
        regrets.append(f"{r['method']} {number(r['regret_median'], 4)} (positive in {r['n_regret_positive']} of "
                       f"{r['n_runs']} curves)")
    return [
        f"Median over datasets of the validation-test correlation gap ({name}; per curve, averaged over "
        f"replicates and folds; 0 = validation ranks the steps as test does, 2 = in reverse): {'; '.join(gaps)}.",
        f"Median over datasets of the early-stopping regret (test {name}; 0 = validation picked the test-best "
        f"step): {'; '.join(regrets)}.",
    ]


def best_size_findings(best: pd.DataFrame, study: Study, metric: str) -> list[str]:
    out = []
    for method in study.curve_methods:
        rows = best[(best["method"] == method) & (best["metric"] == metric)]
        if rows.empty:
            continue
        out.append(
            f"{method} ({metric_label(metric)}): choosing the size per fold and replicate on validation rows "
            f"(n = 0 included) picks the test-best size in {number(100 * rows['agree_share'].mean(), 0)} % of "
            f"the choices (mean over {plural(len(rows), 'dataset')}); median test regret of the choice across "
            f"datasets {number(rows['regret'].median(), 4)} {metric_label(metric)}."
        )
    return out


def fidelity_findings(fidelity: pd.DataFrame) -> list[str]:
    rows = fidelity[fidelity["key"].isin(TWO_SAMPLE_KEYS)]
    out = []
    for generator, cell in rows.groupby("generator", sort=True):
        points = ", ".join(f"n={int(r['size'])}: {number(r['median'])}" for _, r in cell.sort_values("size").iterrows())
        out.append(f"Median two-sample ROC-AUC of {generator} rows vs real rows (0.5 = indistinguishable): {points}.")
    return out
