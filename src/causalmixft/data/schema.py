"""The table schema every stage agrees on, read from a prepared dataset's meta JSON.

A prepared table has its feature columns, then the label column ``target``. Numeric features
are float64 (NaN = missing); categorical features hold strings (NaN = missing) whose allowed
values are the schema's ``levels``; labels are strings from ``classes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TARGET = "target"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" or "categorical"
    integer: bool = False  # numeric and integer-valued in the source
    levels: tuple[str, ...] = ()  # categorical only, sorted

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": self.kind, "integer": self.integer}
        if self.kind == "categorical":
            out["levels"] = list(self.levels)
        return out


@dataclass(frozen=True)
class TableSchema:
    features: tuple[Feature, ...]
    classes: tuple[str, ...]
    dataset: str = ""
    target: str = TARGET
    _by_name: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_meta(cls, meta: dict) -> "TableSchema":
        features = tuple(
            Feature(f["name"], f["type"], bool(f.get("integer", False)), tuple(f.get("levels", ())))
            for f in meta["features"]
        )
        return cls(features, tuple(meta["classes"]), meta.get("dataset", ""))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def cast(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Columns in schema order with schema dtypes (float64 numeric, object strings)."""
        # Columns gathered first and framed once: one insert per column fragments a wide frame.
        out = {}
        for f in self.features:
            column = frame[f.name]
            if f.kind == "numeric":
                out[f.name] = pd.to_numeric(column, errors="coerce").astype("float64")
            else:
                # Missing stays NaN (a float, not np.nan itself after .where: test with isna), never
                # the string 'nan', which generators would learn as a level.
                out[f.name] = column.astype(object).where(column.notna(), np.nan).map(
                    lambda v: v if isinstance(v, str) or pd.isna(v) else str(v)
                )
        out[self.target] = frame[self.target].astype(str)
        return pd.DataFrame({name: column.to_numpy() for name, column in out.items()})

    def encode_features(self, frame: pd.DataFrame) -> np.ndarray:
        """Float32 matrix for a model: numeric values as they are, categoricals as level codes.

        Missing values and categorical values outside the schema's levels become NaN.
        """
        columns = []
        for f in self.features:
            if f.kind == "numeric":
                columns.append(pd.to_numeric(frame[f.name], errors="coerce").to_numpy(np.float64))
            else:
                codes = pd.Categorical(frame[f.name], categories=list(f.levels)).codes
                columns.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
        if not columns:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.stack(columns, axis=1).astype(np.float32)

    def encode_labels(self, frame_or_series) -> np.ndarray:
        labels = frame_or_series[self.target] if isinstance(frame_or_series, pd.DataFrame) else frame_or_series
        codes = pd.Categorical(labels.astype(str), categories=list(self.classes)).codes
        if (codes < 0).any():
            unknown = sorted(set(labels.astype(str)) - set(self.classes))
            raise ValueError(f"labels not in the schema's classes: {unknown[:5]}")
        return codes.astype(np.int64)

    def categorical_mask(self) -> np.ndarray:
        return np.array([f.kind == "categorical" for f in self.features], dtype=bool)
