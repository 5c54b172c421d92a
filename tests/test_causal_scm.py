"""The SCM stage: mechanisms per node, faithfulness of draws, determinism, bad inputs."""

import importlib.util

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from dowhy import gcm

from causalmixft.causal import simulate
from causalmixft.causal.scm import fit_scm
from causalmixft.data.impute import fill_missing
from causalmixft.data.schema import TARGET
from causalmixft.errors import StageError


def encoded_correlations(frame: pd.DataFrame, schema) -> np.ndarray:
    matrix = np.column_stack([schema.encode_features(frame), schema.encode_labels(frame)])
    return np.corrcoef(matrix, rowvar=False)


@pytest.mark.parametrize("make", [simulate.chain, simulate.fork, simulate.collider])
def test_draws_reproduce_the_real_correlations_on_the_true_dag(make):
    table = make(1500, seed=1)
    fitted = fit_scm(table.frame, table.schema, table.dag, "fast", seed=0)
    drawn = table.schema.cast(fitted.sample(4000, seed=1))
    gap = np.abs(encoded_correlations(drawn, table.schema) - encoded_correlations(table.frame, table.schema))
    assert gap.max() < 0.08


def test_mixed_columns_get_the_documented_mechanisms():
    table = simulate.mixed(600, seed=2)
    fitted = fit_scm(table.frame, table.schema, table.dag, "fast", seed=0)
    mechanisms = {r["node"]: r["mechanism"] for r in fitted.nodes}
    assert mechanisms["colour"] == mechanisms["weight"] == "EmpiricalDistribution"
    assert mechanisms["size"] == "AdditiveNoiseModel(HistGradientBoostingRegressor)"
    assert mechanisms[TARGET] == mechanisms["grade"] == "ClassifierFCM(HistGradientBoostingClassifier)"
    fits = {r["node"]: r["fit"] for r in fitted.nodes}
    assert fits["colour"] is None
    assert fits["size"]["metric"] == "r2" and 0.3 < fits["size"]["in_sample"] <= 1
    assert fits[TARGET]["metric"] == "accuracy" and 0.6 < fits[TARGET]["in_sample"] <= 1
    assert all(r["fit_seconds"] >= 0 for r in fitted.nodes)
    drawn = fitted.sample(500, seed=3)
    assert list(drawn.columns) == table.schema.names + [TARGET]
    assert set(drawn["grade"]) <= set(table.schema.feature("grade").levels)
    assert set(drawn[TARGET]) <= {"0", "1"}  # string labels: a classifier, never a regressor's -1
    # the dependence of size on colour survives: blue rows are larger than red rows
    by_colour = drawn.groupby("colour")["size"].mean()
    assert by_colour["blue"] - by_colour["red"] > 1.5


def test_good_quality_uses_dowhys_auto_assignment():
    table = simulate.chain(300, seed=3)
    fitted = fit_scm(table.frame, table.schema, table.dag, "good", seed=0)
    report = fitted.report()
    assert report["quality"] == "good"
    mechanisms = {r["node"]: r["mechanism"] for r in report["nodes"]}
    assert mechanisms["a"] == "EmpiricalDistribution"
    assert mechanisms["b"].startswith(("AdditiveNoiseModel", "DiscreteAdditiveNoiseModel"))
    assert mechanisms[TARGET].startswith("ClassifierFCM(")


def test_sampling_is_deterministic_for_a_seed_and_leaves_global_state_alone():
    table = simulate.mixed(300, seed=4)
    fitted = fit_scm(table.frame, table.schema, table.dag, "fast", seed=0)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first, second = fitted.sample(200, seed=9), fitted.sample(200, seed=9)
    assert (np.random.get_state()[1] == before).all()
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(fitted.sample(200, seed=10))
    refit = fit_scm(table.frame, table.schema, table.dag, "fast", seed=0)
    pd.testing.assert_frame_equal(first, refit.sample(200, seed=9))


