"""Causal control: no structure among the features. Each feature is drawn independently from its
empirical train marginal, and the label from a classifier on all features.

That is the DAG in which every feature is a parent of the label and no feature has a parent,
fitted with :func:`causalmixft.causal.scm.fit_scm` at the config's ``scm.quality`` (root
features: dowhy's ``EmpiricalDistribution``; the label: a ``ClassifierFCM``). Against CausalMixFT
it shows what the discovered feature-feature edges add beyond "right marginals, right label
model"; against scm_randomdag, what a wrong structure costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import pandas as pd

from causalmixft.baselines.common import settings
from causalmixft.data.schema import TableSchema
from causalmixft.seeding import derive_seed

NEEDS = ("scm_quality",)


@dataclass(frozen=True)
class EmptyDagSettings:
    """No options: the SCM quality comes from scm.quality."""


def empty_dag(features: list[str], target: str) -> nx.DiGraph:
    """Every feature a parent of ``target``; no other edge."""
    graph = nx.DiGraph()
    graph.add_nodes_from([*features, target])
    graph.add_edges_from((name, target) for name in features)
    return graph


class EmptyDagGenerator:
    name = "scm_emptydag"

    def __init__(self, dataset: str = "", quality: str = "fast", **options):
        self.settings = settings(EmptyDagSettings, options, self.name)
        self.dataset = dataset
        self.quality = quality
        self.dag: nx.DiGraph | None = None
        self.scm = None

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "EmptyDagGenerator":
        from causalmixft.causal.scm import fit_scm

        self.dag = empty_dag(schema.names, schema.target)
        dataset = self.dataset or schema.dataset or "?"
        self.scm = fit_scm(train, schema, self.dag, self.quality, derive_seed(seed, "fit"), dataset)
        return self

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        if self.scm is None:
            raise RuntimeError("EmptyDagGenerator.sample called before fit")
        return self.scm.sample(n, seed)

    def report(self) -> dict:
        return {"generator": self.name, "scm": None if self.scm is None else self.scm.report()}


GENERATOR = EmptyDagGenerator
