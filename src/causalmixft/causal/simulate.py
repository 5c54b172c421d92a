"""Tables drawn from known structural causal models, for tests and benchmarks.

Each simulator returns the typed frame (schema dtypes: numeric float64, categorical and label
strings), its :class:`TableSchema` and the true DAG, so discovery can be scored against the
truth and a fitted SCM against the real joint distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


EFFECTS = {"linear": lambda x: x, "tanh": lambda x: 2 * np.tanh(x), "square": lambda x: x**2 - 1}
# Rows drawn once to fix each node's standardization, so every sample of one SCM has the same mechanisms.
CALIBRATION_ROWS = 20_000


@dataclass
class RandomSCM:
    """A random SCM over features x00.. and a binary label, with optional hidden confounders.

    Nodes are generated in a random order, the label in the middle (so it has causes and effects,
    as in real tables). Each node draws parents among earlier nodes, ``expected_parents`` on
    average and at most 4. A numeric node is a sum of parent effects plus Gaussian noise; with
    ``mechanisms="nonlinear"`` each effect is linear, ``2 tanh`` or a centred square (non-monotone:
    invisible to a linear test), with ``"linear"`` every effect is linear. A categorical node (3-4
    levels, the label 2) takes the level with the largest Gumbel-noisy score, linear in its
    parents. Parents enter standardized by constants fixed once per SCM. Each hidden confounder
    is a standard normal latent added (weight 1-1.5) to two observed nodes that are not adjacent
    in the DAG; ``dag`` is the DAG over the observed nodes only, ``confounded`` lists the pairs.
    """

    order: list[str]
    parents: dict[str, list[str]]
    effects: dict[str, list[tuple[str, float]]]  # numeric node: (effect, weight) per parent
    categorical_weights: dict[str, np.ndarray]  # categorical node: parents x levels
    noise_scale: dict[str, float]
    latent_effects: dict[str, list[tuple[int, float]]]  # node: (latent index, weight)
    n_latents: int
    schema: TableSchema
    dag: nx.DiGraph
    confounded: list[tuple[str, str]]
    centre: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def sample(self, n_rows: int, seed: int) -> pd.DataFrame:
        """``n_rows`` rows in the schema's columns and dtypes (the latents are not returned)."""
        values = self._draw(n_rows, np.random.default_rng(seed))
        frame = pd.DataFrame({name: values[name] for name in self.schema.names + [self.schema.target]})
        return self.schema.cast(frame)

    def _draw(self, n_rows: int, rng: np.random.Generator, calibrate: bool = False) -> dict[str, np.ndarray]:
        """One sample in generation order; ``calibrate`` fixes each node's standardization from it."""
        latents = rng.normal(size=(n_rows, self.n_latents))
        values, inputs = {}, {}
        for node in self.order:
            hidden = sum((w * latents[:, j] for j, w in self.latent_effects.get(node, [])), np.zeros(n_rows))
            if node in self.categorical_weights:
                weights = self.categorical_weights[node]
                scores = rng.gumbel(size=(n_rows, weights.shape[1])) + hidden[:, None] * weights[-1]
                for k, parent in enumerate(self.parents[node]):
                    scores += np.outer(inputs[parent], weights[k])
                codes = scores.argmax(axis=1)
                values[node] = np.array([self._level(node, c) for c in codes], dtype=object)
                raw = codes.astype(float)
            else:
                raw = hidden + rng.normal(size=n_rows) * self.noise_scale[node]
                for parent, (effect, weight) in zip(self.parents[node], self.effects[node]):
                    raw += weight * EFFECTS[effect](inputs[parent])
                values[node] = raw
            if calibrate:
                self.centre[node], self.scale[node] = float(raw.mean()), float(raw.std()) or 1.0
            inputs[node] = (raw - self.centre[node]) / self.scale[node]
        return values

    def _level(self, node: str, code: int) -> str:
        return str(code) if node == self.schema.target else f"l{code}"

    def markov_blanket(self, node: str = TARGET) -> set[str]:
        children = set(self.dag.successors(node))
        spouses = {p for c in children for p in self.dag.predecessors(c)}
        return (set(self.dag.predecessors(node)) | children | spouses) - {node}


def draw_scm(
    n_features: int,
    seed: int,
    mechanisms: str = "nonlinear",
    categorical_share: float = 0.25,
    expected_parents: float = 1.5,
    hidden_confounders: int = 0,
    dataset: str = "",
) -> RandomSCM:
    """A :class:`RandomSCM` drawn from ``seed`` (structure and parameters; samples use their own seeds)."""
    if mechanisms not in ("linear", "nonlinear"):
        raise ValueError(f"mechanisms must be linear or nonlinear, got {mechanisms!r}")
    rng = np.random.default_rng(seed)
    names = [f"x{i:02d}" for i in range(n_features)]
    order = [str(name) for name in rng.permutation(names)]
    order.insert(n_features // 2, TARGET)
    categorical = [name for name in names if rng.random() < categorical_share]
    levels = {name: int(rng.integers(3, 5)) for name in categorical}  # a list: set order is salted
    levels[TARGET] = 2
    kinds = ["linear"] if mechanisms == "linear" else list(EFFECTS)
    parents, effects, weights, noise = {}, {}, {}, {}
    for position, node in enumerate(order):
        earlier = order[:position]
        p_edge = min(1.0, expected_parents / max(1, len(earlier))) if earlier else 0.0
        parents[node] = [p for p in earlier if rng.random() < p_edge][:4]
        if node in levels:
            # one extra row: the weights of a hidden confounder, if the node gets one
            weights[node] = 1.5 * rng.normal(size=(len(parents[node]) + 1, levels[node]))
        else:
            effects[node] = [
                (str(rng.choice(kinds)), float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2))) for _ in parents[node]
            ]
            noise[node] = float(rng.uniform(0.4, 1.0))
    dag = nx.DiGraph()
    dag.add_nodes_from(names + [TARGET])
    dag.add_edges_from((p, node) for node in order for p in parents[node])
    free_pairs = [
        (a, b) for k, a in enumerate(order) for b in order[k + 1 :] if not dag.has_edge(a, b) and not dag.has_edge(b, a)
    ]
    latent_effects: dict[str, list[tuple[int, float]]] = {}
    confounded = []
    for j, k in enumerate(rng.choice(len(free_pairs), min(hidden_confounders, len(free_pairs)), replace=False)):
        pair = free_pairs[int(k)]
        confounded.append(pair)
        for node in pair:
            latent_effects.setdefault(node, []).append((j, float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.5))))
    features = tuple(
        (
            Feature(name, "categorical", False, tuple(f"l{c}" for c in range(levels[name])))
            if name in levels
            else Feature(name, "numeric", False)
        )
        for name in names
    )
    schema = TableSchema(features, ("0", "1"), dataset or f"random{n_features}")
    scm = RandomSCM(order, parents, effects, weights, noise, latent_effects, len(confounded), schema, dag, confounded)
    scm._draw(CALIBRATION_ROWS, np.random.default_rng([seed, 1]), calibrate=True)
    return scm


def random_scm(
    n_features: int,
    n_rows: int,
    seed: int,
    categorical_share: float = 0.25,
    expected_parents: float = 1.5,
) -> SimulatedTable:
    """``n_rows`` rows of the nonlinear mixed-type :func:`draw_scm` of ``seed``, with its true DAG."""
    scm = draw_scm(n_features, seed, "nonlinear", categorical_share, expected_parents)
    return SimulatedTable(scm.sample(n_rows, seed), scm.schema, scm.dag)
