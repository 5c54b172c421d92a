"""Inference-time ensemble of the built-in backbone: members that see the same table differently.

Each member is one forward pass. Members differ by

- **class shift**: class c is shown to the network as (c + shift) mod n_classes, so a network that
  prefers some label indices no longer biases the averaged prediction;
- **feature preprocessing**, fitted on the context rows only and applied to numeric columns:
  ``none``; ``quantile`` (each value's position in the context's empirical distribution, mapped
  to a standard normal); ``log`` (sign(x) log(1 + |x|) on right-skewed non-negative columns);
- **category order**: from the second round of members on, the integer codes of categorical
  columns are relabelled by a random permutation (codes enter the network as numbers, so their
  order is arbitrary information);
- **feature subset**, only for tables wider than the network's ``max_features``.

Feature order is deliberately not a member kind: the network has no positional information, so
reordering the columns gives the same prediction (tested to 1e-5).

:func:`ensemble_members` lists the members deterministically from ``random_state``; a prefix of
the list is balanced over shifts and preprocessings, so ``n_estimators`` can be any number.
:class:`Ensemble` holds the settings of one prediction; its defaults are one plain pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

PREPROCESSINGS = ("none", "quantile", "log")
SKEWNESS_FOR_LOG = 1.0  # sample skewness of a non-negative column above which ``log`` applies


@dataclass(frozen=True)
class Ensemble:
    """The prediction settings of the built-in backbone, which always travel together.

    ``n_estimators=None``: every class shift (at most ``n_class_shifts``; None or 0: all) on every
    feature subset (``n_feature_subsets`` of them, only for tables wider than the network's
    ``max_features``), raw features; the defaults are one plain pass. ``n_estimators=k``: the k
    members of :func:`ensemble_members`, cycling through the ``preprocessing`` kinds and, when
    ``category_orders``, permuting category codes from the second round on.
    """

    n_estimators: int | None = None
    n_class_shifts: int | None = 1
    n_feature_subsets: int = 4
    preprocessing: tuple[str, ...] = PREPROCESSINGS
    category_orders: bool = True

    def __post_init__(self):
        object.__setattr__(self, "preprocessing", tuple(self.preprocessing))  # a list from JSON or argparse


@dataclass(frozen=True)
class Member:
    class_shift: int
    preprocessing: str
    columns: tuple[int, ...] | None = None  # None: every column
    category_seed: int | None = None  # None: codes as given


def _numeric_columns(x_context: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """Numeric columns with at least two distinct observed context values."""
    keep = []
    for j in np.flatnonzero(~categorical):
        observed = x_context[:, j][~np.isnan(x_context[:, j])]
        if len(observed) and observed.min() < observed.max():
            keep.append(j)
    return np.asarray(keep, dtype=int)


def _skewed_positive(column: np.ndarray) -> bool:
    observed = column[~np.isnan(column)]
    if len(observed) < 3 or observed.min() < 0:
        return False
    centred = observed - observed.mean()
    std = np.sqrt(np.mean(centred**2))
    return std > 0 and np.mean(centred**3) / std**3 > SKEWNESS_FOR_LOG


def applicable_preprocessings(x_context: np.ndarray, categorical: np.ndarray, wanted=PREPROCESSINGS) -> list[str]:
    """The preprocessings in ``wanted`` that change this table (others would repeat ``none``)."""
    numeric = _numeric_columns(x_context, categorical)
    found = []
    for kind in wanted:
        if kind == "none":
            found.append(kind)
        elif kind == "quantile" and len(numeric):
            found.append(kind)
        elif kind == "log" and any(_skewed_positive(x_context[:, j]) for j in numeric):
            found.append(kind)
        elif kind not in PREPROCESSINGS:
            raise ValueError(f"unknown preprocessing {kind!r}; choose from {PREPROCESSINGS}")
    return found


def _quantile_normal(context: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values -> standard-normal scores of their mid-rank in the observed context values."""
    observed = np.sort(context[~np.isnan(context)])
    unique, first = np.unique(observed, return_index=True)
    last = np.append(first[1:], len(observed)) - 1
    positions = ((first + last) / 2 + 0.5) / len(observed)  # mid-rank of tied values, in (0, 1)
    quantile = np.interp(values, unique, positions)  # beyond the context range: its end values
    edge = 0.5 / len(observed)
    return np.where(np.isnan(values), np.nan, ndtri(np.clip(quantile, edge, 1 - edge)))


