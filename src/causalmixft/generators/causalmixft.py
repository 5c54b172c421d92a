"""The CausalMixFT generator: a dowhy SCM fitted on the fold's discovered DAG, drawn from.

A generator like every other (:mod:`causalmixft.generators.registry`): the workflow's
discover_dag rule writes the fold's DAG, fit_generator hands it over (``NEEDS``: ``"dag"`` and
``"scm_quality"``, as for its two controls ``scm_randomdag`` and ``scm_emptydag``), fits the SCM
and pickles the generator, and sample_generator samples it. Without a DAG (tests, benchmarks)
:meth:`CausalMixFTGenerator.fit` runs the PC/FCI discovery itself first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import networkx as nx
import pandas as pd

from causalmixft.data.schema import TableSchema
from causalmixft.seeding import derive_seed

if TYPE_CHECKING:
    from causalmixft.causal.discover import DiscoveryResult, DiscoverySettings
    from causalmixft.causal.scm import FittedSCM

NEEDS = ("dag", "scm_quality")


class CausalMixFTGenerator:
    """The discovered DAG -> dowhy SCM; samples are draws from the SCM."""

    name = "causalmixft"

    def __init__(
        self,
        dataset: str = "",
        dag: nx.DiGraph | None = None,
        quality: str = "fast",
        discovery: DiscoverySettings | Mapping | None = None,
    ):
        self.dataset = dataset
        self.dag = dag  # the fold's discovered DAG; None: discover it in fit
        self.quality = quality
        self.discovery = discovery  # settings, their config mapping, or None for the defaults
        self.discovery_result: DiscoveryResult | None = None
        self.scm: FittedSCM | None = None

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "CausalMixFTGenerator":
        """Fit the SCM on the DAG with ``seed``; without a DAG, discover it first (seed ``derive_seed(seed, "discover")``)."""
        # Imported here: dowhy and causal-learn take seconds, which listing the generators at
        # workflow parse time (NEEDS) does not pay.
        from causalmixft.causal.scm import fit_scm

        dataset = self.dataset or schema.dataset or "?"
        if self.dag is None:
            from causalmixft.causal.discover import DiscoverySettings, discover_dag

            settings = (
                self.discovery
                if isinstance(self.discovery, DiscoverySettings)
                else DiscoverySettings.from_config(self.discovery)
            )
            self.discovery_result = discover_dag(train, schema, settings, derive_seed(seed, "discover"), dataset)
            self.dag = self.discovery_result.dag
        self.scm = fit_scm(train, schema, self.dag, self.quality, seed, dataset)
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


GENERATOR = CausalMixFTGenerator
