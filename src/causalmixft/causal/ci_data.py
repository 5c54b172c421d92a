"""The numeric matrix the conditional-independence tests see, and the columns they must not see.

Encoding (one column per node, the label included, as in the paper's pipeline):
- numeric features: their values; missing values are filled with the column median (the
  ``mv_fisherz`` test instead sees them as missing and deletes them test by test);
- categorical features: their level codes in the schema's sorted level order (not one-hot: one
  node per column keeps PC/FCI's graph over the table's own columns, which is what the SCM is
  fitted on); missing values are filled with the most frequent code;
- the label: its class code.
Fisher-z on codes only sees the part of a dependence that is linear in the codes; this is the
known price of the paper-style pipeline and is documented in ``docs/causal.md``.

Columns that would make a test degenerate are removed from the tests but kept in the DAG:
- a constant column carries no information and becomes an isolated node;
- a column that is (numerically) a linear function of columns already kept, e.g. an exact
  duplicate, a unit conversion or a sum, makes the correlation matrix singular (Fisher-z then
  fails) and deterministic relations violate faithfulness anyway. It is removed and later
  becomes a child of the kept columns that determine it. The label is examined first, so it is
  always kept; a feature that duplicates the label becomes its child.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causalmixft.data.schema import TableSchema

# A column counts as linearly determined when less than this share of its variance is left
# after regressing it on the kept columns. 1e-8 is far below any real noise level yet far
# above float64 round-off on standardized data.
COLLINEAR_RESIDUAL_SHARE = 1e-8
# Coefficients below this size (on standardized columns) do not make a column a determinant.
DETERMINANT_MIN_COEF = 1e-6


@dataclass
class CIData:
    """All nodes encoded as floats, and which of them the CI tests may use."""

    matrix: np.ndarray  # rows x nodes, float64, no NaN
    names: list[str]  # node names in matrix column order: features (schema order), then the label
    kinds: list[str]  # "numeric" | "categorical" per node (the label is categorical)
    missing: np.ndarray | None = None  # rows x nodes, True where a value was filled in
    imputed: dict[str, int] = field(default_factory=dict)  # node -> number of filled missing values
    excluded: dict[str, dict] = field(default_factory=dict)  # node -> {"reason", "determined_by"}

    @property
    def tested(self) -> list[str]:
        return [n for n in self.names if n not in self.excluded]

    def with_missing(self) -> np.ndarray:
        """The matrix with NaN where values were filled, for tests that delete missing values themselves."""
        return np.where(self.missing, np.nan, self.matrix)


def encode_for_ci(frame: pd.DataFrame, schema: TableSchema) -> CIData:
    """Encode every node of ``frame`` (features then label) as float64, missing values filled."""
    columns, kinds, masks, imputed = [], [], [], {}
    for feature in schema.features:
        if feature.kind == "numeric":
            values = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(np.float64)
            values = np.where(np.isfinite(values), values, np.nan)
            fill = np.nanmedian(values) if np.isfinite(values).any() else 0.0
        else:
            codes = pd.Categorical(frame[feature.name], categories=list(feature.levels)).codes
            values = np.where(codes < 0, np.nan, codes).astype(np.float64)
            observed = values[np.isfinite(values)]
            fill = float(np.bincount(observed.astype(int)).argmax()) if observed.size else 0.0
        mask = np.isnan(values)
        if mask.any():
            imputed[feature.name] = int(mask.sum())
            values = np.where(mask, fill, values)
        columns.append(values)
        masks.append(mask)
        kinds.append(feature.kind)
    columns.append(schema.encode_labels(frame).astype(np.float64))
    masks.append(np.zeros(len(frame), dtype=bool))
    kinds.append("categorical")
    return CIData(np.stack(columns, axis=1), schema.names + [schema.target], kinds, np.stack(masks, axis=1), imputed)


def find_degenerate_columns(matrix: np.ndarray, names: list[str], first: str) -> dict[str, dict]:
    """Constant and linearly determined columns of ``matrix``, examined ``first`` then in order.

    Returns ``{name: {"reason": "constant" | "duplicate" | "collinear", "determined_by": [...]}}``.
    """
    order = sorted(range(len(names)), key=lambda i: (names[i] != first, i))
    excluded: dict[str, dict] = {}
    kept: list[int] = []
    spread = matrix.std(axis=0)
    for i in order:
        if spread[i] <= 1e-12 * max(1.0, np.abs(matrix[:, i]).max(initial=0.0)):
            excluded[names[i]] = {"reason": "constant", "determined_by": []}
            continue
        if kept:
            determined_by = _linear_determinants(matrix, kept, i, spread)
            if determined_by is not None:
                reason = "duplicate" if len(determined_by) == 1 else "collinear"
                excluded[names[i]] = {"reason": reason, "determined_by": [names[j] for j in determined_by]}
                continue
        kept.append(i)
    return excluded


def _linear_determinants(matrix: np.ndarray, kept: list[int], column: int, spread: np.ndarray) -> list[int] | None:
    """The kept columns that determine ``column`` linearly, or None when it has its own variance."""
    mean = matrix.mean(axis=0)
    basis = (matrix[:, kept] - mean[kept]) / spread[kept]
    target = (matrix[:, column] - mean[column]) / spread[column]
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    residual = target - basis @ coef
    if residual.var() >= COLLINEAR_RESIDUAL_SHARE:
        return None
    determinants = [kept[j] for j in np.flatnonzero(np.abs(coef) > DETERMINANT_MIN_COEF)]
    return determinants or None


def quantile_bins(values: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Codes 0..k-1 of up to ``n_bins`` equal-frequency bins: the discrete tests need few levels."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(np.float64)
