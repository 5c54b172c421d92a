"""Input checks shared by the causal stages: bad tables fail here, with a StageError, not deep in a library."""

from __future__ import annotations

import pandas as pd

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError


def check_train_table(frame: pd.DataFrame, schema: TableSchema, stage: str, dataset: str, min_rows: int = 2) -> None:
    """The train rows must have the schema's columns, enough rows, and at least two observed classes."""
    expected = schema.names + [schema.target]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise StageError(stage, dataset, f"train table lacks the schema's columns {missing[:5]}")
    if len(frame) < min_rows:
        raise StageError(stage, dataset, f"needs at least {min_rows} train rows, got {len(frame)}")
    labels = frame[schema.target]
    if labels.isna().any():
        raise StageError(stage, dataset, f"{int(labels.isna().sum())} train rows have no label")
    unknown = sorted(set(labels.astype(str)) - set(schema.classes))
    if unknown:
        raise StageError(stage, dataset, f"train labels {unknown[:5]} are not among the schema's classes")
    if labels.astype(str).nunique() < 2:
        raise StageError(stage, dataset, "the train rows hold a single class; a classifier needs at least two")