def preprocess(kind: str, x_context: np.ndarray, x_query: np.ndarray, categorical: np.ndarray):
    """(context, query) after preprocessing ``kind``, fitted on the context rows only."""
    if kind == "none":
        return x_context, x_query
    x_context, x_query = x_context.astype(np.float64), x_query.astype(np.float64)
    for j in _numeric_columns(x_context, categorical):
        if kind == "quantile":
            reference = x_context[:, j].copy()
            x_context[:, j] = _quantile_normal(reference, x_context[:, j])
            x_query[:, j] = _quantile_normal(reference, x_query[:, j])
        elif kind == "log" and _skewed_positive(x_context[:, j]):
            x_context[:, j] = np.log1p(x_context[:, j])
            x_query[:, j] = np.sign(x_query[:, j]) * np.log1p(np.abs(x_query[:, j]))
    return x_context.astype(np.float32), x_query.astype(np.float32)


def permute_categories(x: np.ndarray, categorical: np.ndarray, seed: int, n_codes: int) -> np.ndarray:
    """Relabel the integer codes of categorical columns by a random permutation per column."""
    x = x.copy()
    rng = np.random.default_rng(seed)
    for j in np.flatnonzero(categorical):
        permutation = rng.permutation(n_codes)
        column = x[:, j]
        known = ~np.isnan(column) & (column >= 0) & (column < n_codes)
        column[known] = permutation[column[known].astype(int)]
    return x


def _balanced_grid(n_shifts: int, preprocessings: list[str]) -> list[tuple[int, str]]:
    """Every (shift, preprocessing) pair once, ordered so that every prefix is as balanced as possible."""
    remaining = [(s, p) for s in range(n_shifts) for p in range(len(preprocessings))]
    shift_count, prep_count = np.zeros(n_shifts, int), np.zeros(len(preprocessings), int)
    order = []
    while remaining:
        s, p = min(remaining, key=lambda pair: (shift_count[pair[0]], prep_count[pair[1]]))
        remaining.remove((s, p))
        shift_count[s] += 1
        prep_count[p] += 1
        order.append((s, preprocessings[p]))
    return order


def ensemble_members(ensemble: Ensemble, n_classes: int, n_features: int, max_features: int | None,
                     has_categorical: bool = False, random_state: int = 0) -> list[Member]:
    """``ensemble.n_estimators`` members: rounds over the balanced (shift, preprocessing) grid.

    Every kind in ``ensemble.preprocessing`` is used (pass the applicable ones, see
    :func:`applicable_preprocessings`); ``ensemble.n_feature_subsets`` plays no part. The first
    round keeps the categorical codes as given; later rounds (when ``ensemble.category_orders``
    and the table has categorical columns) each draw a new code permutation per member. Tables
    wider than ``max_features`` give each member its own random subset of columns.
    """
    n_estimators = ensemble.n_estimators
    if n_estimators is None or n_estimators < 1:
        raise ValueError(f"n_estimators must be at least 1, got {n_estimators}")
    n_shifts = max(1, min(n_classes, ensemble.n_class_shifts or n_classes))
    grid = _balanced_grid(n_shifts, list(ensemble.preprocessing))
    rng = np.random.default_rng(random_state)
    wide = max_features is not None and n_features > max_features
    members = []
    for index in range(n_estimators):
        shift, kind = grid[index % len(grid)]
        columns = tuple(np.sort(rng.choice(n_features, max_features, replace=False)).tolist()) if wide else None
        permuted = ensemble.category_orders and has_categorical and index >= len(grid)
        seed = int(rng.integers(2**31)) if permuted else None
        members.append(Member(shift, kind, columns, seed))
    return members
