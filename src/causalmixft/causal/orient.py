"""From edge frequencies over several PC/FCI runs to one DAG, deterministically.

Procedure (also in ``docs/causal.md``, section 3):
1. Keep the pair {u, v} when at least one run has an edge between them and the share of runs that
   do is at least the threshold (threshold 0: any run; 1: every run).
2. Orient a kept pair u -> v when more runs voted u -> v than v -> u (``voted``). A run votes
   u -> v when its edge has an arrowhead at v and none at u (``u --> v`` or FCI's ``u o-> v``);
   undirected, circle-circle and bidirected edges vote for no direction (a bidirected edge has an
   arrowhead at both ends: it speaks against either direction equally; its share is recorded as
   ``bidirected``, FCI's sign of a hidden common cause). Pairs with equal votes
   stay undirected: the result is a partially directed graph (PDAG).
3. While the voted edges contain a cycle, the weakest edge of the first cycle found (smallest vote
   margin, then smallest vote share, then latest in node order) loses its orientation and becomes
   undirected; breaking a cycle never removes an adjacency (``cycles_broken``).
4. Meek's rules R1-R4 orient the undirected edges that the voted ones compel (``meek``); an
   orientation that would make a directed cycle or a new unshielded collider (only possible when
   the votes contradict each other) is skipped and left to the next steps.
5. The rest is a consistent extension (Dor and Tarsi, 1992): repeatedly take a node x with no
   outgoing edge whose undirected neighbours are each adjacent to all of x's other neighbours,
   point its undirected edges into x (``extension``) and remove x. This adds no unshielded
   collider and no cycle. Among such nodes the label is taken first, then the features from the
   last column to the first: the label's remaining undirected edges point into it as soon as that
   creates no collider, so the SCM models the label by a classifier on those neighbours (the
   conditional that matters for classification); the edges peeled before that make it a cause; between
   features, the earlier column becomes the cause. Markov-equivalent DAGs fit the same
   distribution, so this choice is a convention, not a claim about the data.
6. If no node qualifies, the voted graph has no consistent extension (contradicting votes, e.g.
   an undirected chordless cycle, or PC colliders that close a cycle). The node whose turn as a
   sink breaks the fewest votes is taken anyway (``forced``): each new unshielded collider breaks
   the runs' "no collider here" and each reversed directed edge (``voted`` or ``meek``) breaks its
   direction; ties go to the least total adjacency share on those edges, then the order of
   step 5. ``new_colliders`` and ``reversed_edges`` record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

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
    # symmetric: share of runs with a bidirected edge (FCI's sign of a hidden common cause); part of ``symmetric``
    bidirected: np.ndarray | None = None

    def __post_init__(self):
        if self.bidirected is None:
            self.bidirected = np.zeros_like(self.adjacent)

    @classmethod
    def from_counts(cls, names, runs, adjacent, directed, symmetric, bidirected=None) -> "EdgeFrequencies":
        scale = 1.0 / max(runs, 1)
        bidirected = np.zeros_like(adjacent) if bidirected is None else bidirected * scale
        return cls(list(names), runs, adjacent * scale, directed * scale, symmetric * scale, bidirected)

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
                        "bidirected": float(self.bidirected[i, j]),
                    }
                )
        return out


@dataclass
class Orientation:
    dag: nx.DiGraph
    cycles_broken: list[list[str]]  # the edge (source, target) whose orientation each break removed
    new_colliders: list[list[str]] = field(default_factory=list)  # [a, x, b]: a -> x <- b made by step 6
    reversed_edges: list[list[str]] = field(default_factory=list)  # [u, v]: u -> v reversed by step 6


class PDAG:
    """Directed and undirected edges over named nodes, with the queries Meek's rules need."""

    def __init__(self, nodes):
        self.nodes = list(nodes)
        self.children = {n: set() for n in self.nodes}
        self.parents = {n: set() for n in self.nodes}
        self.undirected = {n: set() for n in self.nodes}

    def adjacent(self, a, b) -> bool:
        return b in self.children[a] or b in self.parents[a] or b in self.undirected[a]

    def neighbours(self, a) -> set:
        return self.children[a] | self.parents[a] | self.undirected[a]

    def add_directed(self, a, b) -> None:
        self.children[a].add(b)
        self.parents[b].add(a)

    def orient(self, a, b) -> None:
        """Turn the undirected edge a - b into a -> b."""
        self.undirected[a].discard(b)
        self.undirected[b].discard(a)
        self.add_directed(a, b)

    def has_directed_path(self, source, target) -> bool:
        seen, stack = {source}, [source]
        while stack:
            node = stack.pop()
            if node == target:
                return True
            for child in self.children[node] - seen:
                seen.add(child)
                stack.append(child)
        return False


