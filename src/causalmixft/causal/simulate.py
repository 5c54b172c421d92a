"""Tables drawn from known structural causal models, for tests and benchmarks.

Each simulator returns the typed frame (schema dtypes: numeric float64, categorical and label
strings), its :class:`TableSchema` and the true DAG, so discovery can be scored against the
truth and a fitted SCM against the real joint distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from causalmixft.data.schema import TARGET, Feature, TableSchema


@dataclass(frozen=True)
class SimulatedTable:
    frame: pd.DataFrame
    schema: TableSchema
    dag: nx.DiGraph


def schema_for(frame: pd.DataFrame, categorical: list[str] | tuple[str, ...] = (), dataset: str = "") -> TableSchema:
    """The schema a prepared table of ``frame`` would have: levels and classes as sorted strings."""
    features = []
    for name in frame.columns:
        if name == TARGET:
            continue
        if name in categorical:
            levels = tuple(sorted(str(v) for v in frame[name].dropna().unique()))
            features.append(Feature(name, "categorical", False, levels))
        else:
            values = frame[name].dropna().to_numpy(dtype=float)
            integer = bool(len(values)) and bool(np.all(values == np.round(values)))
            features.append(Feature(name, "numeric", integer))
    classes = tuple(sorted(str(v) for v in frame[TARGET].unique()))
    return TableSchema(tuple(features), classes, dataset)


def _label_from_score(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    probability = 1.0 / (1.0 + np.exp(-score))
    return np.where(rng.random(len(score)) < probability, "1", "0").astype(object)


def _table(columns: dict[str, np.ndarray], edges: list[tuple[str, str]], categorical=(), dataset="") -> SimulatedTable:
    frame = pd.DataFrame(columns)
    frame = frame[[c for c in frame.columns if c != TARGET] + [TARGET]]
    schema = schema_for(frame, categorical, dataset)
    dag = nx.DiGraph()
    dag.add_nodes_from(frame.columns)
    dag.add_edges_from(edges)
    return SimulatedTable(schema.cast(frame), schema, dag)


def chain(n: int, seed: int) -> SimulatedTable:
    """a -> b -> c -> target (linear Gaussian features, logistic label)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.9 * a + rng.normal(size=n) * 0.6
    c = 0.9 * b + rng.normal(size=n) * 0.6
    target = _label_from_score(2.0 * c, rng)
    edges = [("a", "b"), ("b", "c"), ("c", TARGET)]
    return _table({"a": a, "b": b, "c": c, TARGET: target}, edges, dataset="chain")


def fork(n: int, seed: int) -> SimulatedTable:
    """a <- z -> b and z -> target: z is the common cause of everything."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    a = 0.9 * z + rng.normal(size=n) * 0.6
    b = -0.9 * z + rng.normal(size=n) * 0.6
    target = _label_from_score(2.5 * z, rng)
    edges = [("z", "a"), ("z", "b"), ("z", TARGET)]
    return _table({"z": z, "a": a, "b": b, TARGET: target}, edges, dataset="fork")


def collider(n: int, seed: int) -> SimulatedTable:
    """a -> target <- b, target -> c: the label is a collider of two independent causes."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    target = _label_from_score(2.0 * a + 2.0 * b, rng)
    c = 1.5 * (target == "1") + rng.normal(size=n) * 0.6
    edges = [("a", TARGET), ("b", TARGET), (TARGET, "c")]
    return _table({"a": a, "b": b, "c": c, TARGET: target}, edges, dataset="collider")


def mixed(n: int, seed: int) -> SimulatedTable:
    """Numeric and categorical features: colour -> size -> target <- weight, target -> grade.

    ``colour`` (3 levels) shifts ``size``; ``grade`` (categorical, 4 levels) depends on the label;
    ``count`` is an integer-valued numeric child of ``size``.
    """
    rng = np.random.default_rng(seed)
    colour = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n, p=[0.5, 0.3, 0.2])
    shift = pd.Series(colour).map({"red": -1.0, "green": 0.0, "blue": 1.5}).to_numpy()
    size = shift + rng.normal(size=n) * 0.7
    weight = rng.normal(size=n)
    target = _label_from_score(1.8 * size + 1.5 * weight, rng)
    grade_score = np.where(target == "1", 1.0, -1.0) + rng.normal(size=n) * 0.8
    grade = np.array(["A", "B", "C", "D"], dtype=object)[np.digitize(grade_score, [-1.2, 0.0, 1.2])]
    count = np.round(6 + 1.2 * size + rng.normal(size=n) * 0.8)
    edges = [("colour", "size"), ("size", TARGET), ("weight", TARGET), (TARGET, "grade"), ("size", "count")]
    columns = {"colour": colour, "size": size, "weight": weight, "count": count, "grade": grade, TARGET: target}
    return _table(columns, edges, categorical=("colour", "grade"), dataset="mixed")


def random_scm(
    n_features: int,
    n_rows: int,
    seed: int,
    categorical_share: float = 0.25,
    expected_parents: float = 1.5,
) -> SimulatedTable:
    """A random DAG over ``n_features`` features and a binary label, with nonlinear mechanisms.

    Nodes are generated in a random order; each node draws parents among earlier nodes so that
    it has ``expected_parents`` of them on average. Numeric nodes are a random mix of linear,
    ``tanh`` and quadratic parent effects plus Gaussian noise; categorical nodes (3 or 4 levels)
    take the level with the largest noisy score. The label sits in the middle of the order, so it
    has both causes and effects, as in real tables.
    """
    rng = np.random.default_rng(seed)
    names = [f"x{i:02d}" for i in range(n_features)]
    order = list(rng.permutation(names))
    order.insert(n_features // 2, TARGET)
    categorical = [name for name in names if rng.random() < categorical_share]
    levels = {name: int(rng.integers(3, 5)) for name in categorical}  # a list: set order is salted
    levels[TARGET] = 2
    values: dict[str, np.ndarray] = {}
    encoded: dict[str, np.ndarray] = {}  # standardized numeric input each node offers its children
    edges = []
    for position, node in enumerate(order):
        earlier = order[:position]
        p_edge = min(1.0, expected_parents / max(1, len(earlier))) if earlier else 0.0
        parents = [p for p in earlier if rng.random() < p_edge][:4]
        edges.extend((p, node) for p in parents)
        if node in levels:
            k = levels[node]
            scores = rng.gumbel(size=(n_rows, k))
            for parent in parents:
                scores += 1.5 * np.outer(encoded[parent], rng.normal(size=k))
            codes = scores.argmax(axis=1)
            prefix = "" if node == TARGET else "l"
            values[node] = np.array([f"{prefix}{c}" for c in codes], dtype=object)
            centred = codes - codes.mean()
            encoded[node] = centred / (centred.std() or 1.0)
        else:
            signal = np.zeros(n_rows)
            for parent in parents:
                effect = rng.choice(["linear", "tanh", "square"])
                x = encoded[parent]
                weight = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2)
                signal += weight * {"linear": x, "tanh": 2 * np.tanh(x), "square": x**2 - 1}[effect]
            value = signal + rng.normal(size=n_rows) * rng.uniform(0.4, 1.0)
            values[node] = value
            encoded[node] = (value - value.mean()) / (value.std() or 1.0)
    columns = {name: values[name] for name in names}
    columns[TARGET] = values[TARGET]
    return _table(columns, edges, categorical=tuple(sorted(categorical)), dataset=f"random{n_features}")
