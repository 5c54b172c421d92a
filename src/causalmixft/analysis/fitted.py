"""The fitted improvement curve (figure ``scaling_fit.png``) and the chance test it leaves out near-chance datasets by.

- ``scaling_fit``: improvement over plain fine-tuning against log2 synthetic size, a least-squares
  polynomial through every dataset's fold-mean improvements with a bootstrap band over datasets,
  for every dataset and for the datasets above chance (docs/metrics.md, "Fitted curve");
- ``chance``: per dataset and method, whether test ROC-AUC is above chance (0.5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from causalmixft.analysis import stats
from causalmixft.analysis.aggregate import improvement_per_fold
from causalmixft.analysis.study import Study, fold_scores, ordered

N_RESAMPLES, SEED, LEVEL = 4000, 0, 0.95  # the bootstrap of every interval over datasets (as stats.py)
FIT_DEGREE = 2  # quadratic in log2 size: one bend, so a peak inside the range can show
GRID_POINTS = 33  # fitted curve evaluated on this many log2-spaced sizes, plus the measured ones
CHANCE = 0.5  # ROC-AUC of a classifier that ranks at random
ClassCounts = Mapping[tuple[str, int], Sequence[int]]  # (dataset, fold) -> its test rows' class counts
SCALES = {"absolute": "absolute", "normalized": "improvement"}  # scale -> column of the gains

FIT_COLUMNS = (
    "group subset method split metric scale log2_size size measured n_datasets degree fit band_low band_high"
).split()
CHANCE_COLUMNS = "dataset method n_folds mean ci_low ci_high null_se z p p_holm above_chance dataset_status".split()


def resample_counts(n: int) -> np.ndarray:
    """How often each of n datasets is drawn in each resample (N_RESAMPLES x n); same draws as
    stats.bootstrap_mean_ci."""
    draws = np.random.default_rng(SEED).integers(n, size=(N_RESAMPLES, n))
    counts = np.zeros((N_RESAMPLES, n))
    np.add.at(counts, (np.arange(N_RESAMPLES)[:, None], draws), 1.0)
    return counts


def baseline_gains(scores: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per curve method x size > 0 x dataset x split x metric: fold-mean improvement over the
    baseline (plain fine-tuning), ``absolute`` (score units) and ``improvement`` (% of its score)."""
    if study.baseline not in study.methods or not study.curve_methods:
        return pd.DataFrame(columns=["method", "size", "dataset", "split", "metric", "improvement", "absolute"])
    keys = ["method", "size", "dataset", "split", "metric"]
    rows = scores[scores["method"].isin([*study.curve_methods, study.baseline])]
    per_fold = improvement_per_fold(rows, replace(study, reference=study.baseline))
    per_fold = per_fold[per_fold["method"].isin(study.curve_methods) & (per_fold["size"] > 0)]
    return per_fold.groupby(keys, sort=True)[["improvement", "absolute"]].mean().reset_index()


def fit_curve(points: pd.DataFrame, grid: np.ndarray, min_datasets: int = 2) -> dict:
    """Least-squares polynomial of y on x = log2 size through every (dataset, size) point, refitted
    on resampled datasets. Degree min(FIT_DEGREE, distinct sizes - 1). Returns the fit on ``grid`` and
    its band (the 95 % percentile range of the refits; none over fewer than ``min_datasets``)."""
    degree = min(FIT_DEGREE, points["x"].nunique() - 1)
    datasets = sorted(points["dataset"].unique())

    def design(x):
        return np.vander(np.asarray(x, float), degree + 1, increasing=True)

    blocks = [points[points["dataset"] == d] for d in datasets]
    gram = np.stack([design(b["x"]).T @ design(b["x"]) for b in blocks])
    moment = np.stack([design(b["x"]).T @ b["y"].to_numpy(float) for b in blocks])
    beta = np.linalg.pinv(gram.sum(axis=0)) @ moment.sum(axis=0)
    fit = design(grid) @ beta
    result = {"degree": degree, "n_datasets": len(datasets), "fit": fit}
    if len(datasets) < max(2, min_datasets):  # no interval from one dataset, nor from too few
        nan = np.full(len(grid), np.nan)
        return result | {"band_low": nan, "band_high": nan}
    counts = resample_counts(len(datasets))
    betas = np.linalg.pinv(np.einsum("bd,dij->bij", counts, gram)) @ (counts @ moment)[:, :, None]
    curves = betas[:, :, 0] @ design(grid).T
    tail = 100 * (1 - LEVEL) / 2
    with np.errstate(all="ignore"):
        low, high = np.nanpercentile(curves, [tail, 100 - tail], axis=0)
    return result | {"band_low": low, "band_high": high}


def scaling_fit(gains: pd.DataFrame, subsets: dict, study: Study) -> pd.DataFrame:
    """The fitted curve on the grid per group x subset x method x split x metric x scale."""
    fit_rows = []
    for group, datasets in study.groups.items():
        for subset, members in subsets.items():
            chosen = gains[gains["dataset"].isin(set(datasets) & set(members))]
            for (method, split, metric), cell in chosen.groupby(["method", "split", "metric"], sort=True):
                for scale, column in SCALES.items():
                    points = cell.assign(x=np.log2(cell["size"].astype(float)), y=cell[column])
                    points = points[np.isfinite(points["y"])]
                    block = {
                        "group": group,
                        "subset": subset,
                        "method": method,
                        "split": split,
                        "metric": metric,
                        "scale": scale,
                    }
                    if points.empty:
                        continue
                    sizes = np.log2(np.array(sorted(cell["size"].unique()), float))
                    grid = np.unique(np.concatenate([np.linspace(sizes[0], sizes[-1], GRID_POINTS), sizes]))
                    curve = fit_curve(points, grid, study.min_datasets)
                    for i, x in enumerate(grid):
                        fit_rows.append(
                            {
                                **block,
                                "log2_size": x,
                                "size": 2.0**x,
                                "measured": bool(np.isin(x, sizes)),
                                "n_datasets": curve["n_datasets"],
                                "degree": curve["degree"],
                                "fit": curve["fit"][i],
                                "band_low": curve["band_low"][i],
                                "band_high": curve["band_high"][i],
                            }
                        )
    return ordered(pd.DataFrame(fit_rows, columns=FIT_COLUMNS), study, ["group", "metric", "split", "method"])