def orient_dag(freq: EdgeFrequencies, threshold: float, label: str | None = None) -> Orientation:
    names = freq.names
    position = {name: k for k, name in enumerate(names)}
    label = names[-1] if label is None else label
    voted = nx.DiGraph()
    voted.add_nodes_from(names)
    undecided: list[tuple[str, str]] = []
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
            undecided.append((names[i], names[j]))

    cycles_broken = _break_cycles(voted, position)
    undecided += [(u, v) for u, v in cycles_broken]

    pdag = PDAG(names)
    how: dict[tuple[str, str], str] = {}
    for u, v in voted.edges:
        pdag.add_directed(u, v)
        how[u, v] = "voted"
    for u, v in undecided:
        pdag.undirected[u].add(v)
        pdag.undirected[v].add(u)
    for u, v in apply_meek_rules(pdag):
        how[u, v] = "meek"
    order = sorted(names, key=lambda n: (n != label, -position[n]))
    strength = lambda a, b: float(freq.adjacent[position[a], position[b]])  # noqa: E731
    extension, new_colliders, reversed_edges = consistent_extension(pdag, order, strength)
    for u, v in reversed_edges:
        del how[u, v]
    how.update(extension)

    broken = {frozenset(e) for e in cycles_broken}
    dag = nx.DiGraph()
    dag.add_nodes_from(names)
    for u, v in sorted(how, key=lambda e: (position[e[0]], position[e[1]])):
        record = _edge_record(freq, position[u], position[v], how[u, v])
        record["cycle_broken"] = frozenset((u, v)) in broken
        dag.add_edge(u, v, **record)
    return Orientation(dag, [list(e) for e in cycles_broken], new_colliders, reversed_edges)


def _break_cycles(voted: nx.DiGraph, position: dict) -> list[tuple[str, str]]:
    broken = []
    while True:
        try:
            cycle = nx.find_cycle(voted)
        except nx.NetworkXNoCycle:
            return broken
        u, v = min(
            ((u, v) for u, v, *_ in cycle),
            key=lambda e: (voted.edges[e]["margin"], voted.edges[e]["share"], -position[e[0]], -position[e[1]]),
        )
        voted.remove_edge(u, v)
        broken.append((u, v))


def apply_meek_rules(pdag: PDAG) -> list[tuple[str, str]]:
    """Orient undirected edges by Meek's R1-R4 until none applies; returns the edges oriented, in order.

    On a PDAG that has a consistent extension the rules never create a cycle or a new unshielded
    collider. Voted PDAGs can contradict themselves (PC's own output can hold a directed cycle), so
    an orientation that would close a directed cycle or make a new unshielded collider at its head
    is skipped: the edge stays undirected and the extension step decides (and records) it.
    """
    oriented = []
    changed = True
    while changed:
        changed = False
        for a in pdag.nodes:
            for b in sorted(pdag.undirected[a], key=pdag.nodes.index):
                if b not in pdag.undirected[a] or not _meek_compels(pdag, a, b):
                    continue
                if pdag.has_directed_path(b, a) or any(not pdag.adjacent(a, d) for d in pdag.parents[b]):
                    continue
                pdag.orient(a, b)
                oriented.append((a, b))
                changed = True
    return oriented


