"""Statistical tests of the aggregate stage, each of which says when it does not apply.

Small studies (one to four datasets) are the normal case during development, so every test
returns NaN plus a plain-language note instead of raising or returning a misleading number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class StatResult:
    statistic: float
    pvalue: float
    note: str = ""  # why the test was not applied; empty when it was

    @property
    def applied(self) -> bool:
        return not self.note


# Decimals kept before anything that counts signs or ranks values. Two equal scores (e.g. two methods
# that both kept the zero-shot weights) can differ by ~1e-16 once averaged in a different order, which
# would break a tie at random; scores that really differ (a test row of 300 moves accuracy by 0.0033,
# a pair of rows ROC-AUC by > 1e-6) differ by far more than 1e-9.
TIE_DECIMALS = 9


def denoised(values) -> np.ndarray:
    """``values`` rounded to ``TIE_DECIMALS``: float noise neither breaks a tie nor makes a sign."""
    return np.round(np.asarray(values, dtype=float), TIE_DECIMALS)


def sign_counts(values) -> tuple[int, int]:
    """(positives, negatives) among the finite values; a value zero up to float noise is neither."""
    values = denoised(values)
    values = values[np.isfinite(values)]
    return int((values > 0).sum()), int((values < 0).sum())


def within_row_ranks(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Rank competitors (columns) within each dataset (row): 1 = best, ties share their mean rank."""
    scores = denoised(scores)
    return stats.rankdata(-scores if higher_is_better else scores, axis=1)


MIN_FRIEDMAN_DATASETS = 5  # below this the chi-square approximation is meaningless (Demšar 2006)


def friedman(scores: np.ndarray) -> StatResult:
    """Friedman test on a complete datasets x competitors matrix (scipy, with tie correction).

    With fewer than 5 datasets the test is not run: the chi-square approximation does not hold
    and, with 2 datasets, cannot even reach p < 0.1. The note then says "too few datasets".
    """
    n, k = scores.shape
    if k < 3:
        return StatResult(np.nan, np.nan, f"needs at least 3 competitors, got {k}")
    if n < MIN_FRIEDMAN_DATASETS:
        return StatResult(np.nan, np.nan, f"too few datasets ({n} with every competitor; at least "
                                          f"{MIN_FRIEDMAN_DATASETS} needed)")
    with np.errstate(invalid="ignore", divide="ignore"):
        result = stats.friedmanchisquare(*np.asarray(scores, dtype=float).T)
    if not np.isfinite(result.statistic):
        # The tie correction divides by zero when every dataset ranks all competitors equal.
        return StatResult(np.nan, np.nan, "all competitors tie on every dataset")
    return StatResult(float(result.statistic), float(result.pvalue))


def nemenyi_critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks (Demšar 2006): q_alpha * sqrt(k(k+1) / 6n).

    q_alpha is the studentized range quantile for k groups and infinite degrees of freedom
    divided by sqrt(2); for alpha = 0.05 this reproduces Demšar's table (k=3: 2.343, k=5: 2.728).
    """
    if k < 2 or n < 1:
        return float("nan")
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(k * (k + 1) / (6.0 * n)))


def cd_cliques(sorted_ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs [i, j] of rank-sorted competitors whose average ranks differ by less than ``cd``.

    Two competitors differ significantly when their ranks differ by at least CD, so each run
    is a group no pair of which can be told apart; runs contained in a longer run are dropped.
    """
    ranks = np.asarray(sorted_ranks, dtype=float)
    if not np.isfinite(cd) or len(ranks) < 2:
        return []
    cliques: list[tuple[int, int]] = []
    previous_end = -1
    for i in range(len(ranks)):
        end = i
        while end + 1 < len(ranks) and ranks[end + 1] - ranks[i] < cd:
            end += 1
        # ``end`` never decreases with i, so a run is new exactly when it reaches further.
        if end > i and end > previous_end:
            cliques.append((i, end))
        previous_end = max(previous_end, end)
    return cliques


def spearman_or_nan(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation over the finite pairs; NaN for fewer than 3 pairs or a constant side."""
    x, y = denoised(x), denoised(y)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def sign_test(values: np.ndarray) -> tuple[int, int, float]:
    """(positives, negatives, two-sided binomial p) over the finite, non-zero values."""
    positive, negative = sign_counts(values)
    if positive + negative == 0:
        return positive, negative, float("nan")
    return positive, negative, float(stats.binomtest(positive, positive + negative, 0.5).pvalue)


@dataclass(frozen=True)
class PageResult:
    statistic: float
    p_increasing: float
    p_decreasing: float
    note: str = ""


def page_trend(matrix: np.ndarray) -> PageResult:
    """Page's L test on datasets x ordered sizes, one-sided in both directions.

    Page's L only tests the predicted order, so the increasing and the decreasing order are
    tested separately; L is reported for the increasing order.
    """
    matrix = denoised(matrix)
    n, k = matrix.shape
    if n < 2 or k < 3:
        return PageResult(np.nan, np.nan, np.nan, f"needs at least 2 complete datasets and 3 sizes, got {n} and {k}")
    increasing = stats.page_trend_test(matrix)
    decreasing = stats.page_trend_test(matrix, predicted_ranks=np.arange(k, 0, -1))
    return PageResult(float(increasing.statistic), float(increasing.pvalue), float(decreasing.pvalue))


def wilcoxon_signed_rank(differences: np.ndarray, alpha: float = 0.05) -> StatResult:
    """Two-sided exact Wilcoxon signed-rank test of paired differences (one per dataset) against 0.

    Zero differences are dropped (Wilcoxon's convention). When even the most extreme outcome
    cannot reach ``alpha`` (2 / 2**n >= alpha, i.e. fewer than 6 non-zero differences at 0.05)
    the test is not run and the note says "too few datasets".
    """
    d = denoised(differences)
    d = d[np.isfinite(d) & (d != 0)]
    n = len(d)
    if n == 0 or 2.0 / 2**n >= alpha:
        return StatResult(np.nan, np.nan, f"too few datasets ({n} non-zero paired differences; the exact test "
                                          f"cannot reach p < {alpha} with fewer than {_min_wilcoxon_n(alpha)})")
    result = stats.wilcoxon(d, method="exact" if n <= 50 else "approx")
    return StatResult(float(result.statistic), float(result.pvalue))


def _min_wilcoxon_n(alpha: float) -> int:
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control); NaN entries stay NaN and
    do not count towards the family size."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="mergesort")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, n_resamples: int = 4000,
                      seed: int = 0, min_n: int = 2) -> tuple[float, float, float]:
    """(mean, lower, upper): the mean of the finite values with a percentile bootstrap interval.

    Resamples the values (datasets) with replacement; deterministic for a given seed. NaN bounds
    for fewer than ``min_n`` values (at least 2: one value has no interval; a study passes its
    ``min_datasets``, below which a percentile interval over datasets means nothing).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    if len(v) < max(2, min_n):
        return float(v.mean()), np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(len(v), size=(n_resamples, len(v)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(v.mean()), float(low), float(high)
