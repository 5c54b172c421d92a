"""A 300-feature table passes through the column-by-column steps without pandas' fragmentation
PerformanceWarning (it filled job logs with ~1,600 lines: one DataFrame insert per column)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from causalmixft.data.impute import fill_missing
from causalmixft.generators.cast import ObservedDomain, cast_to_schema
from causalmixft.data.schema import Feature, TableSchema

N_FEATURES = 300


@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(0)
    data = {f"x{i}": rng.normal(size=40) for i in range(N_FEATURES - 1)}
    data["c"] = rng.choice(["a", "b"], size=40).astype(object)
    data["target"] = rng.choice(["0", "1"], size=40)
    frame = pd.DataFrame(data)
    frame.loc[3, "x5"] = np.nan
    features = tuple(Feature(f"x{i}", "numeric") for i in range(N_FEATURES - 1)) + (Feature("c", "categorical", False, ("a", "b")),)
    schema = TableSchema(features=features, classes=("0", "1"), target="target")
    return frame, schema


@pytest.mark.parametrize(
    "step",
    [
        lambda frame, schema: schema.cast(frame),
        lambda frame, schema: cast_to_schema(frame, schema, ObservedDomain.from_train(frame, schema)),
        lambda frame, schema: fill_missing(frame, schema),
    ],
    ids=["TableSchema.cast", "cast_to_schema", "fill_missing"],
)
def test_a_wide_table_passes_without_performance_warnings(wide, step):
    frame, schema = wide
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        result = step(frame, schema)
    out = result[0] if isinstance(result, tuple) else result
    assert list(out.columns) == schema.names + ["target"]
    assert out.shape[0] > 0
