"""Conditional-independence tests handed to causal-learn, and how each needs its data prepared.

``fisherz`` runs through :class:`FastFisherZ`, a drop-in subclass of causal-learn's ``FisherZ``
with the same statistic and p-value, computed with ``math.erfc`` instead of ``scipy.stats.norm.cdf``:
the scipy call dominated PC/FCI run time (about 3x slower at 40 columns) and gives the same p-values
to round-off. It is registered with causal-learn's documented ``register_ci_test`` hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from causallearn.utils.cit import FisherZ, register_ci_test

FAST_FISHERZ = "causalmixft_fisherz"
# causal-learn's ``fastkci`` is not offered: it runs its blocks through joblib with n_jobs=-1 (every
# core, whatever the scheduler granted) and fails on 204-row tables ("zero-size array" in its
# spectral null distribution).
CI_TESTS = ("fisherz", "mv_fisherz", "chisq", "gsq", "kci", "rcit", "auto")
# ``auto`` runs RCIT up to this many rows x tested columns^2 (204 rows x 16 columns = 52,224:
# about 3 s of one core for PC + FCI), Fisher-z beyond.
AUTO_RCIT_MAX_WORK = 100_000


class FastFisherZ(FisherZ):
    def __call__(self, X, Y, condition_set=None):
        xs, ys, condition_set, cache_key = self.get_formatted_XYZ_and_cachekey(X, Y, condition_set)
        cached = self.pvalue_cache.get(cache_key)
        if cached is not None:
            return cached
        dof = self.sample_size - len(condition_set) - 3
        if dof <= 0:
            # FCI's possible-d-sep step can condition on more columns than tiny data allows. With no
            # degrees of freedom there is no evidence for independence, so the edge is kept (p = 0)
            # rather than causal-learn's math domain error.
            self.pvalue_cache[cache_key] = 0.0
            return 0.0
        variables = xs + ys + condition_set
        sub_corr = self.correlation_matrix[np.ix_(variables, variables)]
        try:
            inverse = np.linalg.inv(sub_corr)
        except np.linalg.LinAlgError as exc:
            raise ValueError("correlation matrix is singular; cannot run the Fisher-z test") from exc
        r = -inverse[0, 1] / math.sqrt(abs(inverse[0, 0] * inverse[1, 1]))
        if abs(r) >= 1:  # deterministic relation or tiny sample, as in causal-learn
            r = (1.0 - np.finfo(float).eps) * np.sign(r)
        z = 0.5 * math.log((1 + r) / (1 - r))
        statistic = math.sqrt(dof) * abs(z)
        p_value = math.erfc(statistic / math.sqrt(2.0))  # = 2 * (1 - Phi(statistic))
        self.pvalue_cache[cache_key] = p_value
        return p_value


register_ci_test(FAST_FISHERZ, FastFisherZ)


@dataclass(frozen=True)
class ResolvedTest:
    name: str  # the configured name, after resolving "auto"
    method: str  # the name causal-learn's CIT() receives
    discretize_numeric: bool  # chisq/gsq count cells, so numeric columns are binned first
    row_cap: int | None  # KCI is cubic in rows: it only runs on a subsample
    keeps_missing: bool = False  # mv_fisherz deletes missing values per test instead of filling them


def auto_ci_test(all_categorical: bool, n_rows: int, n_columns: int) -> str:
    """G-square for all-categorical data; RCIT while its cost fits; Fisher-z beyond.

    bench/bench_discovery.py: on nonlinear mixed-type data with 15 features and 204 rows, RCIT
    finds a sparser, more precise skeleton with fewer false colliders than Fisher-z at about 100x
    its cost (seconds instead of tens of milliseconds), so it is chosen while rows x columns^2
    stays within :data:`AUTO_RCIT_MAX_WORK` (docs/causal.md has the measured cost per choice).
    """
    if all_categorical:
        return "gsq"
    if n_rows * n_columns**2 <= AUTO_RCIT_MAX_WORK:
        return "rcit"
    return "fisherz"


def resolve_ci_test(
    ci_test: str, all_categorical: bool, kci_max_rows: int, n_rows: int = 0, n_columns: int = 0
) -> ResolvedTest:
    """The test to run; ``auto`` resolves by :func:`auto_ci_test` on the rows and tested columns."""
    if ci_test == "auto":
        ci_test = auto_ci_test(all_categorical, n_rows, n_columns)
    if ci_test == "fisherz":
        return ResolvedTest("fisherz", FAST_FISHERZ, False, None)
    if ci_test == "mv_fisherz":
        return ResolvedTest("mv_fisherz", "mv_fisherz", False, None, keeps_missing=True)
    if ci_test in ("chisq", "gsq"):
        return ResolvedTest(ci_test, ci_test, True, None)
    if ci_test == "kci":
        return ResolvedTest("kci", "kci", False, int(kci_max_rows))
    if ci_test == "rcit":
        return ResolvedTest("rcit", "rcit", False, None)
    raise ValueError(f"unknown ci_test {ci_test!r}; choose one of {', '.join(CI_TESTS)}")
