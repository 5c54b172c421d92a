"""The structural causal model: dowhy.gcm mechanisms fitted on the DAG and the real train rows.

Mechanisms:
- root nodes: the empirical distribution of their train values;
- numeric non-root nodes: additive noise models X = f(parents) + N, N drawn from the train residuals;
- categorical non-root nodes, the label included: classifier mechanisms that draw a level from the
  predicted class probabilities.
``quality`` chooses f and the classifiers: ``fast`` fixes them (see :data:`FAST_MECHANISMS`),
``good`` and ``better`` are dowhy's own cross-validated auto-assignment, ``best`` is dowhy's
AutoGluon assignment (needs the optional ``autogluon.tabular`` package).

dowhy cannot fit missing values, so they are filled before fitting
(:func:`causalmixft.data.impute.fill_missing`, the baselines' rule too: numeric: train median;
categorical: most frequent train level) and the fills are recorded in the report. Categorical
columns and labels are handed to dowhy as strings: dowhy decides between a regressor and a
classifier by the values' Python type, and would treat integer-coded classes as numbers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import random
import time
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from dowhy.gcm.auto import AssignmentQuality
from dowhy.gcm.fitting_sampling import fit_causal_model_of_target
from dowhy.gcm.ml import create_hist_gradient_boost_classifier, create_hist_gradient_boost_regressor
from dowhy.graph import get_ordered_predecessors

from causalmixft.causal.checks import check_train_table
from causalmixft.data.impute import fill_missing
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError

STAGE = "fit"
QUALITIES = ("fast", "good", "better", "best")
log = logging.getLogger(__name__)

# The fixed mechanisms of quality "fast": one histogram gradient-boosting model per node, no
# model selection. Shallow trees, few iterations and large leaves keep a node's fit to a few tens
# of milliseconds and stop f from absorbing the noise on a few hundred rows (in-sample residuals
# are the ANM's noise distribution, so an overfitted f would shrink the synthetic variance).
# bench/bench_causal.py compares this choice with dowhy's "good".
FAST_MECHANISMS = {
    "regressor": dict(max_iter=50, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=20, early_stopping=False),
    "classifier": dict(max_iter=50, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=20, early_stopping=False),
}


@contextlib.contextmanager
def seeded(seed: int):
    """dowhy and scikit-learn draw from numpy's and Python's global generators: seed them, then restore."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    gcm.util.general.set_random_seed(int(seed) % (2**32))
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@contextlib.contextmanager
def quiet_dowhy():
    """No progress bars, and one job: the workflow's scheduler owns the cores."""
    bars, jobs = gcm.config.show_progress_bars, gcm.config.default_n_jobs
    gcm.config.disable_progress_bars()
    gcm.config.set_default_n_jobs(1)
    try:
        yield
    finally:
        gcm.config.show_progress_bars = bars
        gcm.config.set_default_n_jobs(jobs)


