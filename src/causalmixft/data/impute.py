"""Missing values filled for a generator that cannot model them (the SCM, SMOTE, CTGAN, TabEBM).

One rule for all of them, reported with the fills: numeric features take the train median (0.0
when nothing is observed), categorical features the most frequent train level (ties to the first
in sorted order; with nothing observed, the first schema level, else the placeholder
``"missing"``). Categorical values and labels come back as strings: dowhy tells a regressor from a
classifier by the values' Python type and would treat integer-coded classes as numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.data.schema import TableSchema


def fill_missing(train: pd.DataFrame, schema: TableSchema) -> tuple[pd.DataFrame, dict]:
    """Train rows without missing values, in schema order, and the fills used.

    The fills: feature -> ``{"missing": count, "fill": value, "rule": how it was chosen}``, for
    the features that had a missing value.
    """
    out = {}  # columns, framed once below (one insert per column fragments a wide frame)
    fills = {}
    for feature in schema.features:
        column = train[feature.name].reset_index(drop=True)
        if feature.kind == "numeric":
            values = pd.to_numeric(column, errors="coerce").astype("float64")
            values = values.where(np.isfinite(values))
            if values.notna().any():
                fill, rule = float(values.median()), "median"
            else:
                fill, rule = 0.0, "zero (no observed value)"
        else:
            values = column.astype(object).where(column.notna(), None).map(lambda v: v if v is None else str(v))
            observed = values.dropna()
            if len(observed):
                fill, rule = str(observed.value_counts().sort_index(kind="stable").idxmax()), "most frequent level"
            elif feature.levels:
                fill, rule = feature.levels[0], "first schema level (no observed value)"
            else:
                fill, rule = "missing", "placeholder (no observed value)"
        missing = int(values.isna().sum())
        if missing:
            fills[feature.name] = {"missing": missing, "fill": fill, "rule": rule}
            values = values.where(values.notna(), fill)
        out[feature.name] = values.astype("float64") if feature.kind == "numeric" else values.astype(object)
    out[schema.target] = train[schema.target].astype(str).to_numpy()
    return pd.DataFrame(out, index=range(len(train))), fills
