"""Causal discovery: PC and FCI (causal-learn) -> edge frequencies -> one DAG over the table's columns.

Both algorithms run on the same encoded train rows (``ci_data``); with ``bootstrap = B > 0`` they
run on B resamples (rows drawn with replacement) instead of once on the rows themselves. Each
run's edges are counted into :class:`EdgeFrequencies` (the "probabilistic adjacency"), which
``orient.orient_dag`` turns into a DAG. Columns excluded from the tests (constant, duplicate,
collinear) come back as isolated nodes or as children of their determinants.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
import zlib
from dataclasses import asdict, dataclass, field
from typing import Mapping

import networkx as nx
import numpy as np
import pandas as pd
from causallearn.graph.Edge import Edge
from causallearn.graph.GraphNode import GraphNode
from causallearn.search.ConstraintBased.FCI import fci
from causallearn.search.ConstraintBased.PC import pc

from causalmixft.causal.checks import check_train_table
from causalmixft.causal.ci_data import CIData, encode_for_ci, find_degenerate_columns, quantile_bins
from causalmixft.causal.ci_tests import CI_TESTS, ResolvedTest, resolve_ci_test
from causalmixft.causal.orient import EdgeFrequencies, orient_dag
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError

STAGE = "discover"
ALGORITHMS = ("pc", "fci")
# PC's rule for unshielded colliders: causal-learn's uc_rule 1, "maxP" (Ramsey 2016: a triple is a
# collider when the separating set with the largest p-value excludes the middle node) instead of
# 0 (the first separating set found). bench/bench_discovery.py, 5 seeds: fewer false colliders
# (nonlinear, 204 rows: 10 vs 16 over 5 tables) and a smaller synthetic correlation error
# (linear, 1,000 rows: 2.1x vs 2.5x the real-sample floor); false colliders break true correlations.
PC_COLLIDER_RULE = 1
# Fisher-z needs n - |S| - 3 > 0 degrees of freedom; below this many rows nothing can be tested.
MIN_ROWS = 5
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiscoverySettings:
    algorithms: tuple[str, ...] = ALGORITHMS
    ci_test: str = "auto"
    alpha: float = 0.05
    bootstrap: int = 0
    edge_threshold: float = 0.5
    kci_max_rows: int = 200
    max_rows: int = 2000

    @classmethod
    def from_config(cls, config: Mapping | None) -> "DiscoverySettings":
        config = dict(config or {})
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown discovery settings {unknown}")
        if "algorithms" in config:
            config["algorithms"] = tuple(config["algorithms"])
        settings = cls(**config)
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if not self.algorithms or set(self.algorithms) - set(ALGORITHMS):
            problems.append(f"algorithms must be a non-empty subset of {ALGORITHMS}, got {self.algorithms}")
        if self.ci_test not in CI_TESTS:
            problems.append(f"ci_test must be one of {CI_TESTS}, got {self.ci_test!r}")
        if not 0 < self.alpha < 1:
            problems.append(f"alpha must be in (0, 1), got {self.alpha}")
        if self.bootstrap < 0:
            problems.append(f"bootstrap must be >= 0, got {self.bootstrap}")
        if not 0 <= self.edge_threshold <= 1:
            problems.append(f"edge_threshold must be in [0, 1], got {self.edge_threshold}")
        if self.kci_max_rows < MIN_ROWS or self.max_rows < MIN_ROWS:
            problems.append(f"kci_max_rows and max_rows must be >= {MIN_ROWS}")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["algorithms"] = list(self.algorithms)
        return out


@dataclass
class DiscoveryResult:
    dag: nx.DiGraph
    frequencies: EdgeFrequencies
    ci_data: CIData
    settings: DiscoverySettings
    ci_test: str
    rows_used: int
    seed: int
    runs: list[dict] = field(default_factory=list)
    # each run's endpoint matrix over its tested columns (names), as causal-learn returned it; not in the JSON
    run_graphs: list[tuple[list[str], np.ndarray]] = field(default_factory=list)
    cycles_broken: list[list[str]] = field(default_factory=list)
    new_colliders: list[list[str]] = field(default_factory=list)
    reversed_edges: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        nodes = []
        for name in self.dag.nodes:
            data = self.dag.nodes[name]
            nodes.append({"name": name, **data})
        edges = [{"source": u, "target": v, **data} for u, v, data in self.dag.edges(data=True)]
        return {
            "nodes": nodes,
            "edges": edges,
            "edge_frequencies": self.frequencies.pairs(),
            "settings": self.settings.to_dict(),
            "ci_test": self.ci_test,
            "rows_used": self.rows_used,
            "imputed_missing": self.ci_data.imputed,
            "excluded_from_tests": self.ci_data.excluded,
            "runs": self.runs,
            "cycles_broken": self.cycles_broken,
            "new_colliders": self.new_colliders,
            "reversed_edges": self.reversed_edges,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
        }


def discover_dag(
    train: pd.DataFrame,
    schema: TableSchema,
    settings: DiscoverySettings | Mapping | None = None,
    seed: int = 0,
    dataset: str | None = None,
) -> DiscoveryResult:
    """Run PC/FCI on the train rows and return the oriented DAG over all columns, label included."""
    dataset = dataset or schema.dataset or "?"
    try:
        if not isinstance(settings, DiscoverySettings):
            settings = DiscoverySettings.from_config(settings)
    except (TypeError, ValueError) as exc:
        raise StageError(STAGE, dataset, f"bad discovery settings: {exc}") from exc
    check_train_table(train, schema, STAGE, dataset, min_rows=MIN_ROWS)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    frame = train.reset_index(drop=True)
    if len(frame) > settings.max_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), settings.max_rows, replace=False))]

    ci = encode_for_ci(frame, schema)
    ci.excluded = find_degenerate_columns(ci.matrix, ci.names, first=schema.target)
    tested = [i for i, name in enumerate(ci.names) if name not in ci.excluded]
    all_categorical = all(ci.kinds[i] == "categorical" for i in tested)
    test = resolve_ci_test(settings.ci_test, all_categorical, settings.kci_max_rows)
    p = len(ci.names)
    adjacent, directed, symmetric, bidirected = (np.zeros((p, p)) for _ in range(4))
    resamples = [None] if settings.bootstrap == 0 else list(range(settings.bootstrap))
    runs, run_graphs = [], []
    for resample in resamples:
        rows = np.arange(len(frame)) if resample is None else rng.integers(0, len(frame), len(frame))
        columns, matrix = _run_columns(ci, tested, rows, resample is not None)
        if test.keeps_missing:
            matrix = ci.with_missing()[np.ix_(rows, columns)]
        matrix = _prepare_for_test(matrix, [ci.kinds[i] for i in columns], test, rng)
        for algorithm in settings.algorithms:
            t0 = time.perf_counter()
            with seeded_global_numpy(int(rng.integers(2**32))):
                marks = _run_algorithm(algorithm, matrix, test, settings.alpha, dataset)
            n_edges = _count_votes(marks, columns, adjacent, directed, symmetric, bidirected)
            run_graphs.append(([ci.names[i] for i in columns], marks))
            runs.append(
                {
                    "algorithm": algorithm,
                    "resample": resample,
                    "rows": int(matrix.shape[0]),
                    "columns": len(columns),
                    "edges": n_edges,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            )
            log.info("%s on %s (resample %s): %d edges", algorithm, dataset, resample, n_edges)

    freq = EdgeFrequencies.from_counts(ci.names, len(runs), adjacent, directed, symmetric, bidirected)
    orientation = orient_dag(freq, settings.edge_threshold, label=schema.target)
    dag = orientation.dag
    _attach_excluded(dag, ci)
    _annotate_nodes(dag, ci, schema)
    return DiscoveryResult(
        dag=dag,
        frequencies=freq,
        ci_data=ci,
        settings=settings,
        ci_test=test.name,
        rows_used=len(frame),
        seed=seed,
        runs=runs,
        run_graphs=run_graphs,
        cycles_broken=orientation.cycles_broken,
        new_colliders=orientation.new_colliders,
        reversed_edges=orientation.reversed_edges,
        seconds=time.perf_counter() - start,
    )


def _run_columns(ci: CIData, tested: list[int], rows: np.ndarray, is_resample: bool) -> tuple[list[int], np.ndarray]:
    """The tested columns on these rows; a resample can make a rare column constant or collinear again."""
    matrix = ci.matrix[np.ix_(rows, tested)]
    if not is_resample:
        return tested, matrix
    names = [ci.names[i] for i in tested]
    degenerate = find_degenerate_columns(matrix, names, first=ci.names[-1])
    keep = [k for k, name in enumerate(names) if name not in degenerate]
    return [tested[k] for k in keep], matrix[:, keep]


def _prepare_for_test(matrix: np.ndarray, kinds: list[str], test: ResolvedTest, rng: np.random.Generator) -> np.ndarray:
    if test.discretize_numeric:
        matrix = matrix.copy()
        for k, kind in enumerate(kinds):
            if kind == "numeric":
                matrix[:, k] = quantile_bins(matrix[:, k])
    if test.row_cap is not None and matrix.shape[0] > test.row_cap:
        matrix = matrix[np.sort(rng.choice(matrix.shape[0], test.row_cap, replace=False))]
    return matrix


def _run_algorithm(algorithm: str, matrix: np.ndarray, test: ResolvedTest, alpha: float, dataset: str) -> np.ndarray:
    """Endpoint matrix G of one run: G[a, b] is the mark at node a of the edge a-b (causal-learn's layout)."""
    n_rows, n_cols = matrix.shape
    if n_cols < 2:
        return np.zeros((n_cols, n_cols), dtype=int)
    # Conditioning sets larger than n - 4 leave Fisher-z no degrees of freedom.
    depth = min(n_cols - 2, n_rows - 4)
    sink = io.StringIO()
    try:
        # causal-learn prints FCI's orientation steps unconditionally: keep them out of the logs.
        with contextlib.redirect_stdout(sink), warnings.catch_warnings(record=True) as caught, stable_node_hashes():
            warnings.simplefilter("always")
            if algorithm == "pc":
                graph = pc(
                    matrix, alpha, test.method, stable=True, uc_rule=PC_COLLIDER_RULE, show_progress=False, max_k=depth
                ).G.graph
            else:
                graph, _ = fci(matrix, test.method, alpha, depth=depth, show_progress=False)
                graph = graph.graph
    except (ValueError, np.linalg.LinAlgError, AssertionError) as exc:
        raise StageError(STAGE, dataset, f"{algorithm} with the {test.name} test failed: {exc}") from exc
    for warning in caught:
        log.info("%s warning: %s", algorithm, warning.message)
    return np.asarray(graph, dtype=int)


@contextlib.contextmanager
def seeded_global_numpy(seed: int):
    """RCIT and FastKCI draw random features from numpy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def stable_node_hashes():
    """Make FCI's result independent of the process's string-hash salt (PYTHONHASHSEED).

    causal-learn hashes graph nodes by ``hash(name)`` and edges by ``hash(str(edge))``, and FCI
    iterates over sets of them (possible-d-separation sets), so two runs of the same data in two
    processes could orient edges differently. While FCI runs, nodes and edges hash by a CRC32 of
    the same strings instead: equal objects still hash equally, and set order is fixed.
    """
    node_hash, edge_hash = GraphNode.__hash__, Edge.__hash__
    GraphNode.__hash__ = lambda node: zlib.crc32(str(node.get_name()).encode())
    Edge.__hash__ = lambda edge: zlib.crc32(str(edge).encode())
    try:
        yield
    finally:
        GraphNode.__hash__, Edge.__hash__ = node_hash, edge_hash


def _count_votes(marks, columns, adjacent, directed, symmetric, bidirected) -> int:
    """Add one run's edges to the counts (indices mapped from run columns to all nodes)."""
    n_edges = 0
    for a in range(len(columns)):
        for b in range(a + 1, len(columns)):
            if marks[a, b] == 0 and marks[b, a] == 0:
                continue
            n_edges += 1
            i, j = columns[a], columns[b]
            adjacent[i, j] += 1
            adjacent[j, i] += 1
            arrow_at_b, arrow_at_a = marks[b, a] == 1, marks[a, b] == 1
            if arrow_at_b and not arrow_at_a:
                directed[i, j] += 1
            elif arrow_at_a and not arrow_at_b:
                directed[j, i] += 1
            else:
                symmetric[i, j] += 1
                symmetric[j, i] += 1
                if arrow_at_a and arrow_at_b:
                    bidirected[i, j] += 1
                    bidirected[j, i] += 1
    return n_edges


def _attach_excluded(dag: nx.DiGraph, ci: CIData) -> None:
    """Columns left out of the tests: determined ones become children of their determinants."""
    for name, info in ci.excluded.items():
        for parent in info["determined_by"]:
            dag.add_edge(
                parent,
                name,
                adjacent=1.0,
                forward=1.0,
                backward=0.0,
                undirected=0.0,
                bidirected=0.0,
                orientation=info["reason"],
            )


def _annotate_nodes(dag: nx.DiGraph, ci: CIData, schema: TableSchema) -> None:
    for name, kind in zip(ci.names, ci.kinds):
        dag.nodes[name].update(
            kind=kind,
            role="label" if name == schema.target else "feature",
            tested=name not in ci.excluded,
            excluded=ci.excluded.get(name, {}).get("reason"),
        )
