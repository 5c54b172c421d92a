"""SMOTE-NC: new rows interpolated between a real train row and one of its same-class neighbours.

imbalanced-learn's ``SMOTENC`` for mixed tables (numeric values interpolated, categorical values
the most frequent among the neighbours), ``SMOTE`` when every feature is numeric and ``SMOTEN``
when every feature is categorical. SMOTE is an oversampler: for n rows, each class c gets its
share of n (train class proportions, largest remainders), and one ``fit_resample`` call per class
asks for ``count_c + n_c`` rows of c; only the appended rows are kept. A class with fewer than
``k_neighbors + 1`` rows interpolates among all its rows (k reduced to its rows minus one); a
class with a single row has nothing to interpolate with, and the generator fails with a
:class:`StageError` naming the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalmixft.baselines.common import allocate, class_shares, settings
from causalmixft.data.impute import fill_missing
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.seeding import derive_seed

NEEDS: tuple[str, ...] = ()
STAGE = "fit"


@dataclass(frozen=True)
class SmoteSettings:
    k_neighbors: int = 5  # neighbours per class (imbalanced-learn's default), reduced for small classes

    def __post_init__(self):
        if int(self.k_neighbors) < 1:
            raise ValueError(f"smote: k_neighbors must be >= 1, got {self.k_neighbors}")


class SmoteGenerator:
    name = "smote"

    def __init__(self, dataset: str = "", **options):
        self.settings = settings(SmoteSettings, options, self.name)
        self.dataset = dataset
        self.schema: TableSchema | None = None
        self.features: pd.DataFrame | None = None
        self.labels: pd.Series | None = None
        self.shares: dict[str, float] = {}
        self.k: dict[str, int] = {}
        self.variant = ""
        self.fills: dict = {}

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "SmoteGenerator":
        dataset = self.dataset or schema.dataset or "?"
        if not schema.features:
            raise StageError(STAGE, dataset, "smote needs at least one feature to interpolate")
        rows, self.fills = fill_missing(train, schema)
        counts = rows[schema.target].value_counts().sort_index()
        single = sorted(str(c) for c, n in counts.items() if n < 2)
        if single:
            raise StageError(
                STAGE,
                dataset,
                f"smote interpolates between train rows of the same class and needs at least 2 rows "
                f"per class; class {', '.join(repr(c) for c in single)} has 1 train row "
                f"(k_neighbors={self.settings.k_neighbors})",
            )
        self.schema = schema
        self.features = rows[schema.names]
        self.labels = rows[schema.target]
        self.shares = class_shares(self.labels)
        self.k = {str(c): min(int(self.settings.k_neighbors), int(n) - 1) for c, n in counts.items()}
        if not schema.categorical:
            self.variant = "SMOTE"
        elif not schema.numeric:
            self.variant = "SMOTEN"
        else:
            self.variant = "SMOTENC"
        return self

    def _sampler(self, k: int, strategy: dict, seed: int):
        from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC

        if self.variant == "SMOTE":
            return SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
        if self.variant == "SMOTEN":
            return SMOTEN(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
        return SMOTENC(self.schema.categorical, sampling_strategy=strategy, k_neighbors=k, random_state=seed)

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        if self.schema is None:
            raise RuntimeError("SmoteGenerator.sample called before fit")
        counts = self.labels.value_counts()
        frames = []
        for label, need in allocate(int(n), self.shares).items():
            if need == 0:
                continue
            strategy = {label: int(counts[label]) + need}
            sampler = self._sampler(self.k[label], strategy, derive_seed(seed, label) % (2**32))
            features, _ = sampler.fit_resample(self.features, self.labels)
            new = features.iloc[len(self.features) :].reset_index(drop=True)  # appended after the real rows
            frames.append(new.assign(**{self.schema.target: label}))
        if not frames:
            return pd.DataFrame(columns=[*self.schema.names, self.schema.target])
        rows = pd.concat(frames, ignore_index=True)
        order = np.random.default_rng(seed).permutation(len(rows))
        return rows.iloc[order].reset_index(drop=True)

    def report(self) -> dict:
        return {
            "generator": self.name,
            "variant": self.variant,
            "k_neighbors": self.settings.k_neighbors,
            "k_per_class": self.k,
            "class_shares": self.shares,
            "imputation": self.fills,
        }


GENERATOR = SmoteGenerator