@dataclass
class FittedSCM:
    """A fitted dowhy SCM plus what is needed to draw rows in the schema's column order."""

    model: gcm.StructuralCausalModel
    schema: TableSchema
    quality: str
    seed: int
    imputation: dict
    nodes: list[dict]
    dropped_edges: list[list[str]] = field(default_factory=list)
    assignment_seconds: float = 0.0
    fit_seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        return self.schema.names + [self.schema.target]

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` rows drawn from the SCM, columns in schema order, categoricals as strings."""
        with seeded(seed), quiet_dowhy():
            drawn = gcm.draw_samples(self.model, int(n))
        return drawn[self.columns].reset_index(drop=True)

    def report(self) -> dict:
        return {
            "quality": self.quality,
            "seed": self.seed,
            "nodes": self.nodes,
            "imputation": self.imputation,
            "edges_dropped_for_constant_nodes": self.dropped_edges,
            "n_edges": self.model.graph.number_of_edges(),
            "assignment_seconds": round(self.assignment_seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
        }


def fit_scm(
    train: pd.DataFrame,
    schema: TableSchema,
    dag: nx.DiGraph,
    quality: str = "fast",
    seed: int = 0,
    dataset: str | None = None,
) -> FittedSCM:
    """Assign and fit one mechanism per node of ``dag`` on the train rows."""
    dataset = dataset or schema.dataset or "?"
    if quality not in QUALITIES:
        raise StageError(STAGE, dataset, f"unknown scm quality {quality!r}; choose one of {QUALITIES}")
    if quality == "best" and importlib.util.find_spec("autogluon") is None:
        raise StageError(STAGE, dataset, "scm quality 'best' needs AutoGluon: pip install autogluon.tabular")
    check_train_table(train, schema, STAGE, dataset)
    columns = schema.names + [schema.target]
    if set(dag.nodes) != set(columns):
        extra, lacking = sorted(set(dag.nodes) - set(columns)), sorted(set(columns) - set(dag.nodes))
        raise StageError(STAGE, dataset, f"DAG nodes do not match the table: extra {extra[:5]}, missing {lacking[:5]}")
    if not nx.is_directed_acyclic_graph(dag):
        raise StageError(STAGE, dataset, "the graph has a cycle; an SCM needs a DAG")

    data, imputation = fill_missing(train, schema)
    graph, dropped = _fresh_graph(dag, data, columns)
    model = gcm.StructuralCausalModel(graph)
    kinds = {f.name: f.kind for f in schema.features} | {schema.target: "categorical"}
    with seeded(seed), quiet_dowhy():
        start = time.perf_counter()
        assignment = _assign_mechanisms(model, data, kinds, quality, seed)
        assignment_seconds = time.perf_counter() - start
        nodes = []
        for node in nx.topological_sort(model.graph):
            t0 = time.perf_counter()
            try:
                fit_causal_model_of_target(model, node, data)
            except (ValueError, TypeError) as exc:
                raise StageError(STAGE, dataset, f"fitting the mechanism of {node!r} failed: {exc}") from exc
            record = _node_record(model, node, data, kinds[node], time.perf_counter() - t0)
            nodes.append(record | assignment[node])
    fitted = FittedSCM(
        model=model,
        schema=schema,
        quality=quality,
        seed=seed,
        imputation=imputation,
        nodes=sorted(nodes, key=lambda r: columns.index(r["node"])),
        dropped_edges=dropped,
        assignment_seconds=assignment_seconds,
        fit_seconds=sum(r["fit_seconds"] for r in nodes),
    )
    log.info("fitted %s SCM for %s: %d nodes", quality, dataset, len(nodes))
    return fitted


def _fresh_graph(dag: nx.DiGraph, data: pd.DataFrame, columns: list[str]) -> tuple[nx.DiGraph, list[list[str]]]:
    """A new graph with only nodes and edges: dowhy skips nodes whose attributes already hold a mechanism.

    A node that is constant in the train rows cannot train a classifier (one class); it keeps
    its single value as a root, so its incoming edges are dropped (and reported).
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(columns)
    constant = {c for c in columns if data[c].nunique(dropna=False) <= 1}
    dropped = []
    for u, v in sorted(dag.edges, key=lambda e: (columns.index(e[0]), columns.index(e[1]))):
        if v in constant:
            dropped.append([u, v])
        else:
            graph.add_edge(u, v)
    return graph, dropped


def _assign_mechanisms(model, data: pd.DataFrame, kinds: dict[str, str], quality: str, seed: int) -> dict[str, dict]:
    """Set every node's mechanism; return how each was chosen.

    ``good``/``better``/``best`` call dowhy's per-node auto-assignment (what ``assign_causal_mechanisms``
    loops over). Its cross-validation breaks on a class with fewer rows than folds (log loss on a
    fold without that class); such a node gets the ``fast`` mechanism, and the report says so.
    """
    chosen = {}
    level = {"good": AssignmentQuality.GOOD, "better": AssignmentQuality.BETTER, "best": AssignmentQuality.BEST}.get(
        quality
    )
    for node in nx.topological_sort(model.graph):
        if level is not None:
            t0 = time.perf_counter()
            try:
                gcm.auto.assign_causal_mechanism_node(model, node, data, level)
                chosen[node] = {"assignment": quality, "assignment_seconds": round(time.perf_counter() - t0, 4)}
                continue
            except ValueError as exc:
                log.warning("dowhy %s assignment failed for %r (%s); using the fast mechanism", quality, node, exc)
                chosen[node] = {"assignment": f"fast (dowhy {quality} failed: {exc})"}
        else:
            chosen[node] = {"assignment": "fast"}
        model.set_causal_mechanism(node, _fast_mechanism(model.graph.in_degree(node) == 0, kinds[node], seed))
    return chosen


def _fast_mechanism(is_root: bool, kind: str, seed: int):
    random_state = int(seed) % (2**32)
    if is_root:
        return gcm.EmpiricalDistribution()
    if kind == "categorical":
        classifier = create_hist_gradient_boost_classifier(random_state=random_state, **FAST_MECHANISMS["classifier"])
        return gcm.ClassifierFCM(classifier)
    regressor = create_hist_gradient_boost_regressor(random_state=random_state, **FAST_MECHANISMS["regressor"])
    return gcm.AdditiveNoiseModel(regressor)


def _node_record(model, node: str, data: pd.DataFrame, kind: str, seconds: float) -> dict:
    mechanism = model.causal_mechanism(node)
    # dowhy feeds a mechanism its parents in get_ordered_predecessors order; use the same.
    parents = list(get_ordered_predecessors(model.graph, node))
    record = {"node": str(node), "kind": kind, "parents": [str(p) for p in parents], "mechanism": _describe(mechanism)}
    record["fit_seconds"] = round(seconds, 4)
    if not parents:
        record["fit"] = None
        return record
    X = data[parents].to_numpy()
    y = data[node].to_numpy()
    if isinstance(mechanism, gcm.ClassifierFCM):
        predicted = np.asarray(mechanism.classifier_model.predict(X)).reshape(-1)
        record["fit"] = {"metric": "accuracy", "in_sample": float(np.mean(predicted.astype(str) == y.astype(str)))}
    else:
        predicted = np.asarray(mechanism.prediction_model.predict(X), dtype=float).reshape(-1)
        y = y.astype(float)
        total = float(np.sum((y - y.mean()) ** 2))
        r2 = 1.0 - float(np.sum((y - predicted) ** 2)) / total if total > 0 else 0.0
        record["fit"] = {"metric": "r2", "in_sample": r2}
    return record


def _describe(mechanism) -> str:
    if isinstance(mechanism, gcm.ClassifierFCM):
        return f"ClassifierFCM({_model_name(mechanism.classifier_model)})"
    if isinstance(mechanism, gcm.AdditiveNoiseModel):
        return f"{type(mechanism).__name__}({_model_name(mechanism.prediction_model)})"
    return type(mechanism).__name__


def _model_name(prediction_model) -> str:
    sklearn_model = getattr(prediction_model, "sklearn_model", None)
    if sklearn_model is None:
        return type(prediction_model).__name__
    steps = getattr(sklearn_model, "steps", None)
    if steps:  # dowhy's polynomial models are pipelines
        return "+".join(type(step).__name__ for _, step in steps)
    return type(sklearn_model).__name__
