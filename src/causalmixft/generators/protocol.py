"""The interface every synthetic-data generator implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd

from causalmixft.data.schema import TableSchema


@runtime_checkable
class Generator(Protocol):
    """Fitted on the real train rows, then draws raw rows with the schema's columns.

    :func:`causalmixft.generators.draw.sample_synthetic` turns any generator's raw draws into
    nested, schema-cast samples; :func:`causalmixft.generators.fidelity.fidelity_report` scores them.
    """

    name: str

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "Generator":
        """Learn from the real train rows (features and ``target``, schema dtypes)."""

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` raw rows with the schema's columns; they may hold values the schema rejects."""

    def report(self) -> dict:
        """What was fitted, as plain JSON-able data."""
