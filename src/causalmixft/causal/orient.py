"""From edge frequencies over several PC/FCI runs to one DAG, deterministically.

Procedure (also in ``docs/causal.md``):
1. Keep the pair {u, v} when at least one run has an edge between them and the share of runs that
   do is at least the threshold (threshold 0: any run; 1: every run).
2. Orient a kept pair u -> v when more runs voted u -> v than v -> u. A run votes u -> v when its
   edge has an arrowhead at v and none at u (``u --> v`` or ``u o-> v``); undirected, circle-circle
   and bidirected edges vote for no direction. Pairs with equal votes are left undecided.
3. While the voted edges contain a cycle, the weakest edge of the first cycle found (smallest vote
   margin, then smallest vote share, then latest in node order) loses its orientation: it stays in
   the graph as an undecided pair, so breaking a cycle never removes an adjacency.
4. Undecided pairs are oriented along one topological order of the voted edges; ties in that order
   go to the earlier node in the table's column order (features as in the schema, the label last).
   Every edge then points forward in one total order, so the result is acyclic by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass
class EdgeFrequencies:
    """Shares of discovery runs, per pair of nodes (index order = ``names``)."""

    names: list[str]
    runs: int
    adjacent: np.ndarray  # symmetric: share of runs with any edge between i and j
    directed: np.ndarray  # [i, j]: share of runs voting i -> j
    symmetric: np.ndarray  # symmetric: share of runs with an edge that votes for no direction

    @classmethod
    def from_counts(cls, names, runs, adjacent, directed, symmetric) -> "EdgeFrequencies":
        scale = 1.0 / max(runs, 1)
        return cls(list(names), runs, adjacent * scale, directed * scale, symmetric * scale)

    def probabilistic_adjacency(self) -> np.ndarray:
        """P[i, j]: the votes for i -> j plus half the undirected votes (rows+cols sum to adjacency)."""
        return self.directed + self.symmetric / 2.0

    def pairs(self) -> list[dict]:
        """Every pair seen adjacent in at least one run, for the JSON record."""
        out = []
        for i, j in zip(*np.triu_indices(len(self.names), k=1)):
            if self.adjacent[i, j] > 0:
                out.append(
                    {
                        "a": self.names[i],
                        "b": self.names[j],
                        "adjacent": float(self.adjacent[i, j]),
                        "a_to_b": float(self.directed[i, j]),
                        "b_to_a": float(self.directed[j, i]),
                        "undirected": float(self.symmetric[i, j]),
                    }
                )
        return out


@dataclass
class Orientation:
    dag: nx.DiGraph
    cycles_broken: list[list[str]]  # the edge (source, target) whose orientation each break removed


def orient_dag(freq: EdgeFrequencies, threshold: float) -> Orientation:
    names = freq.names
    position = {name: k for k, name in enumerate(names)}
    voted = nx.DiGraph()
    voted.add_nodes_from(names)
    undecided: list[tuple[int, int, str]] = []
    for i, j in zip(*np.triu_indices(len(names), k=1)):
        # A small tolerance so that, e.g., 1 of 2 runs (0.5) passes a 0.5 threshold despite round-off.
        if freq.adjacent[i, j] == 0 or freq.adjacent[i, j] < threshold - 1e-9:
            continue
        forward, backward = freq.directed[i, j], freq.directed[j, i]
        if forward > backward:
            voted.add_edge(names[i], names[j], margin=forward - backward, share=forward)
        elif backward > forward:
            voted.add_edge(names[j], names[i], margin=backward - forward, share=backward)
        else:
            undecided.append((i, j, "tie"))

    cycles_broken = []
    while True:
        try:
            cycle = nx.find_cycle(voted)
        except nx.NetworkXNoCycle:
            break
        u, v = min(
            ((u, v) for u, v, *_ in cycle),
            key=lambda e: (voted.edges[e]["margin"], voted.edges[e]["share"], -position[e[0]], -position[e[1]]),
        )
        voted.remove_edge(u, v)
        undecided.append((position[u], position[v], "cycle"))
        cycles_broken.append([u, v])

    rank = {node: k for k, node in enumerate(nx.lexicographical_topological_sort(voted, key=position.__getitem__))}
    dag = nx.DiGraph()
    dag.add_nodes_from(names)
    for u, v in sorted(voted.edges, key=lambda e: (position[e[0]], position[e[1]])):
        dag.add_edge(u, v, **_edge_record(freq, position[u], position[v], "voted"))
    for i, j, reason in undecided:
        u, v = (i, j) if rank[names[i]] < rank[names[j]] else (j, i)
        dag.add_edge(names[u], names[v], **_edge_record(freq, u, v, reason))
    return Orientation(dag, cycles_broken)


def _edge_record(freq: EdgeFrequencies, u: int, v: int, orientation: str) -> dict:
    return {
        "adjacent": float(freq.adjacent[u, v]),
        "forward": float(freq.directed[u, v]),
        "backward": float(freq.directed[v, u]),
        "undirected": float(freq.symmetric[u, v]),
        "orientation": orientation,
    }
