"""Tables of the aggregate stage, computed from per-run metrics (definitions: docs/metrics.md).

Every table is a pure function of pandas frames so it can be checked on hand-made numbers.
This module holds the improvement and rank tables, fidelity and cost, and ``build_tables``,
which assembles the per-budget ones (curve diagnostics live in ``curves``, scaling in ``scaling``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.errors import StageError
from causalmixft.analysis import stats
from causalmixft.analysis.collect import Runs, on_real_validation, runs_long
from causalmixft.analysis.curves import early_stopping_summary, gap_regret_runs, gap_regret_summary
from causalmixft.analysis.scaling import best_size_table, scaling_per_dataset, scaling_summary, trend_tests
from causalmixft.analysis.selection import choices_per_dataset, size_choices
from causalmixft.analysis.study import (
    SPREAD_COLUMNS,
    Study,
    dataset_means,
    fold_scores,
    ordered,
    replicate_scores,
    spread,
    wide_splits,
)
from causalmixft.metrics import HIGHER_IS_BETTER

# Normalized improvement (%, SPREAD_COLUMNS and mean with its bootstrap interval over datasets)
# and the absolute improvement (score units, e.g. ROC-AUC) as median and mean with its interval.
INTERVAL_COLUMNS = ["mean", "ci_low", "ci_high", "abs_median", "abs_mean", "abs_ci_low", "abs_ci_high"]
IMPROVEMENT_COLUMNS = ["group", "metric", "split", "method", "size", *SPREAD_COLUMNS, *INTERVAL_COLUMNS]
PAIRED_COLUMNS = ("group metric selection competitor baseline n_datasets n_better n_worse median_difference "
                  "wilcoxon_w wilcoxon_p p_holm significant note").split()
REPLICATE_COLUMNS = ["metric", "split", "method", "size", *SPREAD_COLUMNS]
RANK_COLUMNS = "group metric selection competitor avg_rank mean_score n_datasets chosen_sizes".split()
COST_COLUMNS = "rule jobs wall_s_median wall_s_total cpu_s_total max_rss_mib cpu_s_median".split()


# --- normalized improvement over the reference --------------------------------------------


def improvement_per_fold(scores: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per fold: normalized improvement 100 (s / s_ref - 1) (100 (1 - s / s_ref) for losses) and
    absolute improvement s - s_ref (s_ref - s for losses), so positive always means better.

    NaN where the reference run is missing; the normalized value also where s_ref is zero.
    """
    reference = scores[scores["method"] == study.reference].drop(columns=["method", "size"])
    keys = ["dataset", "fold", "split", "metric"]
    if reference.duplicated(keys).any():
        raise StageError("aggregate", "-", f"the reference {study.reference} has more than one run per (dataset, fold)")
    others = scores[scores["method"] != study.reference]
    merged = others.merge(reference.rename(columns={"value": "reference"}), on=keys, how="left")
    value, ref = merged["value"].to_numpy(float), merged["reference"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = value / ref
    higher = merged["metric"].map(HIGHER_IS_BETTER).to_numpy(bool)
    improvement = np.where(higher, 100.0 * (ratio - 1.0), 100.0 * (1.0 - ratio))
    merged["improvement"] = np.where(np.isfinite(improvement), improvement, np.nan)
    merged["absolute"] = np.where(higher, value - ref, ref - value)
    return merged


def improvement_tables(scores: pd.DataFrame, study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-dataset fold means, spread across datasets per group x metric x split x configuration).

    Every configuration of the grid gets a row, one without any value too (n_datasets = 0), so
    a method that failed everywhere shows up instead of vanishing from the table. Means come with
    a percentile bootstrap 95 % interval over datasets.
    """
    per_fold = improvement_per_fold(scores, study)
    keys = ["method", "size", "dataset", "split", "metric"]
    per_dataset = dataset_means(per_fold[[*keys, "improvement"]], "improvement")
    per_dataset["absolute"] = per_fold.groupby(keys, sort=True)["absolute"].mean().to_numpy()
    cells = dict(list(per_dataset.groupby(["method", "size", "metric", "split"], sort=True)))
    no_values = per_dataset.iloc[:0]
    rows = []
    for group, datasets in study.groups.items():
        for metric in study.metrics:
            for split in ("val", "test"):
                for method, size in study.configurations():
                    if method == study.reference:
                        continue
                    cell = cells.get((method, size, metric, split), no_values)
                    members = cell[cell["dataset"].isin(datasets)]
                    block = {"group": group, "metric": metric, "split": split, "method": method, "size": size}
                    rows.append({**block, **spread(members["improvement"]), **intervals(members, study.min_datasets)})
    return ordered(per_dataset, study), ordered(pd.DataFrame(rows, columns=IMPROVEMENT_COLUMNS), study)


def intervals(per_dataset: pd.DataFrame, min_datasets: int) -> dict:
    """Means over datasets with bootstrap 95 % intervals, normalized (%) and absolute; no interval
    over fewer than ``min_datasets`` datasets."""
    mean, low, high = stats.bootstrap_mean_ci(per_dataset["improvement"].to_numpy(float), min_n=min_datasets)
    absolute = per_dataset["absolute"].to_numpy(float)
    abs_mean, abs_low, abs_high = stats.bootstrap_mean_ci(absolute, min_n=min_datasets)
    finite = absolute[np.isfinite(absolute)]
    return {"mean": mean, "ci_low": low, "ci_high": high, "abs_median": np.median(finite) if len(finite) else np.nan,
            "abs_mean": abs_mean, "abs_ci_low": abs_low, "abs_ci_high": abs_high}


def replicate_spread(replicates: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Seed spread: per configuration, the standard deviation of the selected scores across
    fine-tuning replicates of one fold, averaged over folds, then spread across datasets."""
    keys = ["method", "size", "dataset", "fold", "split", "metric"]
    grouped = replicates.groupby(keys, sort=True)["value"]
    sd = grouped.std(ddof=1)[grouped.count() > 1].rename("sd").reset_index()
    if sd.empty:
        return pd.DataFrame(columns=REPLICATE_COLUMNS)
    per_dataset = sd.groupby(["method", "size", "dataset", "split", "metric"], sort=True)["sd"].mean().reset_index()
    rows = [
        {"metric": metric, "split": split, "method": method, "size": size, **spread(cell["sd"])}
        for (method, size, split, metric), cell in per_dataset.groupby(["method", "size", "split", "metric"])
    ]
    return ordered(pd.DataFrame(rows, columns=REPLICATE_COLUMNS), study)


# --- ranks, Friedman, Nemenyi -------------------------------------------------------------


def competitor_matrices(means: pd.DataFrame, chosen: pd.DataFrame, metric: str,
                        study: Study) -> dict[str, tuple[pd.DataFrame, dict]]:
    """Datasets x competitors fold-mean test scores for both selections, plus the chosen sizes.

    ``per_size``: every (method, size) of the grid competes. ``val_chosen``: each size-dependent
    method at its validation-chosen size (selection.py: chosen per fold and replicate on that
    fold's validation rows), the other methods as they are, so test never picks a competitor.
    """
    rows = wide_splits(means[means["metric"] == metric])
    per_size = {}
    for method, size in study.configurations():
        cell = rows[(rows["method"] == method) & (rows["size"] == size)]
        per_size[study.label(method, size)] = cell.set_index("dataset")["test"]
    picks = chosen[chosen["metric"] == metric]
    val_chosen, chosen_sizes = {}, {}
    for method in study.methods:
        if method in study.size_dependent:
            own = picks[picks["method"] == method].set_index("dataset")
            val_chosen[method], chosen_sizes[method] = own["test_at_chosen"], own["chosen_sizes"]
        else:
            val_chosen[method] = rows[rows["method"] == method].set_index("dataset")["test"]
    index = list(study.datasets)
    return {
        "per_size": (pd.DataFrame(per_size, index=index), {}),
        "val_chosen": (pd.DataFrame(val_chosen, index=index), chosen_sizes),
    }


def rank_tables(means: pd.DataFrame, chosen: pd.DataFrame, study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(average ranks per group x metric x selection x competitor, Friedman / Nemenyi per block).

    Ranks need a complete block design: competitors without any score in the group are dropped
    first, then datasets lacking any remaining competitor; both are listed in the tests table.
    """
    rank_rows, test_rows = [], []
    for metric in study.metrics:
        for selection, (matrix, chosen_sizes) in competitor_matrices(means, chosen, metric, study).items():
            for group, datasets in study.groups.items():
                block = {"group": group, "metric": metric, "selection": selection}
                members = matrix.loc[[d for d in matrix.index if d in datasets]]
                empty = [c for c in members.columns if members[c].isna().all()]
                members = members.drop(columns=empty)
                complete = members.dropna()
                incomplete = [d for d in members.index if d not in complete.index]
                test_rows.append({**block, **_rank_tests(complete, empty, incomplete, study.alpha)})
                if complete.empty:
                    continue
                ranks = stats.within_row_ranks(complete.to_numpy(), HIGHER_IS_BETTER[metric])
                for j, competitor in enumerate(complete.columns):
                    row = {**block, "competitor": competitor, "avg_rank": ranks[:, j].mean()}
                    row |= {"mean_score": complete[competitor].mean(), "n_datasets": len(complete)}
                    if competitor in chosen_sizes:
                        sizes = chosen_sizes[competitor].reindex(complete.index)
                        row["chosen_sizes"] = "; ".join(f"{d}: {v}" for d, v in sizes.items())
                    rank_rows.append(row)
    ranks = ordered(pd.DataFrame(rank_rows, columns=RANK_COLUMNS), study, ["group", "metric", "selection", "avg_rank"])
    tests = ordered(pd.DataFrame(test_rows), study, ["group", "metric", "selection"])
    return ranks, tests


def _rank_tests(complete: pd.DataFrame, empty: list, incomplete: list, alpha: float) -> dict:
    k, n = complete.shape[1], len(complete)
    if n == 0:
        result = stats.StatResult(np.nan, np.nan, "no dataset has a score for every competitor")
    else:
        result = stats.friedman(complete.to_numpy())
    # Post-hoc critical difference only where the omnibus test itself applies.
    cd = stats.nemenyi_critical_difference(k, n, alpha) if result.applied else np.nan
    return {
        "n_competitors": k,
        "n_datasets": n,
        "friedman_chi2": result.statistic,
        "friedman_p": result.pvalue,
        "nemenyi_cd": cd,
        "alpha": alpha,
        "dropped_competitors": "; ".join(empty),
        "dropped_datasets": "; ".join(incomplete),
        "note": result.note,
    }


def paired_tests(means: pd.DataFrame, chosen: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Each competitor against the baseline (plain fine-tuning) on fold-mean test scores: an exact
    Wilcoxon signed-rank test over datasets, Holm-corrected within each group x metric x selection."""
    rows = []
    for metric in study.metrics:
        higher = HIGHER_IS_BETTER[metric]
        for selection, (matrix, _) in competitor_matrices(means, chosen, metric, study).items():
            baseline = study.baseline if study.baseline in matrix else None
            for group, datasets in study.groups.items():
                members = matrix.loc[[d for d in matrix.index if d in datasets]]
                block = []
                for competitor in members.columns:
                    if baseline is None or competitor == baseline:
                        continue
                    pair = members[[competitor, baseline]].dropna()
                    difference = (pair[competitor] - pair[baseline]).to_numpy(float) * (1.0 if higher else -1.0)
                    better, worse = stats.sign_counts(difference)
                    result = stats.wilcoxon_signed_rank(difference, study.alpha)
                    block.append({
                        "group": group, "metric": metric, "selection": selection, "competitor": competitor,
                        "baseline": baseline, "n_datasets": len(pair), "n_better": better,
                        "n_worse": worse,
                        "median_difference": float(np.median(difference)) if len(difference) else np.nan,
                        "wilcoxon_w": result.statistic, "wilcoxon_p": result.pvalue, "note": result.note,
                    })
                adjusted = stats.holm(np.array([row["wilcoxon_p"] for row in block], float))
                for row, p in zip(block, adjusted):
                    row["p_holm"] = p
                    row["significant"] = bool(np.isfinite(p) and p < study.alpha)
                rows += block
    return ordered(pd.DataFrame(rows, columns=PAIRED_COLUMNS), study, ["group", "metric", "selection"])


# --- fidelity and cost ----------------------------------------------------------------------


def fidelity_summary(fidelity: pd.DataFrame) -> pd.DataFrame:
    """Per generator x size x key: spread across datasets of the fold-mean value."""
    columns = ["generator", "size", "key", *SPREAD_COLUMNS]
    if fidelity.empty:
        return pd.DataFrame(columns=columns)
    per_dataset = fidelity.groupby(["generator", "size", "key", "dataset"], sort=True)["value"].mean().reset_index()
    rows = [
        {"generator": generator, "size": size, "key": key, **spread(cell["value"])}
        for (generator, size, key), cell in per_dataset.groupby(["generator", "size", "key"], sort=True)
    ]
    return pd.DataFrame(rows, columns=columns)


def cost_table(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, median and total wall seconds, total CPU seconds, peak RSS in MiB, median CPU seconds."""
    if benchmarks.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    grouped = benchmarks.groupby("rule", sort=True)
    table = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "wall_s_median": grouped["wall_s"].median(),
            "wall_s_total": grouped["wall_s"].sum(min_count=1),
            "cpu_s_total": grouped["cpu_s"].sum(min_count=1),
            "max_rss_mib": grouped["max_rss_mib"].max(),
            "cpu_s_median": grouped["cpu_s"].median(),
        }
    )
    return table.reset_index()[COST_COLUMNS]


# --- everything -----------------------------------------------------------------------------


def build_tables(
    runs: Runs,
    study: Study,
    fidelity: pd.DataFrame | None = None,
    fidelity_missing: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The tables of one real budget, keyed by output name (``outputs.OUTPUTS``)."""
    long = runs_long(runs.records)
    # Scores compared across methods come from the rows every method is scored on (the real validation
    # rows, also for a run that chose on SCM rows); the size is chosen on what chose the step.
    compared = on_real_validation(long)
    replicates = replicate_scores(compared, study)
    scores = fold_scores(compared, study)
    means = dataset_means(scores)
    choices = size_choices(replicate_scores(long, study), study)
    chosen = choices_per_dataset(choices)
    improvement_per_dataset, improvement = improvement_tables(scores, study)
    ranks, rank_tests = rank_tables(means, chosen, study)
    gap_runs = gap_regret_runs(runs.records, study)
    scaling_datasets = scaling_per_dataset(means, study)
    missing = [frame for frame in (runs.missing, fidelity_missing) if frame is not None and not frame.empty]
    return {
        "runs_long": long,
        "missing": pd.concat(missing, ignore_index=True) if missing else runs.missing,
        "improvement": improvement,
        "improvement_per_dataset": improvement_per_dataset,
        "ranks": ranks,
        "rank_tests": rank_tests,
        "paired_tests": paired_tests(means, chosen, study),
        "replicate_spread": replicate_spread(replicates, study),
        "size_choices": choices,
        "gap_regret": gap_regret_summary(gap_runs, study),
        "gap_regret_runs": gap_runs,
        "early_stopping": early_stopping_summary(runs.records, study),
        "scaling": scaling_summary(scaling_datasets, study),
        "scaling_per_dataset": scaling_datasets,
        "trend": trend_tests(scaling_datasets, study),
        "best_size": best_size_table(chosen, study),
        "fidelity": fidelity_summary(fidelity if fidelity is not None else pd.DataFrame()),
    }
