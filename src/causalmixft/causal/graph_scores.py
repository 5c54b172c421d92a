"""Scores of an estimated causal graph against a known DAG (the discovery benchmark and its test).

Every graph is read as endpoint marks: ``marks[(u, v)]`` is True when the edge u-v has an
arrowhead at v. A DAG edge u -> v is (u, v): True, (v, u): False; an undirected edge has False at
both ends and a bidirected one True at both. Conventions:
- skeleton precision / recall / F1 count adjacencies against the true DAG's (observed nodes only;
  a pair joined only by a hidden confounder is not a true adjacency);
- SHD compares completed PDAGs (CPDAGs): the true DAG's CPDAG against the estimate's (a DAG
  estimate is first reduced to its CPDAG, so the choice among Markov-equivalent DAGs is not
  counted). +1 per missing or extra adjacency, +1 per shared adjacency whose two marks differ;
- a false collider is an unshielded collider of the estimate (a *-> x <-* b, a and b not adjacent
  in the estimate) that is not a v-structure of the true DAG;
- the label's Markov blanket of an estimate: nodes adjacent to the label (any mark) plus the
  other parents (arrowhead at the child, no arrowhead at the parent's end) of its definite children.
"""

from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np

from causalmixft.causal.orient import PDAG, apply_meek_rules

Marks = dict[tuple[str, str], bool]


def dag_marks(dag: nx.DiGraph) -> Marks:
    marks = {}
    for u, v in dag.edges:
        marks[u, v], marks[v, u] = True, False
    return marks


def endpoint_marks(graph: np.ndarray, names: list[str]) -> Marks:
    """causal-learn's endpoint matrix (``G[a, b]`` is the mark at a of the edge a-b; 1 = arrowhead)."""
    marks = {}
    for a, b in zip(*np.nonzero(graph)):
        marks[names[a], names[b]] = bool(graph[b, a] == 1)
    return marks


def cpdag_marks(dag: nx.DiGraph) -> Marks:
    """The CPDAG of a DAG: v-structure edges directed, Meek's rules, the rest undirected."""
    pdag = PDAG(sorted(dag.nodes, key=str))
    in_v_structure = {(a, x) for a, x, b in v_structures(dag)} | {(b, x) for a, x, b in v_structures(dag)}
    for u, v in dag.edges:
        if (u, v) in in_v_structure:
            pdag.add_directed(u, v)
        else:
            pdag.undirected[u].add(v)
            pdag.undirected[v].add(u)
    apply_meek_rules(pdag)
    marks = {}
    for u in pdag.nodes:
        for v in pdag.children[u]:
            marks[u, v], marks[v, u] = True, False
        for v in pdag.undirected[u]:
            marks[u, v] = False
    return marks


def v_structures(dag: nx.DiGraph) -> set[tuple]:
    """(a, x, b) with a -> x <- b, a and b not adjacent, a < b."""
    out = set()
    for x in dag.nodes:
        for a, b in combinations(sorted(dag.predecessors(x), key=str), 2):
            if not dag.has_edge(a, b) and not dag.has_edge(b, a):
                out.add((a, x, b))
    return out


def skeleton(marks: Marks) -> set[frozenset]:
    return {frozenset(pair) for pair in marks}


def skeleton_scores(marks: Marks, truth: nx.DiGraph) -> dict:
    found, true = skeleton(marks), {frozenset(e) for e in truth.edges}
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def shd(marks: Marks, truth: nx.DiGraph) -> int:
    true = cpdag_marks(truth)
    estimate, reference = skeleton(marks), skeleton(true)
    distance = len(estimate ^ reference)
    for pair in estimate & reference:
        u, v = tuple(pair)
        if (marks[u, v], marks[v, u]) != (true[u, v], true[v, u]):
            distance += 1
    return distance


def unshielded_colliders(marks: Marks) -> set[tuple]:
    into: dict = {}
    for (u, v), head in marks.items():
        if head:
            into.setdefault(v, []).append(u)
    adjacent = skeleton(marks)
    return {
        (min(a, b, key=str), x, max(a, b, key=str))
        for x, sources in into.items()
        for a, b in combinations(sources, 2)
        if frozenset((a, b)) not in adjacent
    }


def false_colliders(marks: Marks, truth: nx.DiGraph) -> int:
    true = {(min(a, b, key=str), x, max(a, b, key=str)) for a, x, b in v_structures(truth)}
    return len(unshielded_colliders(marks) - true)


def markov_blanket(marks: Marks, node: str) -> set[str]:
    neighbours = {v for (u, v) in marks if u == node}
    children = {v for v in neighbours if marks[node, v] and not marks[v, node]}
    spouses = {u for (u, v), head in marks.items() if v in children and head and not marks[v, u]}
    return (neighbours | spouses) - {node}


def blanket_recall(marks: Marks, truth: nx.DiGraph, node: str) -> float | None:
    children = set(truth.successors(node))
    true = (set(truth.predecessors(node)) | children | {p for c in children for p in truth.predecessors(c)}) - {node}
    if not true:
        return None
    return len(markov_blanket(marks, node) & true) / len(true)
