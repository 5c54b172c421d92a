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


def auto_ci_test(all_categorical: bool) -> str:
    """G-square for all-categorical data, Fisher-z otherwise, at any rows and columns.

    Rows and columns were measured as criteria and rejected (bench/bench_discovery.py, 15 features,
    5 seeds; docs/causal.md): at 204 rows RCIT gave a more precise skeleton with fewer false
    colliders but a lower label Markov-blanket recall than Fisher-z (nonlinear 0.73 vs 0.83, linear
    0.47 vs 0.78) at about 100x the cost, and at 1,000 rows it cost ~46 CPU s per discovery.
    """
    return "gsq" if all_categorical else "fisherz"


def resolve_ci_test(ci_test: str, all_categorical: bool, kci_max_rows: int) -> ResolvedTest:
    """The test to run; ``auto`` resolves by :func:`auto_ci_test`."""
    if ci_test == "auto":
        ci_test = auto_ci_test(all_categorical)
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
