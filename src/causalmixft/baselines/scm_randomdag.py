"""Causal control: the same SCM fitting as CausalMixFT, on a random DAG instead of the discovered one.

The random DAG has the discovered DAG's nodes (every feature and the label) and as many edges
(``dag.number_of_edges()`` of ``results/causal/{dataset}/fold{fold}/dag.pkl``). A seeded random
permutation of the nodes is the topological order; the edges are a seeded uniform choice among
the node pairs that point forward in it, so the graph is acyclic by construction (and when the
discovered DAG has more edges than the order allows, which cannot happen for a DAG on the same
nodes, every forward pair is taken). The SCM is :func:`causalmixft.causal.scm.fit_scm` with the
config's ``scm.quality``, exactly as for CausalMixFT; the comparison isolates the structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from causalmixft.baselines.common import settings
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.seeding import derive_seed

NEEDS = ("dag", "scm_quality")
STAGE = "fit"


@dataclass(frozen=True)
class RandomDagSettings:
    """No options: the edge count comes from the discovered DAG, the SCM quality from scm.quality."""


def random_dag(nodes: list[str], n_edges: int, seed: int) -> nx.DiGraph:
    """A DAG on ``nodes`` with ``n_edges`` edges (at most every forward pair of a random order)."""
    rng = np.random.default_rng(seed)
    order = [nodes[i] for i in rng.permutation(len(nodes))]
    forward = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    chosen = np.sort(rng.choice(len(forward), size=min(int(n_edges), len(forward)), replace=False))
    graph = nx.DiGraph(order=order)
    graph.add_nodes_from(nodes)
    graph.add_edges_from(forward[i] for i in chosen)
    return graph


class RandomDagGenerator:
    name = "scm_randomdag"

    def __init__(self, dataset: str = "", dag: nx.DiGraph | None = None, quality: str = "fast", **options):
        self.settings = settings(RandomDagSettings, options, self.name)
        self.dataset = dataset
        self.reference = dag
        self.quality = quality
        self.dag: nx.DiGraph | None = None
        self.scm = None

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "RandomDagGenerator":
        from causalmixft.causal.scm import fit_scm

        dataset = self.dataset or schema.dataset or "?"
        if self.reference is None:
            raise StageError(STAGE, dataset, "scm_randomdag needs the discovered DAG for its edge count")
        nodes = [*schema.names, schema.target]
        if set(self.reference.nodes) != set(nodes):
            raise StageError(STAGE, dataset, "the discovered DAG's nodes are not the table's columns")
        self.dag = random_dag(nodes, self.reference.number_of_edges(), derive_seed(seed, "dag"))
        self.scm = fit_scm(train, schema, self.dag, self.quality, derive_seed(seed, "fit"), dataset)
        return self

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        if self.scm is None:
            raise RuntimeError("RandomDagGenerator.sample called before fit")
        return self.scm.sample(n, seed)

    def report(self) -> dict:
        return {
            "generator": self.name,
            "reference_edges": None if self.reference is None else self.reference.number_of_edges(),
            "order": None if self.dag is None else self.dag.graph["order"],
            "edges": None if self.dag is None else [list(e) for e in self.dag.edges],
            "scm": None if self.scm is None else self.scm.report(),
        }


GENERATOR = RandomDagGenerator
