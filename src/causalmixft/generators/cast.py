"""Synthetic rows cast back to the split's schema, with invalid rows dropped and counted.

Rules (per column, from what the real train rows show):
- numeric: coerced to float; optionally clipped to the observed [min, max]; integer-valued columns
  rounded (after clipping, so an integer range stays integer);
- categorical and label: strings; a value not observed in the train rows makes the row invalid;
- a row with a missing or non-finite value is invalid;
- a column with no observed value at all in the train rows is all-missing in the real data, so
  its synthetic values are set missing too (not counted as invalid: that is the faithful copy).
Invalid rows are dropped; the counts say why (a row can count under both reasons).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalmixft.data.schema import TableSchema


@dataclass(frozen=True)
class ObservedDomain:
    """Ranges and levels seen in the real train rows."""

    ranges: dict[str, tuple[float, float]]  # numeric columns with at least one finite value
    levels: dict[str, frozenset[str]]  # categorical columns and the label
    empty: frozenset[str]  # columns with no observed value

    @classmethod
    def from_train(cls, train: pd.DataFrame, schema: TableSchema) -> "ObservedDomain":
        ranges, levels, empty = {}, {}, set()
        for feature in schema.features:
            column = train[feature.name]
            if feature.kind == "numeric":
                values = pd.to_numeric(column, errors="coerce")
                values = values[np.isfinite(values)]
                if len(values):
                    ranges[feature.name] = (float(values.min()), float(values.max()))
                else:
                    empty.add(feature.name)
            else:
                observed = {str(v) for v in column.dropna()}
                allowed = observed & set(feature.levels) if feature.levels else observed
                if allowed:
                    levels[feature.name] = frozenset(allowed)
                else:
                    empty.add(feature.name)
        levels[schema.target] = frozenset(str(v) for v in train[schema.target].dropna())
        return cls(ranges, levels, frozenset(empty))


def cast_to_schema(
    raw: pd.DataFrame, schema: TableSchema, domain: ObservedDomain, clip_to_observed: bool = True
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Valid rows of ``raw`` in schema order and dtypes, and the counts of dropped rows by reason."""
    missing_columns = [c for c in schema.names + [schema.target] if c not in raw.columns]
    if missing_columns:
        raise ValueError(f"generator output lacks the columns {missing_columns[:5]}")
    n = len(raw)
    out = {}  # columns, framed once below (one insert per column fragments a wide frame)
    non_finite = np.zeros(n, dtype=bool)
    unknown = np.zeros(n, dtype=bool)
    for feature in schema.features:
        column = raw[feature.name].reset_index(drop=True)
        if feature.name in domain.empty:
            out[feature.name] = np.full(n, np.nan) if feature.kind == "numeric" else np.full(n, np.nan, dtype=object)
            continue
        if feature.kind == "numeric":
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            non_finite |= bad
            if clip_to_observed:
                low, high = domain.ranges[feature.name]
                values = np.clip(values, low, high)
            if feature.integer:
                values = np.round(values)
            out[feature.name] = values
        else:
            strings, is_missing, is_unknown = _as_levels(column, domain.levels[feature.name])
            non_finite |= is_missing
            unknown |= is_unknown
            out[feature.name] = strings
    labels, is_missing, is_unknown = _as_levels(raw[schema.target].reset_index(drop=True), domain.levels[schema.target])
    non_finite |= is_missing
    unknown |= is_unknown
    out[schema.target] = labels
    out = pd.DataFrame(out, index=range(n))
    valid = ~(non_finite | unknown)
    dropped = {"non_finite": int(non_finite.sum()), "unknown_level": int(unknown.sum()), "total": int((~valid).sum())}
    return schema.cast(out[valid]), dropped


def _as_levels(column: pd.Series, allowed: frozenset[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    is_missing = column.isna().to_numpy()
    strings = np.array([None if m else _level_string(v, allowed) for v, m in zip(column, is_missing)], dtype=object)
    is_unknown = np.array([(not m) and s not in allowed for s, m in zip(strings, is_missing)], dtype=bool)
    return strings, is_missing, is_unknown


def _level_string(value, allowed: frozenset[str]) -> str:
    text = str(value)
    # A generator working on numbers may emit 1.0 for the level "1".
    if text not in allowed and isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return text
