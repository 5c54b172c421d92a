"""Tables that answer the study's question (definitions: docs/metrics.md, "Answer tables").

Computed from the other tables of the stage, never from the run files directly:

- ``scaling_fit`` / ``scaling_peak``: improvement over plain fine-tuning against log2 synthetic
  size, a least-squares polynomial through every dataset's fold-mean improvements with a
  bootstrap band over datasets, and where the fitted gain peaks, as a multiple of the real train rows;
- ``size_selection``: how often validation picks the size test would have picked (selection.py's
  per-unit choices), and the regret;
- ``val_test_by_size``: per size, whether validation ranks the datasets' gains as test does, next
  to the curve gap and the early-stopping regret of that size;
- ``chance``: per dataset and method, whether test ROC-AUC is above chance (0.5);
- ``dag_controls``: the discovered DAG against the empty and the random DAG at equal size;
- ``claims``: the quantities the paper reports, measured on this study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from causalmixft.analysis import stats
from causalmixft.analysis.aggregate import improvement_per_fold
from causalmixft.analysis.study import ALL, Study, dataset_means, fold_scores, ordered
from causalmixft.metrics import HIGHER_IS_BETTER

N_RESAMPLES, SEED, LEVEL = 4000, 0, 0.95  # the bootstrap of every interval over datasets (as stats.py)
FIT_DEGREE = 2  # quadratic in log2 size: one bend, so a peak inside the range can show
GRID_POINTS = 33  # fitted curve evaluated on this many log2-spaced sizes, plus the measured ones
CHANCE = 0.5  # ROC-AUC of a classifier that ranks at random
ClassCounts = Mapping[tuple[str, int], Sequence[int]]  # (dataset, fold) -> its test rows' class counts
CAUSAL_METHOD = "causalmixft"
DAG_CONTROLS = ("scm_emptydag", "scm_randomdag")  # same generator on an empty / a random DAG
SUBSETS = ("all", "above_chance")  # every dataset; without the near-chance datasets
SCALES = {"absolute": "absolute", "normalized": "improvement"}  # scale -> column of the gains

FIT_COLUMNS = (
    "group subset method split metric scale log2_size size measured n_datasets degree fit band_low " "band_high"
).split()
PEAK_COLUMNS = (
    "group subset method split metric scale n_datasets degree n_real_train peak_size peak_ratio "
    "ratio_ci_low ratio_ci_high peak_fit peak_band_low peak_band_high edge note"
).split()
SELECTION_COLUMNS = (
    "group method metric n_datasets agree_mean agree_ci_low agree_ci_high regret_mean "
    "regret_ci_low regret_ci_high regret_median zero_share chosen_ratio_median"
).split()
VAL_TEST_COLUMNS = (
    "group method metric size source n_datasets spearman spearman_ci_low spearman_ci_high " "gap_median regret_median"
).split()
CHANCE_COLUMNS = "dataset method n_folds mean ci_low ci_high null_se z p p_holm above_chance dataset_status".split()
DAG_COLUMNS = (
    "group metric control size n_datasets n_better n_worse mean_difference ci_low ci_high "
    "median_difference wilcoxon_w wilcoxon_p p_holm significant note"
).split()
CLAIM_COLUMNS = "group claim paper study ci_low ci_high n_datasets unit basis".split()


# --- bootstrap over datasets ----------------------------------------------------------------


def resample_counts(n: int) -> np.ndarray:
    """How often each of n datasets is drawn in each resample (N_RESAMPLES x n); same draws as
    stats.bootstrap_mean_ci."""
    draws = np.random.default_rng(SEED).integers(n, size=(N_RESAMPLES, n))
    counts = np.zeros((N_RESAMPLES, n))
    np.add.at(counts, (np.arange(N_RESAMPLES)[:, None], draws), 1.0)
    return counts


def _band(values: np.ndarray, axis: int = 0) -> tuple:
    tail = 100 * (1 - LEVEL) / 2
    with np.errstate(all="ignore"):
        return tuple(np.nanpercentile(values, [tail, 100 - tail], axis=axis))


def median_ci(values: np.ndarray) -> tuple[float, float, float]:
    """(median, lower, upper): median of the finite values, percentile-bootstrap interval over them."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v[0]) if len(v) else np.nan), np.nan, np.nan
    draws = np.random.default_rng(SEED).integers(len(v), size=(N_RESAMPLES, len(v)))
    low, high = _band(np.median(v[draws], axis=1))
    return float(np.median(v)), float(low), float(high)


