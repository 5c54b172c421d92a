"""Preparation: a raw table becomes a typed, cleaned table plus the meta every stage reads.

Rules (the ``missing_policy`` and feature list in the meta record what was done):

- Feature types: the columns the source declares categorical (a manifest entry, ARFF nominal
  attributes, OpenML's types) plus every non-numeric or boolean column are categorical. When
  the source declares nothing, types are inferred: non-numeric and boolean columns are
  categorical, and so are integer columns with at most ``max_integer_levels`` distinct values
  (0, the default, turns that rule off). Everything else is numeric.
- Numeric features are float64; ``integer`` is true when every observed value is a whole number.
- Categorical values are strings; whole-number floats lose their ``.0`` (1.0 -> "1").
- Labels are strings the same way; a missing label or a single class is an error.
- Constant columns (one distinct value, missing counted as a value) are dropped and listed.
- Missing values are kept as NaN, never imputed, never used to drop rows; +-inf becomes NaN.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from causalmixft.data.schema import TARGET, Feature, TableSchema
from causalmixft.data.sources import STAGE, RawTable, load_source
from causalmixft.errors import StageError
from causalmixft.io import read_json, read_parquet, sha256_file, write_json, write_parquet

log = logging.getLogger(__name__)

MISSING_RULE = (
    "missing values are kept as NaN, never imputed, and no row is dropped for them: numeric NaN "
    "(+-inf also becomes NaN), categorical NaN (not one of the levels); a missing label is an error"
)


def prepare_dataset(
    dataset: str, spec: Mapping[str, Any], cache_dir: str | os.PathLike = ".cache"
) -> tuple[pd.DataFrame, dict]:
    """Load one dataset from its config entry and prepare it (see :func:`prepare_table`)."""
    raw = load_source(dataset, spec, cache_dir)
    return prepare_table(dataset, raw, source=spec["source"], max_integer_levels=spec.get("max_integer_levels", 0))


def prepare_table(dataset: str, raw: RawTable, source: str, max_integer_levels: int = 0) -> tuple[pd.DataFrame, dict]:
    """The prepared table (features in source order, then ``target``) and its meta."""
    frame = raw.frame

    def fail(problem: str) -> StageError:
        return StageError(STAGE, dataset, problem)

    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise fail(f"duplicate column names: {sorted({n for n in names if names.count(n) > 1})}")
    frame = frame.set_axis(names, axis=1)
    if raw.target not in frame.columns:
        raise fail(f"target column {raw.target!r} not found; columns are {names}")
    if raw.target != TARGET and TARGET in frame.columns:
        raise fail(f"feature column {TARGET!r} clashes with the name the label gets; rename it")
    if frame.empty:
        raise fail("the source has no rows")

    labels = _labels(frame[raw.target], fail)
    declared = set(raw.categorical) if raw.categorical is not None else None
    columns: dict[str, pd.Series] = {}
    features: list[Feature] = []
    dropped: list[str] = []
    for name in names:
        if name == raw.target:
            continue
        column = frame[name]
        if _is_categorical(column, declared, name, max_integer_levels):
            values = _as_strings(column)
            feature = Feature(name, "categorical", levels=tuple(sorted(values.dropna().unique())))
        else:
            values = column.astype("float64").replace([np.inf, -np.inf], np.nan)
            observed = values.dropna().to_numpy()
            feature = Feature(name, "numeric", integer=bool(observed.size and np.all(observed == np.round(observed))))
        if values.nunique(dropna=False) <= 1:
            dropped.append(name)
            continue
        columns[name] = values
        features.append(feature)
    if not features:
        raise fail("no feature column is left after dropping constant columns")

    table = pd.DataFrame(columns, index=frame.index)
    table[TARGET] = labels
    table = table.reset_index(drop=True)
    missing = {name: int(n) for name, n in table.drop(columns=TARGET).isna().sum().items() if n}
    counts = labels.value_counts()
    classes = sorted(counts.index)
    meta = {
        "dataset": dataset,
        "source": source,
        "source_sha256": sha256_file(raw.source_file),
        "target": TARGET,
        "original_target": raw.target,
        "classes": classes,
        "class_counts": {c: int(counts[c]) for c in classes},
        "features": [f.to_dict() for f in features],
        "n_rows": len(table),
        "n_features": len(features),
        "dropped_constant": dropped,
        "missing_policy": {"rule": MISSING_RULE, "missing_per_feature": missing},
    }
    n_categorical = sum(f.kind == "categorical" for f in features)
    log.info("%s: %d rows, %d features (%d categorical)", dataset, len(table), len(features), n_categorical)
    log.info("%s: classes %s, dropped constant %s, missing %s", dataset, meta["class_counts"], dropped, missing)
    return table, meta


def write_prepared(table: pd.DataFrame, meta: dict, table_path: str | os.PathLike, meta_path: str | os.PathLike) -> None:
    write_parquet(table_path, table)
    write_json(meta_path, meta)


def read_prepared(table_path: str | os.PathLike, meta_path: str | os.PathLike) -> tuple[pd.DataFrame, TableSchema, dict]:
    """A prepared table with schema dtypes restored (parquet returns missing strings as None)."""
    meta = read_json(meta_path)
    schema = TableSchema.from_meta(meta)
    return schema.cast(read_parquet(Path(table_path))), schema, meta


def _labels(column: pd.Series, fail) -> pd.Series:
    n_missing = int(column.isna().sum())
    if n_missing:
        raise fail(f"{n_missing} rows have a missing label (target column {column.name!r})")
    labels = _as_strings(column)
    if labels.nunique() < 2:
        raise fail(f"a single class {labels.iloc[0]!r}: classification needs at least two")
    return labels


def _is_categorical(column: pd.Series, declared: set[str] | None, name: str, max_integer_levels: int) -> bool:
    if ptypes.is_bool_dtype(column) or not ptypes.is_numeric_dtype(column):
        return True
    if declared is not None:
        return name in declared
    if max_integer_levels:
        observed = column.dropna().to_numpy(dtype="float64")
        return bool(np.all(observed == np.round(observed))) and len(np.unique(observed)) <= max_integer_levels
    return False


def _as_strings(column: pd.Series) -> pd.Series:
    """Values as strings, missing as NaN; whole-number floats without ``.0``."""

    def text(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return np.nan
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        if isinstance(value, bytes):
            return value.decode()
        return str(value)

    return column.astype(object).map(text).astype(object)
