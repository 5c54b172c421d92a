"""Preparation: a raw table becomes a typed, cleaned table plus the meta every stage reads.

Rules (the ``missing_policy`` and feature list in the meta record what was done):

- Feature types: the columns the source declares categorical (a manifest entry, ARFF nominal
  attributes, OpenML's types) plus every non-numeric or boolean column are categorical. When
  the source declares nothing, types are inferred: non-numeric and boolean columns are
  categorical, and so are integer columns with at most ``max_integer_levels`` distinct values
  (0, the default, turns that rule off). Everything else is numeric.
- Numeric features are float64; ``integer`` is true when every observed value is a whole number.
- Categorical values are strings; whole-number floats lose their ``.0`` (1.0 -> "1").
- Labels are strings the same way; a missing label or a single class is an error, and so are
  more classes than the backbone tells apart (``max_classes``), before any later stage runs.
- A column typed categorical because some of its values are text although most are numbers
  (e.g. a stray "n/a") is kept as a categorical, with a warning in the log and in the meta's
  ``warnings``: it is usually a number column whose missing values the source spells out.
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


# A non-numeric column is reported as mixed when at least this share of its observed values read as numbers.
MIXED_NUMERIC_SHARE = 0.5
MIXED_EXAMPLES = 5  # text values quoted in the warning


def prepare_dataset(
    dataset: str, spec: Mapping[str, Any], cache_dir: str | os.PathLike = ".cache", max_classes: int | None = None
) -> tuple[pd.DataFrame, dict]:
    """Load one dataset from its config entry and prepare it (see :func:`prepare_table`)."""
    raw = load_source(dataset, spec, cache_dir)
    return prepare_table(
        dataset, raw, source=spec["source"], max_integer_levels=spec.get("max_integer_levels", 0), max_classes=max_classes
    )


def prepare_table(
    dataset: str, raw: RawTable, source: str, max_integer_levels: int = 0, max_classes: int | None = None
) -> tuple[pd.DataFrame, dict]:
    """The prepared table (features in source order, then ``target``) and its meta.

    ``max_classes``: the most classes the backbone tells apart (None: no limit); more is an error here
    rather than after splitting, discovery, fitting and sampling.
    """
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
    n_classes = labels.nunique()
    if max_classes is not None and n_classes > max_classes:
        raise fail(
            f"{n_classes} classes, more than the {max_classes} the backbone tells apart (max_classes of its "
            f"config.json); leave the dataset out, merge classes in the source, or use a backbone with more classes"
        )
    declared = set(raw.categorical) if raw.categorical is not None else None
    columns: dict[str, pd.Series] = {}
    features: list[Feature] = []
    dropped: list[str] = []
    warnings: list[dict] = []
    for name in names:
        if name == raw.target:
            continue
        column = frame[name]
        if _is_categorical(column, declared, name, max_integer_levels):
            values = _as_strings(column)
            feature = Feature(name, "categorical", levels=tuple(sorted(values.dropna().unique())))
            if declared is None or name not in declared:
                warnings += _mixed_column(dataset, name, values)
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
        "warnings": warnings,
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


def _mixed_column(dataset: str, name: str, values: pd.Series) -> list[dict]:
    """A warning (logged, and returned for the meta) when most of a text column's values are numbers."""
    observed = values.dropna()
    numeric = pd.to_numeric(observed, errors="coerce").notna()
    if not len(observed) or numeric.all() or numeric.mean() < MIXED_NUMERIC_SHARE:
        return []
    text = observed[~numeric]
    examples = sorted(text.unique(), key=lambda value: -int((text == value).sum()))[:MIXED_EXAMPLES]
    warning = {
        "column": name,
        "problem": "mostly numbers with some text: typed categorical",
        "numeric_share": round(float(numeric.mean()), 4),
        "text_values": int(len(text)),
        "text_examples": [str(value) for value in examples],
        "levels": int(observed.nunique()),
    }
    log.warning(
        "[%s] %s: column %r is mostly numbers (%.0f%% of its values) but %d values are text (%s), so it is "
        "categorical with %d levels; if the text means missing, clean the source or declare its types",
        STAGE, dataset, name, 100 * warning["numeric_share"], warning["text_values"],
        ", ".join(repr(v) for v in warning["text_examples"]), warning["levels"],
    )
    return [warning]


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
