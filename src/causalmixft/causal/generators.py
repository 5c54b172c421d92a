"""The generator interface every synthetic-data method implements, and the CausalMixFT generator.

A generator is fitted on the real train rows and then draws raw rows with the schema's columns;
:func:`causalmixft.causal.sample.sample_synthetic` turns any generator's raw draws into nested,
schema-cast samples, and :func:`causalmixft.causal.fidelity.fidelity_report` scores them. The
baseline generators (CTGAN, TabEBM, SMOTE-NC, random- and empty-DAG controls) are the modules of
:mod:`causalmixft.baselines`, registered in :data:`GENERATORS` under their names (docs/baselines.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Protocol, runtime_checkable

import pandas as pd

from causalmixft.baselines import names as _baseline_names
from causalmixft.causal.scm import FittedSCM, fit_scm
from causalmixft.data.schema import TableSchema
from causalmixft.seeding import derive_seed

if TYPE_CHECKING:
    from causalmixft.causal.discover import DiscoveryResult, DiscoverySettings


@runtime_checkable
class Generator(Protocol):
    name: str

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "Generator":
        """Learn from the real train rows (features and ``target``, schema dtypes)."""

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` raw rows with the schema's columns; they may hold values the schema rejects."""

    def report(self) -> dict:
        """What was fitted, as plain JSON-able data."""


class CausalMixFTGenerator:
    """PC/FCI discovery -> DAG -> dowhy SCM; samples are draws from the SCM."""

    name = "causalmixft"

    def __init__(self, discovery: DiscoverySettings | Mapping | None = None, quality: str = "fast", dataset: str = ""):
        self.discovery = discovery  # settings, their config mapping, or None for the defaults
        self.quality = quality
        self.dataset = dataset
        self.discovery_result: DiscoveryResult | None = None
        self.scm: FittedSCM | None = None

    @classmethod
    def from_fitted(cls, scm: FittedSCM) -> "CausalMixFTGenerator":
        """A generator around an SCM fitted earlier (the workflow fits and samples in separate jobs)."""
        generator = cls(quality=scm.quality, dataset=scm.schema.dataset)
        generator.scm = scm
        return generator

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "CausalMixFTGenerator":
        # Imported here: discovery pulls in causal-learn (about a second), which the sampling
        # jobs, holding an already fitted SCM, never need.
        from causalmixft.causal.discover import DiscoverySettings, discover_dag

        dataset = self.dataset or schema.dataset
        settings = (
            self.discovery if isinstance(self.discovery, DiscoverySettings) else DiscoverySettings.from_config(self.discovery)
        )
        self.discovery_result = discover_dag(train, schema, settings, derive_seed(seed, "discover"), dataset)
        self.scm = fit_scm(train, schema, self.discovery_result.dag, self.quality, derive_seed(seed, "fit"), dataset)
        return self

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        if self.scm is None:
            raise RuntimeError("CausalMixFTGenerator.sample called before fit")
        return self.scm.sample(n, seed)

    def report(self) -> dict:
        return {
            "generator": self.name,
            "discovery": None if self.discovery_result is None else self.discovery_result.to_json(),
            "scm": None if self.scm is None else self.scm.report(),
        }


def _baseline(name: str) -> Callable[..., Generator]:
    """A factory that imports the baseline module ``causalmixft.baselines.<name>`` on first use."""

    def factory(**options) -> Generator:
        from causalmixft import baselines

        return baselines.generator_class(name)(**options)

    factory.__name__ = f"make_{name}"
    return factory


# CausalMixFT, plus one entry per module of causalmixft.baselines (CTGAN, TabEBM, SMOTE, DAG controls).
GENERATORS: dict[str, Callable[..., Generator]] = {"causalmixft": CausalMixFTGenerator}
GENERATORS.update({name: _baseline(name) for name in _baseline_names()})


def make_generator(name: str, **options) -> Generator:
    try:
        factory = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; known: {sorted(GENERATORS)}") from None
    return factory(**options)
