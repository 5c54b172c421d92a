"""Scaling with the synthetic size: curves per dataset and aggregated, trend tests, best size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.experiment import stats
from causalmixft.experiment.study import SPREAD_COLUMNS, Study, choose_by, ordered, quantile, spread, wide_splits
from causalmixft.metrics import HIGHER_IS_BETTER

PER_DATASET_COLUMNS = "method source dataset size split metric value n_folds".split()
SUMMARY_COLUMNS = ["group", "method", "source", "size", "split", "metric", *SPREAD_COLUMNS]
TREND_COLUMNS = (
    "group method split metric sizes n_datasets n_rho_defined n_rho_positive n_rho_negative median_rho "
    "sign_test_p page_n_datasets page_L page_p_increasing page_p_decreasing note"
).split()
BEST_SIZE_COLUMNS = (
    "method dataset metric n_sizes val_chosen_size test_best_size val_at_chosen test_at_val_chosen test_best regret agree"
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
            row = {"group": group, "method": method, "split": split, "metric": metric}
            row |= {"sizes": " ".join(str(int(s)) for s in sizes), "n_datasets": len(matrix)}
            row |= {"n_rho_defined": int(np.isfinite(rhos).sum()), "n_rho_positive": positive}
            row |= {"n_rho_negative": negative, "median_rho": quantile(rhos, 50), "sign_test_p": sign_p}
            row |= {"page_n_datasets": len(complete), "page_L": page.statistic}
            row |= {"page_p_increasing": page.p_increasing, "page_p_decreasing": page.p_decreasing}
            row["note"] = page.note
            rows.append(row)
    return ordered(pd.DataFrame(rows, columns=TREND_COLUMNS), study)


def best_size_table(per_dataset: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per curve x dataset x metric: the size validation picks next to the size test would pick.

    Candidates include n=0 (the anchor), since "no synthetic rows" is a possible best answer.
    """
    curves = per_dataset[per_dataset["method"].isin(study.curve_methods)]
    keys = ["method", "dataset"]
    rows = []
    for metric in study.metrics:
        wide = wide_splits(curves[curves["metric"] == metric])
        by_val = choose_by(wide, "val", metric, keys).set_index(keys)
        by_test = choose_by(wide, "test", metric, keys).set_index(keys)
        counts = wide.dropna(subset=["val", "test"]).groupby(keys).size()
        higher = HIGHER_IS_BETTER[metric]
        for key in by_val.index:
            chosen, best = by_val.loc[key], by_test.loc[key]
            row = {"method": key[0], "dataset": key[1], "metric": metric, "n_sizes": int(counts.loc[key])}
            row |= {"val_chosen_size": int(chosen["size"]), "test_best_size": int(best["size"])}
            row |= {"val_at_chosen": chosen["val"], "test_at_val_chosen": chosen["test"], "test_best": best["test"]}
            row["regret"] = best["test"] - chosen["test"] if higher else chosen["test"] - best["test"]
            row["agree"] = row["val_chosen_size"] == row["test_best_size"]
            rows.append(row)
    return ordered(pd.DataFrame(rows, columns=BEST_SIZE_COLUMNS), study)
