"""The CausalMixFT generator: PC/FCI discovery -> DAG -> dowhy SCM, drawn from.

It implements :class:`causalmixft.generators.protocol.Generator` (structurally: no import of the
kit, which builds it by name in :mod:`causalmixft.generators.registry`). The workflow fits it in
two jobs (discover_dag, fit_scm) and samples the pickled :class:`FittedSCM` through
:meth:`CausalMixFTGenerator.from_fitted`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import pandas as pd

from causalmixft.causal.scm import FittedSCM, fit_scm
from causalmixft.data.schema import TableSchema
from causalmixft.seeding import derive_seed

if TYPE_CHECKING:
    from causalmixft.causal.discover import DiscoveryResult, DiscoverySettings


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
