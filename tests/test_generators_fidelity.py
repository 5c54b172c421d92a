"""Fidelity metrics: they must separate a faithful copy from a broken one."""

import numpy as np
import pandas as pd
import pytest

from causalmixft.causal import simulate
from causalmixft.generators.fidelity import (
    correlation_distance,
    fidelity_report,
    macro_auc,
    marginal_distances,
    total_variation,
)
from causalmixft.data.schema import TARGET


@pytest.fixture(scope="module")
def tables():
    train = simulate.mixed(250, seed=1)
    same_law = simulate.mixed(250, seed=2).frame  # independent rows from the same SCM
    val = simulate.mixed(150, seed=3).frame
    broken = same_law.copy()
    rng = np.random.default_rng(0)
    for column in broken.columns:  # every marginal kept, every dependence destroyed
        broken[column] = broken[column].to_numpy()[rng.permutation(len(broken))]
    return train, same_law, broken, val


def test_same_law_looks_real_and_shuffled_columns_do_not(tables):
    train, same_law, broken, val = tables
    good = fidelity_report(train.frame, same_law, val, train.schema, seed=0)
    bad = fidelity_report(train.frame, broken, val, train.schema, seed=0)
    assert 0.35 < good["two_sample_auc"] < 0.62
    assert bad["two_sample_auc"] > 0.7
    assert good["tstr"]["train_on_synthetic_auc"] > 0.9
    assert bad["tstr"]["train_on_synthetic_auc"] < 0.65
    assert good["tstr"]["train_on_real_auc"] == bad["tstr"]["train_on_real_auc"] > 0.9
    assert good["correlation_distance"]["mean_abs_diff"] < 0.06 < bad["correlation_distance"]["mean_abs_diff"]
    # shuffling keeps marginals: the marginal distance cannot tell the two apart, by design
    assert abs(good["marginal_distance"]["mean"] - bad["marginal_distance"]["mean"]) < 0.05
    assert good["rows"] == {"real_train": 250, "synthetic": 250, "real_val": 150}


def test_report_is_deterministic_for_a_seed(tables):
    train, same_law, _, val = tables
    first = fidelity_report(train.frame.iloc[:100], same_law.iloc[:64], val.iloc[:50], train.schema, seed=4)
    assert first == fidelity_report(train.frame.iloc[:100], same_law.iloc[:64], val.iloc[:50], train.schema, seed=4)


def test_marginal_distances_per_kind(tables):
    train, *_ = tables
    identical = marginal_distances(train.frame, train.frame, train.schema)
    assert identical["mean"] == 0.0
    assert identical["per_feature"]["colour"]["metric"] == "tv"
    assert identical["per_feature"]["size"]["metric"] == "ks"
    shifted = train.frame.assign(size=train.frame["size"] + 100)
    assert marginal_distances(train.frame, shifted, train.schema)["per_feature"]["size"]["value"] == 1.0
    assert total_variation(pd.Series(["a", "a"]), pd.Series(["b", "b"])) == 1.0
    assert total_variation(pd.Series(["a", "b"]), pd.Series([np.nan, np.nan])) is None


def test_correlation_distance_handles_constant_and_missing_columns(tables):
    train, *_ = tables
    degenerate = train.frame.assign(size=1.0, weight=np.nan)
    distance = correlation_distance(train.frame, degenerate, train.schema)
    assert np.isfinite(distance["frobenius"]) and distance["mean_abs_diff"] > 0
    assert correlation_distance(train.frame, train.frame, train.schema)["frobenius"] == 0.0


def test_macro_auc_binary_multiclass_and_undefined():
    labels = np.array([0, 0, 1, 1])
    assert macro_auc(labels, np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])) == 1.0
    three = np.array([0, 1, 2])
    assert macro_auc(three, np.eye(3)) == 1.0
    assert macro_auc(np.array([1, 1]), np.array([[0.2, 0.8], [0.3, 0.7]])) is None


def test_synthetic_rows_of_one_class_give_no_tstr_score(tables):
    train, same_law, _, val = tables
    one_class = same_law[same_law[TARGET] == "1"].iloc[:40]
    report = fidelity_report(train.frame, one_class, val, train.schema, seed=0)
    assert report["tstr"]["train_on_synthetic_auc"] is None and report["tstr"]["difference"] is None
    assert report["label_distribution"]["synthetic"]["1"] == 1.0
    assert report["label_distribution"]["total_variation"] == pytest.approx(
        report["label_distribution"]["real_train"]["0"]
    )


def test_missing_values_in_the_real_rows_are_handled(tables):
    train, same_law, _, val = tables
    holes = train.frame.copy()
    holes.loc[::4, "size"] = np.nan
    holes.loc[::5, "colour"] = np.nan
    report = fidelity_report(holes, same_law.iloc[:80], val.iloc[:60], train.schema, seed=0)
    # NaN is kept (module docstring), so the two-sample classifier can see it: a real row has a hole
    # w.p. 1/4 + 1/5 - 1/20 = 0.4 and no synthetic row has one. Those real rows rank below every
    # synthetic row, the others are a coin flip against them: AUC = 0.4 + 0.6 * 0.5 = 0.7 (80 rows a side).
    assert report["two_sample_auc"] == pytest.approx(0.7, abs=0.08)
    assert np.isfinite(report["correlation_distance"]["frobenius"])
    assert report["tstr"]["train_on_real_auc"] > 0.8
