"""Scaling with the synthetic size: curves per dataset and aggregated, trend tests, best size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.analysis import stats
from causalmixft.analysis.study import SPREAD_COLUMNS, TOO_FEW, Study, ordered, quantile, spread

PER_DATASET_COLUMNS = "method source dataset size split metric value n_folds".split()
SUMMARY_COLUMNS = ["group", "method", "source", "size", "split", "metric", *SPREAD_COLUMNS]
TREND_COLUMNS = (
    "group method split metric sizes n_datasets n_rho_defined n_rho_positive n_rho_negative median_rho "
    "sign_test_p sign_test_p_holm page_n_datasets page_L page_p_increasing page_p_decreasing page_p "
    "page_p_holm direction note"
).split()
BEST_SIZE_COLUMNS = (
    "method dataset metric n_folds n_units chosen_sizes test_best_sizes val_at_chosen test_at_chosen test_best "
    "regret agree_share"
).split()


def scaling_per_dataset(means: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Fold-mean scores along each size-dependent method's curve, n=0 taken from its anchor.

    ``source`` names the method whose runs give the point; the reference's own level is added
    as rows with method = source = reference at n=0, the line every curve is compared with.
    """
    parts = []
    for method in study.curve_methods:
        own = means[(means["method"] == method) & (means["size"] > 0)]
        anchor = means[means["method"] == study.anchor(method)].assign(size=0)
        parts.append(own.assign(source=method))
        parts.append(anchor.assign(method=method, source=study.anchor(method)))
    parts.append(means[means["method"] == study.reference].assign(size=0, source=study.reference))
    frame = pd.concat(parts, ignore_index=True)
    return ordered(frame[PER_DATASET_COLUMNS], study)


def scaling_summary(per_dataset: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Median and quartiles across datasets per group x method x size x split x metric."""
    keys = ["method", "source", "size", "split", "metric"]
    rows = []
    for group, datasets in study.groups.items():
        members = per_dataset[per_dataset["dataset"].isin(datasets)]
        for values, cell in members.groupby(keys, sort=True):
            rows.append({"group": group, **dict(zip(keys, values)), **spread(cell["value"])})
    return ordered(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), study)


def trend_tests(per_dataset: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per curve: per-dataset Spearman(size, score) with a sign test, and Page's L across sizes."""
    rows = []
    curves = per_dataset[per_dataset["method"].isin(study.curve_methods)]
    for group, datasets in study.groups.items():
        members = curves[curves["dataset"].isin(datasets)]
        for (method, split, metric), cell in members.groupby(["method", "split", "metric"], sort=True):
            matrix = cell.pivot_table(index="dataset", columns="size", values="value", aggfunc="first")
            matrix = matrix.sort_index(axis=1)  # Page's L predicts the order of the columns
            sizes = matrix.columns.to_numpy(float)
            rhos = np.array([stats.spearman_or_nan(sizes, row) for row in matrix.to_numpy(float)])
            positive, negative, sign_p = stats.sign_test(rhos)
            complete = matrix.dropna()
            page = stats.page_trend(complete.to_numpy(float))
            # no test over fewer than the study's min_datasets (the counts stay)
            too_few = []
            if np.isfinite(sign_p) and np.isfinite(rhos).sum() < study.min_datasets:
                too_few, sign_p = [f"sign test: {TOO_FEW}"], np.nan
            if len(complete) < study.min_datasets and not page.note:
                page = stats.PageResult(np.nan, np.nan, np.nan, f"{TOO_FEW} ({len(complete)} complete)")
            row = {"group": group, "method": method, "split": split, "metric": metric}
            row |= {"sizes": " ".join(str(int(s)) for s in sizes), "n_datasets": len(matrix)}
            row |= {"n_rho_defined": int(np.isfinite(rhos).sum()), "n_rho_positive": positive}
            row |= {"n_rho_negative": negative, "median_rho": quantile(rhos, 50), "sign_test_p": sign_p}
            row |= {"page_n_datasets": len(complete), "page_L": page.statistic}
            row |= {"page_p_increasing": page.p_increasing, "page_p_decreasing": page.p_decreasing}
            # Both directions are tested; the two-sided p doubles the smaller one-sided p.
            row["page_p"] = min(1.0, 2 * min(page.p_increasing, page.p_decreasing)) if not page.note else np.nan
            row["direction"] = "" if page.note else (
                "increasing" if page.p_increasing <= page.p_decreasing else "decreasing")
            row["note"] = "; ".join([*([page.note] if page.note else []), *too_few])
            rows.append(row)
    table = pd.DataFrame(rows, columns=TREND_COLUMNS)
    # One family per report: every trend p-value (Page's and the sign tests) is Holm-corrected together.
    family = np.concatenate([table["page_p"].to_numpy(float), table["sign_test_p"].to_numpy(float)])
    adjusted = stats.holm(family)
    table["page_p_holm"], table["sign_test_p_holm"] = adjusted[: len(table)], adjusted[len(table):]
    return ordered(table, study)


def best_size_table(chosen: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per curve x dataset x metric: the sizes validation picked (per fold and replicate, n = 0
    included; selection.py) next to the sizes test would have picked, and the regret of the choice."""
    return ordered(chosen[BEST_SIZE_COLUMNS], study)