def spearman_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Spearman correlation over the finite pairs with a bootstrap interval (resampling the pairs)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x, float)[keep], np.asarray(y, float)[keep]
    rho = stats.spearman_or_nan(x, y)
    if not np.isfinite(rho):
        return rho, np.nan, np.nan
    draws = np.random.default_rng(SEED).integers(len(x), size=(N_RESAMPLES, len(x)))
    rx, ry = scipy_stats.rankdata(x[draws], axis=1), scipy_stats.rankdata(y[draws], axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):  # a resample with one distinct value has no correlation
        rhos = (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    low, high = _band(rhos)
    return rho, float(low), float(high)


# --- fitted improvement curve and its peak --------------------------------------------------


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


def fit_curve(points: pd.DataFrame, grid: np.ndarray) -> dict:
    """Least-squares polynomial of y on x = log2 size through every (dataset, size) point, refitted
    on resampled datasets. Degree min(FIT_DEGREE, distinct sizes - 1). Returns the fit on ``grid``,
    its band, and the bootstrap distribution of the peak (grid index of the maximum)."""
    degree = min(FIT_DEGREE, points["x"].nunique() - 1)
    datasets = sorted(points["dataset"].unique())

    def design(x):
        return np.vander(np.asarray(x, float), degree + 1, increasing=True)

    blocks = [points[points["dataset"] == d] for d in datasets]
    gram = np.stack([design(b["x"]).T @ design(b["x"]) for b in blocks])
    moment = np.stack([design(b["x"]).T @ b["y"].to_numpy(float) for b in blocks])
    beta = np.linalg.pinv(gram.sum(axis=0)) @ moment.sum(axis=0)
    fit = design(grid) @ beta
    result = {"degree": degree, "n_datasets": len(datasets), "fit": fit, "peak": int(np.argmax(fit))}
    if len(datasets) < 2:  # no interval from one dataset
        nan = np.full(len(grid), np.nan)
        return result | {"band_low": nan, "band_high": nan, "peaks": np.array([], int), "curves": None}
    counts = resample_counts(len(datasets))
    betas = np.linalg.pinv(np.einsum("bd,dij->bij", counts, gram)) @ (counts @ moment)[:, :, None]
    curves = betas[:, :, 0] @ design(grid).T
    low, high = _band(curves)
    return result | {"band_low": low, "band_high": high, "peaks": np.argmax(curves, axis=1), "curves": curves}


def real_train_rows(long: pd.DataFrame, study: Study) -> pd.Series:
    """Real train rows per dataset: the median over its runs that train on real rows."""
    rows = long[long["method"].isin(study.methods_with_real)]
    return rows.groupby("dataset")["n_real_rows"].median()


def scaling_fit(
    gains: pd.DataFrame, n_real: pd.Series, subsets: dict, study: Study
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fitted curve on the grid, peak per curve) per group x subset x method x split x metric x scale."""
    fit_rows, peak_rows = [], []
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
                    curve = fit_curve(points, grid)
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
                    real = float(n_real.reindex(points["dataset"].unique()).median())
                    peak_rows.append({**block, **_peak(curve, grid, real)})
    fit = ordered(pd.DataFrame(fit_rows, columns=FIT_COLUMNS), study, ["group", "metric", "split", "method"])
    peak = ordered(pd.DataFrame(peak_rows, columns=PEAK_COLUMNS), study, ["group", "metric", "split", "method"])
    return fit, peak


def _peak(curve: dict, grid: np.ndarray, n_real: float) -> dict:
    i = curve["peak"]
    row = {
        "n_datasets": curve["n_datasets"],
        "degree": curve["degree"],
        "n_real_train": n_real,
        "peak_size": 2.0 ** grid[i],
        "peak_fit": curve["fit"][i],
        "peak_band_low": curve["band_low"][i],
        "peak_band_high": curve["band_high"][i],
        "note": "",
    }
    row["peak_ratio"] = row["peak_size"] / n_real if n_real > 0 else np.nan
    low, high = _band(2.0 ** grid[curve["peaks"]]) if len(curve["peaks"]) else (np.nan, np.nan)
    row["ratio_ci_low"], row["ratio_ci_high"] = low / n_real, high / n_real
    row["edge"] = "largest size" if i == len(grid) - 1 else "smallest size" if i == 0 else ""
    if curve["degree"] == 0:
        row |= {"edge": "", "note": "one synthetic size: no curve, no peak"}
        row["peak_size"] = row["peak_ratio"] = row["ratio_ci_low"] = row["ratio_ci_high"] = np.nan
    return row


# --- size selection, validation vs test by size ---------------------------------------------


def size_selection(choices: pd.DataFrame, best: pd.DataFrame, n_real: pd.Series, study: Study) -> pd.DataFrame:
    """Per group x curve method x metric: share of units where validation picked the test-best size
    and the regret (means over datasets with bootstrap intervals, from best_size), how often n = 0
    won, and the median chosen size as a multiple of the real train rows."""
    rows = []
    units = choices.assign(
        zero=(choices["chosen_size"] == 0).astype(float), ratio=choices["chosen_size"] / choices["dataset"].map(n_real)
    )
    per_fold = units.groupby(["method", "metric", "dataset", "fold"])[["zero", "ratio"]].agg(
        {"zero": "mean", "ratio": "median"}
    )
    per_dataset = per_fold.groupby(["method", "metric", "dataset"]).mean().reset_index()
    for group, datasets in study.groups.items():
        for (method, metric), cell in best[best["dataset"].isin(datasets)].groupby(["method", "metric"], sort=True):
            agree = stats.bootstrap_mean_ci(cell["agree_share"].to_numpy(float))
            regret = stats.bootstrap_mean_ci(cell["regret"].to_numpy(float))
            extra = per_dataset[
                (per_dataset["method"] == method)
                & (per_dataset["metric"] == metric)
                & per_dataset["dataset"].isin(datasets)
            ]
            rows.append(
                {
                    "group": group,
                    "method": method,
                    "metric": metric,
                    "n_datasets": len(cell),
                    "agree_mean": agree[0],
                    "agree_ci_low": agree[1],
                    "agree_ci_high": agree[2],
                    "regret_mean": regret[0],
                    "regret_ci_low": regret[1],
                    "regret_ci_high": regret[2],
                    "regret_median": float(cell["regret"].median()),
                    "zero_share": float(extra["zero"].mean()),
                    "chosen_ratio_median": float(extra["ratio"].median()),
                }
            )
    return ordered(pd.DataFrame(rows, columns=SELECTION_COLUMNS), study)


def val_test_by_size(per_dataset: pd.DataFrame, gap: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per group x curve method x metric x size (n = 0 from its anchor): Spearman over datasets
    between the validation and the test improvement over the reference (%), with its bootstrap
    interval, next to the median curve gap and early-stopping regret of that size (gap_regret)."""
    rows = []
    wide = per_dataset.pivot_table(
        index=["method", "size", "dataset", "metric"], columns="split", values="improvement", aggfunc="first"
    ).reindex(columns=["val", "test"])
    wide = wide.reset_index()
    for group, datasets in study.groups.items():
        members = wide[wide["dataset"].isin(datasets)]
        for method in study.curve_methods:
            anchor = study.anchor(method)
            for metric in study.metrics:
                sizes = sorted(members.loc[members["method"] == method, "size"].unique())
                for size in [0, *sizes]:
                    source = anchor if size == 0 else method
                    cell = members[
                        (members["method"] == source) & (members["size"] == size) & (members["metric"] == metric)
                    ]
                    if cell.empty:
                        continue
                    rho, low, high = spearman_ci(cell["val"].to_numpy(float), cell["test"].to_numpy(float))
                    curve = gap[
                        (gap["group"] == group)
                        & (gap["metric"] == metric)
                        & (gap["method"] == source)
                        & (gap["size"].astype(str) == (ALL if size == 0 else str(size)))
                    ]
                    rows.append(
                        {
                            "group": group,
                            "method": method,
                            "metric": metric,
                            "size": int(size),
                            "source": source,
                            "n_datasets": int(cell[["val", "test"]].notna().all(axis=1).sum()),
                            "spearman": rho,
                            "spearman_ci_low": low,
                            "spearman_ci_high": high,
                            "gap_median": curve["gap_median"].iloc[0] if len(curve) else np.nan,
                            "regret_median": curve["regret_median"].iloc[0] if len(curve) else np.nan,
                        }
                    )
    return ordered(pd.DataFrame(rows, columns=VAL_TEST_COLUMNS), study)


# --- chance level ---------------------------------------------------------------------------


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


# --- discovered DAG vs controls -------------------------------------------------------------


def dag_controls(means: pd.DataFrame, study: Study) -> pd.DataFrame:
    """CAUSAL_METHOD minus each DAG control at equal size, per dataset (fold-mean test scores;
    positive = the discovered DAG is better), at every size and averaged over the shared sizes
    (size ``all``); exact Wilcoxon over datasets, Holm within each group x metric."""
    controls = [c for c in DAG_CONTROLS if c in study.methods]
    if CAUSAL_METHOD not in study.methods or not controls:
        return pd.DataFrame(columns=DAG_COLUMNS)
    test = means[means["split"] == "test"]
    rows = []
    for group, datasets in study.groups.items():
        for metric in study.metrics:
            sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
            scores = test[(test["metric"] == metric) & test["dataset"].isin(datasets)].pivot_table(
                index="dataset", columns=["method", "size"], values="value", aggfunc="first"
            )
            block = []
            for control in controls:
                sizes = sorted(
                    {s for m, s in scores.columns if m == control}
                    & {s for m, s in scores.columns if m == CAUSAL_METHOD}
                )
                diffs = pd.DataFrame({s: sign * (scores[(CAUSAL_METHOD, s)] - scores[(control, s)]) for s in sizes})
                for size in [ALL, *sizes]:
                    d = (
                        (diffs.mean(axis=1) if size == ALL else diffs[size]).to_numpy(float)
                        if len(sizes)
                        else np.array([])
                    )
                    block.append(
                        {
                            "group": group,
                            "metric": metric,
                            "control": control,
                            "size": size,
                            **_paired(d[np.isfinite(d)], study.alpha),
                        }
                    )
            for row, p in zip(block, stats.holm(np.array([r["wilcoxon_p"] for r in block], float))):
                row["p_holm"], row["significant"] = p, bool(np.isfinite(p) and p < study.alpha)
            rows += block
    return pd.DataFrame(rows, columns=DAG_COLUMNS)


def _paired(d: np.ndarray, alpha: float) -> dict:
    mean, low, high = stats.bootstrap_mean_ci(d)
    test = stats.wilcoxon_signed_rank(d, alpha)
    return {
        "n_datasets": len(d),
        "n_better": int((d > 0).sum()),
        "n_worse": int((d < 0).sum()),
        "mean_difference": mean,
        "ci_low": low,
        "ci_high": high,
        "median_difference": float(np.median(d)) if len(d) else np.nan,
        "wilcoxon_w": test.statistic,
        "wilcoxon_p": test.pvalue,
        "note": test.note,
    }


# --- the paper's claims, measured here ------------------------------------------------------

# Claims of Bühler, Purucker and Hutter (arXiv 2601.04110), abstract: medians over 33 TabArena
# datasets, backbone Mitra, one synthetic amount per dataset. Cited, not measured here.
PAPER_CLAIMS = {
    "finetune: median normalized ROC-AUC improvement over the pre-trained model": 0.10,
    f"{CAUSAL_METHOD}: median normalized ROC-AUC improvement over the pre-trained model": 0.12,
    "finetune: median validation-test correlation gap": 0.67,
    f"{CAUSAL_METHOD}: median validation-test correlation gap": 0.30,
}


def claims_table(scores: pd.DataFrame, choices: pd.DataFrame, gap_runs: pd.DataFrame, study: Study) -> pd.DataFrame:
    """The paper's claims next to this study's median across datasets with a bootstrap interval:
    normalized test ROC-AUC improvement over the reference (CAUSAL_METHOD at its validation-chosen
    size) and the validation-test correlation gap on ROC-AUC (pooled over sizes)."""
    if "roc_auc" not in study.metrics or study.baseline not in study.methods or CAUSAL_METHOD not in study.methods:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    test = scores[(scores["metric"] == "roc_auc") & (scores["split"] == "test")]
    reference = test[test["method"] == study.reference].set_index(["dataset", "fold"])["value"]
    picked = choices[(choices["metric"] == "roc_auc") & (choices["method"] == CAUSAL_METHOD)]
    at_chosen = picked.groupby(["dataset", "fold"])["test_at_chosen"].mean()
    baseline = test[test["method"] == study.baseline].set_index(["dataset", "fold"])["value"]
    gaps = gap_runs[gap_runs["metric"] == "roc_auc"].groupby(["method", "dataset", "size", "fold"])["gap"].mean()
    gaps = gaps.groupby(["method", "dataset"]).mean()
    per_dataset = {}
    for label, method, fold_values in (
        ("improvement", study.baseline, baseline),
        ("improvement", CAUSAL_METHOD, at_chosen),
    ):
        normalized = 100.0 * (fold_values / reference.reindex(fold_values.index) - 1.0)
        per_dataset[(label, method)] = normalized.replace([np.inf, -np.inf], np.nan).groupby("dataset").mean()
    for method in (study.baseline, CAUSAL_METHOD):
        per_dataset[("gap", method)] = (
            gaps[method] if method in gaps.index.get_level_values(0) else pd.Series(dtype=float)
        )
    rows = []
    for group, datasets in study.groups.items():
        for (kind, method), (claim, paper) in zip(per_dataset, PAPER_CLAIMS.items()):
            values = per_dataset[(kind, method)].reindex(list(datasets)).to_numpy(float)
            median, low, high = median_ci(values)
            unit = "% of the zero-shot ROC-AUC" if kind == "improvement" else "1 - Spearman (0 to 2)"
            basis = (
                f"test ROC-AUC; {method} at its validation-chosen size"
                if method == CAUSAL_METHOD and kind == "improvement"
                else "test ROC-AUC" if kind == "improvement" else "ROC-AUC curves, every size pooled"
            )
            rows.append(
                {
                    "group": group,
                    "claim": claim,
                    "paper": paper,
                    "study": median,
                    "ci_low": low,
                    "ci_high": high,
                    "n_datasets": int(np.isfinite(values).sum()),
                    "unit": unit,
                    "basis": basis,
                }
            )
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


# --- everything -----------------------------------------------------------------------------


def answer_tables(
    tables: dict[str, pd.DataFrame],
    study: Study,
    test_class_counts: ClassCounts | None = None,
) -> dict[str, pd.DataFrame]:
    """The answer tables, from the stage's other tables (runs_long, size_choices, best_size,
    improvement_per_dataset, gap_regret, gap_regret_runs) and, for the chance test, the test rows'
    class counts per (dataset, fold) (``chance_table``)."""
    long = tables["runs_long"]
    scores = fold_scores(long, study)
    n_real = real_train_rows(long, study)
    chance = chance_table(scores, tables["size_choices"], study, test_class_counts)
    fit, peak = scaling_fit(baseline_gains(scores, study), n_real, chance_subsets(chance, study), study)
    return {
        "scaling_fit": fit,
        "scaling_peak": peak,
        "size_selection": size_selection(tables["size_choices"], tables["best_size"], n_real, study),
        "val_test_by_size": val_test_by_size(tables["improvement_per_dataset"], tables["gap_regret"], study),
        "chance": chance,
        "dag_controls": dag_controls(dataset_means(scores), study),
        "claims": claims_table(scores, tables["size_choices"], tables["gap_regret_runs"], study),
    }