def test_a_graph_that_already_carries_mechanisms_is_fitted_from_a_fresh_copy():
    table = simulate.chain(300, seed=5)
    dag = nx.DiGraph(table.dag)
    gcm.StructuralCausalModel(dag)  # harmless, but a user may pass a graph dowhy has annotated
    for node in dag.nodes:
        dag.nodes[node]["causal_mechanism"] = gcm.EmpiricalDistribution()
    fitted = fit_scm(table.frame, table.schema, dag, "good", seed=0)
    assert {r["node"]: r["mechanism"] for r in fitted.nodes}["c"] != "EmpiricalDistribution"
    assert "causal_mechanism" in dag.nodes["c"]  # the caller's graph is not modified either


def test_missing_values_are_imputed_and_reported():
    table = simulate.mixed(300, seed=6)
    frame = table.frame.copy()
    frame.loc[:19, "size"] = np.nan
    frame.loc[5:9, "grade"] = np.nan
    fitted = fit_scm(frame, table.schema, table.dag, "fast", seed=0)
    imputation = fitted.report()["imputation"]
    assert imputation["size"]["missing"] == 20 and imputation["size"]["rule"] == "median"
    assert imputation["size"]["fill"] == pytest.approx(frame["size"].median())
    assert imputation["grade"] == {"missing": 5, "fill": frame["grade"].mode()[0], "rule": "most frequent level"}
    assert not fitted.sample(300, seed=0).isna().any().any()


def test_all_missing_column_is_filled_with_a_placeholder():
    table = simulate.mixed(100, seed=7)
    frame = table.frame.assign(weight=np.nan)
    data, imputation = fill_missing(frame, table.schema)
    assert (data["weight"] == 0.0).all() and imputation["weight"]["rule"].startswith("zero")


def test_a_constant_node_keeps_its_value_and_loses_its_parents():
    table = simulate.chain(200, seed=8)
    frame = table.frame.assign(c=1.0)
    fitted = fit_scm(frame, table.schema, table.dag, "fast", seed=0)
    assert fitted.dropped_edges == [["b", "c"]]
    assert (fitted.sample(50, seed=0)["c"] == 1.0).all()


def test_a_class_with_two_rows_and_integer_like_labels():
    table = simulate.collider(200, seed=9)
    frame = table.frame.copy()
    frame.loc[:1, TARGET] = "2"
    schema = simulate.schema_for(frame)
    for quality in ("fast", "good"):
        fitted = fit_scm(frame, schema, table.dag, quality, seed=0)
        assert set(fitted.sample(2000, seed=1)[TARGET]) == {"0", "1", "2"}
    # dowhy's cross-validated selection cannot score a class rarer than its folds: the node falls
    # back to the fast mechanism and the report says why
    assignment = {r["node"]: r["assignment"] for r in fitted.nodes}
    assert assignment[TARGET].startswith("fast (dowhy good failed")
    assert assignment["c"] == "good"


def test_bad_inputs_are_stage_errors():
    table = simulate.chain(100, seed=10)
    with pytest.raises(StageError, match=r"\[fit\] chain: .*quality"):
        fit_scm(table.frame, table.schema, table.dag, "perfect", dataset="chain")
    if importlib.util.find_spec("autogluon") is None:
        with pytest.raises(StageError, match="AutoGluon"):
            fit_scm(table.frame, table.schema, table.dag, "best", dataset="chain")
    cyclic = nx.DiGraph(table.dag)
    cyclic.add_edge(TARGET, "a")
    with pytest.raises(StageError, match="cycle"):
        fit_scm(table.frame, table.schema, cyclic, dataset="chain")
    partial = table.dag.subgraph(["a", "b"]).copy()
    with pytest.raises(StageError, match="missing"):
        fit_scm(table.frame, table.schema, partial, dataset="chain")
    with pytest.raises(StageError, match="single class"):
        fit_scm(table.frame.assign(target="0"), table.schema, table.dag, dataset="chain")