def _meek_compels(pdag: PDAG, a, b) -> bool:
    """Whether R1-R4 orient the undirected edge a - b as a -> b."""
    # R1: c -> a - b with c, b non-adjacent (else c -> a <- b would be a new collider).
    if any(not pdag.adjacent(c, b) for c in pdag.parents[a]):
        return True
    # R2: a -> c -> b (else a cycle).
    if pdag.children[a] & pdag.parents[b]:
        return True
    # R3: a - c -> b and a - d -> b with c, d non-adjacent.
    middle = sorted(pdag.undirected[a] & pdag.parents[b], key=pdag.nodes.index)
    if any(not pdag.adjacent(c, d) for c, d in combinations(middle, 2)):
        return True
    # R4: a - c -> d -> b with c, b non-adjacent and a adjacent to d.
    for d in pdag.parents[b]:
        if pdag.adjacent(a, d) and any(not pdag.adjacent(c, b) for c in pdag.parents[d] & pdag.undirected[a]):
            return True
    return False


def consistent_extension(pdag: PDAG, order: list, strength) -> tuple[dict, list[list[str]], list[list[str]]]:
    """Orient every undirected edge (Dor-Tarsi, step 5; step 6 where it is stuck).

    Returns {edge: "extension" | "forced"}, the unshielded colliders made by forced steps, and the
    directed edges (source, target) that forced steps reversed.
    """
    children = {n: set(pdag.children[n]) for n in pdag.nodes}
    parents = {n: set(pdag.parents[n]) for n in pdag.nodes}
    undirected = {n: set(pdag.undirected[n]) for n in pdag.nodes}
    remaining = list(order)
    how, new_colliders, reversed_edges = {}, [], []

    def neighbours(x):
        return children[x] | parents[x] | undirected[x]

    def eligible(x):
        return not children[x] and all(neighbours(x) - {y} <= neighbours(y) for y in undirected[x])

    while remaining:
        x = next((x for x in remaining if eligible(x)), None)
        kind, colliders = "extension", []
        if x is None:
            x = min(
                remaining,
                key=lambda s: _sink_cost(s, neighbours, children, undirected, strength) + (remaining.index(s),),
            )
            kind, colliders = "forced", _new_colliders(x, neighbours, children[x] | undirected[x])
            reversed_edges += [[x, w] for w in sorted(children[x], key=order.index)]
        for y in sorted(undirected[x] | children[x], key=order.index):
            how[y, x] = kind
        new_colliders += colliders
        for y in neighbours(x):
            children[y].discard(x)
            parents[y].discard(x)
            undirected[y].discard(x)
        children[x], parents[x], undirected[x] = set(), set(), set()
        remaining.remove(x)
    return how, new_colliders, reversed_edges


def _new_colliders(x, neighbours, changed: set) -> list[list[str]]:
    """Unshielded colliders a -> x <- b made when every edge of x points into x (``changed``: the
    edges that did not already)."""
    around = sorted(neighbours(x), key=str)
    return [[a, x, b] for a, b in combinations(around, 2) if (a in changed or b in changed) and b not in neighbours(a)]


def _sink_cost(x, neighbours, children, undirected, strength) -> tuple:
    """Votes broken by making x a sink: new colliders plus reversed directed edges, then their adjacency."""
    colliders = _new_colliders(x, neighbours, children[x] | undirected[x])
    broken = len(colliders) + len(children[x])
    return (
        broken,
        sum(strength(a, x) + strength(b, x) for a, _, b in colliders) + sum(strength(x, w) for w in children[x]),
    )


def _edge_record(freq: EdgeFrequencies, u: int, v: int, orientation: str) -> dict:
    return {
        "adjacent": float(freq.adjacent[u, v]),
        "forward": float(freq.directed[u, v]),
        "backward": float(freq.directed[v, u]),
        "undirected": float(freq.symmetric[u, v]),
        "bidirected": float(freq.bidirected[u, v]),
        "orientation": orientation,
    }