def null_auc_se(class_counts) -> float:
    """Standard deviation of a test set's ROC-AUC when the scores are independent of the labels (the
    Mann-Whitney null): sqrt((n1 + n0 + 1) / (12 n1 n0)) for one class against the rest. For the
    one-vs-rest macro ROC-AUC of more classes, the mean of the classes' values: an upper bound, since
    the SD of a mean is at most the mean of the SDs (the classes' AUCs are dependent). NaN below two
    classes."""
    counts = np.asarray([c for c in class_counts if c > 0], float)
    if len(counts) < 2:
        return float("nan")
    n = counts.sum()
    return float(np.mean(np.sqrt((n + 1) / (12 * counts * (n - counts)))))


def chance_table(
    scores: pd.DataFrame,
    choices: pd.DataFrame,
    study: Study,
    test_class_counts: ClassCounts | None = None,
) -> pd.DataFrame:
    """Per dataset x method (size-dependent methods at their validation-chosen size): fold-mean test
    ROC-AUC with a t interval over folds, and a one-sided test of "above 0.5".

    The test: under "scores independent of the labels" each fold's test ROC-AUC has mean 0.5 and the
    SD ``null_auc_se`` of its test class counts, whatever the training draw, and the folds' disjoint
    test sets are independent, so z = (fold-mean - 0.5) / (sqrt(sum of the folds' null variances) / k)
    is standard normal; p = P(Z > z), Holm-corrected over the dataset's methods. A dataset is
    ``above chance`` when any method's corrected p is below the study's alpha, else ``near chance``.
    Without ``test_class_counts`` ({(dataset, fold): class counts of its test rows}) the t interval
    decides (any lower bound above 0.5), and with fewer than two folds the dataset is ``undetermined``.
    """
    if "roc_auc" not in study.metrics:
        return pd.DataFrame(columns=CHANCE_COLUMNS)
    counts = test_class_counts or {}
    plain = scores[
        (scores["metric"] == "roc_auc") & (scores["split"] == "test") & ~scores["method"].isin(study.size_dependent)
    ][["method", "dataset", "fold", "value"]]
    picked = choices[choices["metric"] == "roc_auc"].groupby(["method", "dataset", "fold"])["test_at_chosen"]
    chosen = picked.mean().rename("value").reset_index()
    folds = pd.concat([plain, chosen], ignore_index=True) if len(chosen) else plain
    rows = []
    for (method, dataset), cell in folds.groupby(["method", "dataset"], sort=True):
        cell = cell[np.isfinite(cell["value"].to_numpy(float))]
        v = cell["value"].to_numpy(float)
        half = (
            scipy_stats.t.ppf(0.5 + LEVEL / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
        )
        mean = v.mean() if len(v) else np.nan
        fold_se = np.array([null_auc_se(counts.get((dataset, int(f)), ())) for f in cell["fold"]], float)
        null_se = np.sqrt(np.sum(fold_se**2)) / len(v) if len(v) else np.nan
        z = (mean - CHANCE) / null_se if null_se > 0 else np.nan
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "n_folds": len(v),
                "mean": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "null_se": null_se,
                "z": z,
                "p": scipy_stats.norm.sf(z) if np.isfinite(z) else np.nan,
            }
        )
    table = pd.DataFrame(rows, columns=CHANCE_COLUMNS[:-2])
    table["p_holm"] = table.groupby("dataset")["p"].transform(lambda p: stats.holm(p.to_numpy(float)))
    tested = table.groupby("dataset")["p_holm"].transform("count") > 0
    table["above_chance"] = np.where(
        tested, table["p_holm"] < study.alpha, (table["ci_low"] > CHANCE).to_numpy()
    ).astype(bool)
    by_dataset = table.groupby("dataset")
    above = by_dataset["above_chance"].transform("any")
    defined = tested | (by_dataset["ci_low"].transform("count") > 0)
    table["dataset_status"] = np.where(above, "above chance", np.where(defined, "near chance", "undetermined"))
    return ordered(table, study, ["dataset", "method"])


def chance_subsets(chance: pd.DataFrame, study: Study) -> dict[str, tuple[str, ...]]:
    """``all`` datasets and ``above_chance``: all but the near-chance ones (undetermined stay)."""
    near = set(chance.loc[chance["dataset_status"] == "near chance", "dataset"])
    return {"all": study.datasets, "above_chance": tuple(d for d in study.datasets if d not in near)}


def fitted_tables(
    tables: Mapping[str, pd.DataFrame], study: Study, test_class_counts: ClassCounts | None = None
) -> dict[str, pd.DataFrame]:
    """``chance`` and ``scaling_fit`` from the stage's runs_long and size_choices and, for the chance
    test, the test rows' class counts per (dataset, fold) (``chance_table``)."""
    scores = fold_scores(tables["runs_long"], study)
    chance = chance_table(scores, tables["size_choices"], study, test_class_counts)
    return {"scaling_fit": scaling_fit(baseline_gains(scores, study), chance_subsets(chance, study), study), "chance": chance}
