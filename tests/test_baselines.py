"""The baseline generators (causalmixft.baselines) on small real tables: schema, seeds, nesting, labels.

Tables: 120 train rows of credit-g (mixed: 13 categorical, 7 numeric) and of diabetes (all
numeric), from the data package's prepare and split functions. CTGAN and TabEBM run with a few
epochs / Langevin steps so the whole module stays fast.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalmixft import baselines
from causalmixft.baselines.common import allocate
from causalmixft.baselines.scm_emptydag import empty_dag
from causalmixft.baselines.scm_randomdag import random_dag
from causalmixft.baselines.tabebm import surrogate_negatives
from causalmixft.generators.protocol import Generator
from causalmixft.generators.draw import sample_synthetic
from causalmixft.generators.registry import NEEDS, GENERATORS, generator_class, make_generator, module_name, names, needs
from causalmixft.causal.simulate import schema_for
from causalmixft.data.impute import fill_missing
from causalmixft.data.prepare import prepare_dataset
from causalmixft.data.schema import TableSchema
from causalmixft.data.splits import Protocol, make_split
from causalmixft.errors import StageError

TABARENA = Path(__file__).resolve().parents[1] / "resources" / "tabarena"
PROTOCOL = Protocol(n_folds=3, real_budget=150, val_fraction=0.2)
NAMES = ["ctgan", "scm_emptydag", "scm_randomdag", "smote", "tabebm"]
# Fast settings: a couple of CTGAN epochs on a small batch, a few Langevin steps.
FAST = {"ctgan": {"epochs": 2, "batch_size": 60}, "tabebm": {"sgld_steps": 3}}


def small_split(name: str):
    spec = {"source": f"file:{TABARENA / f'{name}.csv.gz'}", "manifest": str(TABARENA / "MANIFEST.json")}
    table, meta = prepare_dataset(name, spec)
    split = make_split(name, table, 0, PROTOCOL)
    schema = TableSchema.from_meta(meta)
    return schema.cast(split.parts["train"]), schema


def a_dag(schema: TableSchema) -> nx.DiGraph:
    """A stand-in for the discovered DAG: a chain over the first four columns into the label."""
    graph = nx.DiGraph()
    graph.add_nodes_from([*schema.names, schema.target])
    nx.add_path(graph, [*schema.names[:4], schema.target])
    return graph


def build(name: str, schema: TableSchema, dataset: str):
    options = dict(FAST.get(name, {}))
    if name == "scm_randomdag":
        options["dag"] = a_dag(schema)
    return make_generator(name, dataset=dataset, **options)


@pytest.fixture(scope="module", params=["credit-g", "diabetes"])
def fitted(request):
    """(train, schema, {name: generator fitted with seed 0}) for one table."""
    train, schema = small_split(request.param)
    assert len(train) == 120
    return train, schema, {name: build(name, schema, request.param).fit(train, schema, 0) for name in NAMES}


def test_every_baseline_module_is_a_registered_generator():
    assert baselines.names() == NAMES
    for name in NAMES:
        assert name in GENERATORS
        assert generator_class(name).name == name
        assert set(needs(name)) <= set(NEEDS)
        assert module_name(name) == f"causalmixft.baselines.{name}"
        assert (Path(baselines.__file__).parent / f"{name}.py").exists()
    assert names() == ["causalmixft", *NAMES]
    # CausalMixFT is a generator like its controls: it needs the fold's DAG and scm.quality
    assert needs("causalmixft") == ("dag", "scm_quality") and generator_class("causalmixft").name == "causalmixft"
    assert module_name("causalmixft") == "causalmixft.generators.causalmixft"
    with pytest.raises(ValueError, match="unknown generator 'nope'"):
        module_name("nope")
    with pytest.raises(ValueError, match="unknown options"):
        make_generator("smote", k_neighbours=3)
    with pytest.raises(ValueError, match="multiple of pac"):
        make_generator("ctgan", batch_size=64)


@pytest.mark.parametrize("name", NAMES)
def test_samples_follow_the_schema_and_nest(fitted, name):
    train, schema, generators = fitted
    generator = generators[name]
    assert isinstance(generator, Generator)
    draw = sample_synthetic(generator, train, schema, [0, 40, 200], seed=5)
    samples = draw.samples()
    rows = samples[200]
    assert list(rows.columns) == list(train.columns) and dict(rows.dtypes) == dict(train.dtypes)
    assert not rows.isna().any().any()
    for feature in schema.features:
        if feature.kind == "categorical":
            assert set(rows[feature.name]) <= set(train[feature.name].dropna())
        elif feature.integer:
            assert (rows[feature.name] == np.round(rows[feature.name])).all()
    assert set(rows["target"]) <= set(schema.classes)
    # nested: a smaller size is a prefix of a larger one, also when drawn alone (one job per size)
    pd.testing.assert_frame_equal(samples[40], rows.iloc[:40].reset_index(drop=True))
    alone = sample_synthetic(generator, train, schema, [40], seed=5).samples()[40]
    pd.testing.assert_frame_equal(alone, samples[40])
    # label shares of every prefix follow train (label matching), with no class short
    shares = train["target"].value_counts(normalize=True)
    drawn = rows["target"].value_counts(normalize=True).reindex(shares.index, fill_value=0)
    assert (drawn - shares).abs().max() <= 1 / 200 + 1e-9
    assert draw.info["label_shortfall"] == {}


@pytest.mark.parametrize("name", NAMES)
def test_same_seeds_same_rows_and_a_pickled_generator_draws_the_same(fitted, name):
    train, schema, generators = fitted
    first = generators[name].sample(60, seed=3)
    refit = build(name, schema, schema.dataset).fit(train, schema, 0)
    pd.testing.assert_frame_equal(refit.sample(60, seed=3), first)
    assert not generators[name].sample(60, seed=4).equals(first)
    # the workflow fits in one job and samples in others, through a pickle
    unpickled = pickle.loads(pickle.dumps(generators[name]))
    pd.testing.assert_frame_equal(unpickled.sample(60, seed=3), first)


@pytest.mark.parametrize("name", ["smote", "tabebm"])
def test_class_counts_follow_train_shares_exactly(fitted, name):
    train, _, generators = fitted
    rows = generators[name].sample(101, seed=0)
    expected = allocate(101, (train["target"].value_counts(normalize=True)).sort_index().to_dict())
    assert rows["target"].value_counts().sort_index().to_dict() == {k: v for k, v in expected.items() if v}


def test_allocate_splits_by_largest_remainder():
    assert allocate(10, {"a": 0.5, "b": 0.25, "c": 0.25}) == {"a": 5, "b": 3, "c": 2}
    assert allocate(3, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 1, "b": 1, "c": 1}
    assert sum(allocate(7, {"a": 0.61, "b": 0.39}).values()) == 7


def test_random_dag_has_the_edge_count_and_is_acyclic():
    nodes = [f"x{i}" for i in range(8)] + ["target"]
    for edges in (0, 5, 17, 36):
        dag = random_dag(nodes, edges, seed=edges)
        assert dag.number_of_edges() == edges and nx.is_directed_acyclic_graph(dag)
        assert set(dag.nodes) == set(nodes)
        order = dag.graph["order"]
        assert all(order.index(u) < order.index(v) for u, v in dag.edges)
    assert random_dag(nodes, 100, seed=0).number_of_edges() == 36  # every forward pair of 9 nodes
    assert set(random_dag(nodes, 10, seed=1).edges) == set(random_dag(nodes, 10, seed=1).edges)
    assert set(random_dag(nodes, 10, seed=1).edges) != set(random_dag(nodes, 10, seed=2).edges)


def test_the_random_dag_control_copies_the_discovered_edge_count(fitted):
    _, schema, generators = fitted
    report = generators["scm_randomdag"].report()
    assert report["reference_edges"] == 4 == len(report["edges"])
    assert nx.is_directed_acyclic_graph(generators["scm_randomdag"].dag)
    assert {r["node"] for r in report["scm"]["nodes"]} == {*schema.names, schema.target}


def test_the_empty_dag_control_has_no_feature_edges(fitted):
    _, schema, generators = fitted
    dag = empty_dag(schema.names, schema.target)
    assert set(dag.edges) == {(name, schema.target) for name in schema.names}
    nodes = {r["node"]: r for r in generators["scm_emptydag"].report()["scm"]["nodes"]}
    assert all(nodes[name]["parents"] == [] for name in schema.names)
    assert sorted(nodes[schema.target]["parents"]) == sorted(schema.names)


def test_smote_refuses_a_class_with_one_row_and_reduces_k_for_small_classes():
    frame = pd.DataFrame(
        {
            "x": np.arange(12, dtype=float),
            "colour": ["red", "blue"] * 6,
            "target": ["a"] * 8 + ["b"] * 3 + ["c"],
        }
    )
    schema = schema_for(frame, categorical=["colour"], dataset="tiny")
    with pytest.raises(StageError, match=r"\[fit\] tiny: smote .* class 'c' has 1 train row"):
        make_generator("smote", dataset="tiny").fit(frame, schema, 0)
    two_classes = frame.iloc[:11]
    generator = make_generator("smote", dataset="tiny").fit(two_classes, schema_for(two_classes, ["colour"]), 0)
    assert generator.report()["k_per_class"] == {"a": 5, "b": 2} and generator.variant == "SMOTENC"
    rows = generator.sample(50, seed=1)
    assert set(rows["colour"]) <= {"red", "blue"}
    # interpolation stays inside each class's range
    for label, low, high in (("a", 0, 7), ("b", 8, 10)):
        values = rows.loc[rows["target"] == label, "x"]
        assert values.between(low, high).all()


def test_smote_variants_follow_the_feature_kinds():
    numeric = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0) ** 2, "target": ["a", "b"] * 5})
    assert make_generator("smote").fit(numeric, schema_for(numeric), 0).variant == "SMOTE"
    categorical = pd.DataFrame({"u": list("pqrs") * 3, "v": list("xy") * 6, "target": ["a", "b", "b"] * 4})
    generator = make_generator("smote").fit(categorical, schema_for(categorical, ["u", "v"]), 0)
    assert generator.variant == "SMOTEN"
    assert set(generator.sample(20, 0)["u"]) <= set("pqrs")


def test_missing_values_are_filled_before_fitting():
    frame = pd.DataFrame(
        {"x": [1.0, np.nan, 3.0, 5.0], "c": ["p", None, "q", "q"], "target": ["a", "a", "b", "b"]}
    )
    filled, fills = fill_missing(frame, schema_for(frame, ["c"]))
    assert filled["x"].tolist() == [1.0, 3.0, 3.0, 5.0] and filled["c"].tolist() == ["p", "q", "q", "q"]
    assert fills == {
        "x": {"missing": 1, "fill": 3.0, "rule": "median"},
        "c": {"missing": 1, "fill": "q", "rule": "most frequent level"},
    }


def test_tabebm_negatives_are_antipodal_cube_corners():
    rng = np.random.default_rng(0)
    corners = surrogate_negatives(6, 5.0, 4, rng)
    assert corners.shape == (4, 6) and (np.abs(corners) == 5.0).all()
    assert len({tuple(c) for c in corners}) == 4
    assert all(any((c == -d).all() for d in corners) for c in corners)
    assert surrogate_negatives(1, 2.0, 4, rng).shape == (2, 1)  # a line has two corners


def test_tabebm_energy_is_lower_on_the_class_than_far_away(fitted):
    _, _, generators = fitted
    generator = generators["tabebm"]
    for label, rows in generator.contexts.items():
        near = generator.energy(label, rows[:20]).mean()
        far = generator.energy(label, generator.negatives[label]).mean()
        assert near < far
    report = generator.report()
    assert report["settings"]["sgld_steps"] == 3 and set(report["negatives_per_class"].values()) == {4}


def test_tabebm_chains_move_by_their_own_gradient_unless_asked_for_the_mean(fitted):
    train, schema, _ = fitted

    def draw(**options):
        rows = make_generator("tabebm", dataset=schema.dataset, **options).fit(train, schema, 0).sample(40, 2)
        return rows[schema.numeric].to_numpy()

    start = draw(sgld_steps=0)
    chain, mean = draw(sgld_steps=3), draw(sgld_steps=3, gradient="mean")
    scale = train[schema.numeric].std().to_numpy()
    moved = lambda rows: np.abs((rows - start) / scale).mean()  # noqa: E731
    assert moved(mean) < moved(chain)
    with pytest.raises(ValueError, match="gradient must be"):
        make_generator("tabebm", gradient="sum")
