"""The study being aggregated, and the helpers every table shares.

Averaging always goes replicates -> folds -> datasets: the mean over a fold's fine-tuning
replicates, then the mean over folds, then across datasets (median, quartiles, means with
bootstrap intervals, ranks), so a dataset with more folds does not weigh more than one with fewer.

Only two method names have a fixed role, both parameters of :class:`Study`: the reference
(``zeroshot``), against which improvements are normalised, and the baseline (``finetune``),
the n=0 point of every method that trains on real rows plus synthetic rows. A purely synthetic
method's n=0 point is the reference: no real rows and no synthetic rows leave nothing to
fine-tune on, i.e. the pre-trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

# A run of one real budget: the aggregate analyses each budget on its own (report.aggregate_results).
RunKey = tuple[str, str, int, int]  # (method, dataset, fold, size)
from causalmixft.metrics import HIGHER_IS_BETTER

ALL = "all"  # the group of every dataset, always reported first
# What a table says instead of an interval or a test over fewer than Study.min_datasets datasets.
TOO_FEW = "too few datasets"
SPREAD_COLUMNS = ["n_datasets", "median", "q25", "q75", "iqr", "min", "max"]


@dataclass(frozen=True)
class Study:
    """What the aggregate stage needs to know about the experiment besides the run files."""

    expected: tuple[RunKey, ...]  # every (method, dataset, fold, size) the config asks for
    methods: tuple[str, ...]  # display order (the config's order)
    methods_with_real: frozenset[str]  # methods whose training pool contains the real train rows
    size_dependent: frozenset[str]  # methods that run once per synthetic size > 0
    reference: str = "zeroshot"
    baseline: str = "finetune"
    metrics: tuple[str, ...] = ("roc_auc", "accuracy")
    dataset_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alpha: float = 0.05
    # no interval or test over fewer datasets (the config's analysis.min_datasets)
    min_datasets: int = 5

    @classmethod
    def from_params(
        cls,
        expected: Iterable[Iterable],
        methods_with_real: Iterable[str],
        size_dependent: Iterable[str],
        dataset_groups: Mapping[str, Iterable[str]] | None = None,
        metrics: Iterable[str] = ("roc_auc", "accuracy"),
        **options,
    ) -> "Study":
        """Build from plain data (Snakemake params); the method order is that of ``expected``."""
        grid = [(str(m), str(d), int(f), int(s)) for m, d, f, s in expected]
        methods = tuple(dict.fromkeys(key[0] for key in grid))
        groups = {str(name): tuple(sorted(map(str, members))) for name, members in (dataset_groups or {}).items()}
        return cls(
            expected=tuple(sorted(set(grid))),
            methods=methods,
            methods_with_real=frozenset(methods_with_real),
            size_dependent=frozenset(size_dependent),
            dataset_groups=groups,
            metrics=tuple(metrics),
            **options,
        )

    def __post_init__(self):
        unknown = [m for m in self.metrics if m not in HIGHER_IS_BETTER]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: {sorted(HIGHER_IS_BETTER)}")
        if ALL in self.dataset_groups:
            raise ValueError(f"dataset group name {ALL!r} is reserved for every dataset")
        if self.reference not in self.methods:
            raise ValueError(f"the reference method {self.reference!r} is not in the expected grid")
        fixed = {self.reference, self.baseline} & set(self.size_dependent)
        if fixed:
            raise ValueError(f"{sorted(fixed)} cannot be size-dependent: they are the n=0 points")

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(sorted({key[1] for key in self.expected}))

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        return {ALL: self.datasets, **self.dataset_groups}

    @property
    def curve_methods(self) -> tuple[str, ...]:
        """Size-dependent methods in display order: each has a scaling curve."""
        return tuple(m for m in self.methods if m in self.size_dependent)

    def configurations(self) -> list[tuple[str, int]]:
        """(method, size) pairs of the grid in display order."""
        pairs = {(key[0], key[3]) for key in self.expected}
        return sorted(pairs, key=lambda pair: (self.methods.index(pair[0]), pair[1]))

    def anchor(self, method: str) -> str:
        """The method whose runs are the n=0 point of ``method``'s scaling curve."""
        return self.baseline if method in self.methods_with_real else self.reference

    def label(self, method: str, size: int) -> str:
        return f"{method} n={size}" if method in self.size_dependent else method


def spread(values: Iterable[float]) -> dict[str, float]:
    """Count, median, quartiles (linear interpolation), IQR, min and max of the finite values."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"n_datasets": 0, **{key: np.nan for key in SPREAD_COLUMNS[1:]}}
    q25, median, q75 = np.percentile(v, [25, 50, 75])
    return {
        "n_datasets": len(v),
        "median": median,
        "q25": q25,
        "q75": q75,
        "iqr": q75 - q25,
        "min": v.min(),
        "max": v.max(),
    }


SORT_KEYS = ("group", "metric", "selection", "split", "method", "size", "dataset", "fold", "competitor")


def ordered(frame: pd.DataFrame, study: Study, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Sort rows by ``keys`` (default: those of SORT_KEYS present), in display order, not alphabetically.

    Groups, metrics, selections, splits and methods follow the study's order; the pooled size
    "all" comes before the individual sizes; other columns sort by value.
    """
    orders = {
        "group": list(study.groups),
        "metric": list(study.metrics),
        "selection": ["per_size", "val_chosen"],
        "split": ["val", "test"],
        "method": list(study.methods),
    }
    keys = [c for c in SORT_KEYS if c in frame] if keys is None else list(keys)

    def position(column: pd.Series) -> pd.Series:
        if column.name in orders:
            order = {value: i for i, value in enumerate(orders[column.name])}
            return column.map(lambda value: order.get(value, len(order)))
        if column.name == "size":
            return column.map(lambda value: -1 if value == ALL else int(value))
        return column

    if frame.empty or not keys:
        return frame.reset_index(drop=True)
    return frame.sort_values(keys, key=position, kind="mergesort").reset_index(drop=True)


def replicate_scores(long: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Selected-step scores of the study's metrics per fine-tuning replicate:
    method, dataset, fold, size, replicate, split, metric, value."""
    columns = ["method", "dataset", "fold", "size", "replicate", "split", "metric", "value"]
    return long.loc[long["metric"].isin(study.metrics), columns].reset_index(drop=True)


def fold_scores(long: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Replicate means of the selected-step scores (runs -> replicates, the first level of
    averaging): method, dataset, fold, size, split, metric, value."""
    keys = ["method", "dataset", "fold", "size", "split", "metric"]
    scores = replicate_scores(long, study)
    return scores.groupby(keys, sort=True)["value"].mean().reset_index()[[*keys, "value"]]


def dataset_means(scores: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """Mean over folds per (method, size, dataset, split, metric), with the number of finite folds."""
    keys = [c for c in ("method", "size", "dataset", "split", "metric") if c in scores]
    grouped = scores.groupby(keys, sort=True)[value]
    return grouped.agg(**{value: "mean", "n_folds": "count"}).reset_index()


def wide_splits(means: pd.DataFrame) -> pd.DataFrame:
    """Fold-mean scores with val and test side by side: method, size, dataset, metric, val, test."""
    wide = means.pivot_table(
        index=["method", "size", "dataset", "metric"], columns="split", values="value", aggfunc="first"
    )
    wide = wide.reindex(columns=["val", "test"]).reset_index()
    wide.columns.name = None
    return wide


def quantile(values: np.ndarray, q: float) -> float:
    """Percentile ``q`` of the finite values (NaN when there are none)."""
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if len(finite) else np.nan


def finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else np.nan
