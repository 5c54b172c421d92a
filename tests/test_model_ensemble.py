"""The inference-time ensemble: member plan, preprocessing fitted on context rows, cost, determinism."""

from collections import Counter

import numpy as np
import pytest
import torch
from model_helpers import tiny_model, toy_table

from causalmixft.model.backbone import plan_members, predict_proba
from causalmixft.model.ensemble import (Ensemble, applicable_preprocessings, ensemble_members, permute_categories,
                                        preprocess)
from causalmixft.model.interface import BuiltinBackbone


def skewed_table(n_rows=120, seed=0):
    """Column 0: log-normal (skewed, positive); 1: normal; 2: categorical codes 0..3."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.lognormal(0, 1, n_rows), rng.normal(size=n_rows), rng.integers(0, 4, n_rows)], 1)
    y = ((np.log(x[:, 0]) + x[:, 1] + (x[:, 2] == 1)) > 0.5).astype(np.int64)
    return x.astype(np.float32), y, np.array([False, False, True])


def test_every_prefix_is_balanced_over_shifts_and_preprocessings():
    every = Ensemble(n_estimators=6, n_class_shifts=None)
    members = ensemble_members(every, n_classes=2, n_features=3, max_features=100)
    assert {(m.class_shift, m.preprocessing) for m in members} == {(s, p) for s in (0, 1)
                                                                   for p in ("none", "quantile", "log")}
    assert Counter(m.class_shift for m in members[:4]) == {0: 2, 1: 2}
    assert {m.preprocessing for m in members[:3]} == {"none", "quantile", "log"}
    assert (members[0].class_shift, members[0].preprocessing) == (0, "none")
    # A second round permutes category codes (only where the table has categorical columns).
    longer = ensemble_members(Ensemble(n_estimators=8, n_class_shifts=None), 2, 3, 100, has_categorical=True)
    assert [m.category_seed is None for m in longer] == [True] * 6 + [False] * 2
    plain = Ensemble(n_estimators=8, n_class_shifts=None, preprocessing=["none"])
    assert plain.preprocessing == ("none",)  # a list (JSON, argparse) becomes a tuple
    assert all(m.category_seed is None for m in ensemble_members(plain, 2, 3, 100, has_categorical=False))
    assert ensemble_members(Ensemble(n_estimators=8, n_class_shifts=1, preprocessing=("none",)), 2, 3,
                            100)[5].class_shift == 0
    with pytest.raises(ValueError, match="at least 1"):
        ensemble_members(Ensemble(), 2, 3, 100)  # no n_estimators: no member list of this kind


def test_preprocessings_apply_only_where_they_change_the_table():
    x, _, categorical = skewed_table()
    assert applicable_preprocessings(x, categorical) == ["none", "quantile", "log"]
    assert applicable_preprocessings(x[:, 1:], categorical[1:]) == ["none", "quantile"]  # nothing skewed
    assert applicable_preprocessings(x[:, 2:], categorical[2:]) == ["none"]  # categorical only
    with pytest.raises(ValueError, match="unknown preprocessing"):
        applicable_preprocessings(x, categorical, ["none", "rank"])


def test_preprocessing_is_fitted_on_the_context_only():
    x, _, categorical = skewed_table()
    context, query = x[:80], x[80:]
    for kind in ("quantile", "log"):
        pc, pq = preprocess(kind, context, query, categorical)
        np.testing.assert_array_equal(pc[:, 2], context[:, 2])  # categorical codes untouched
        # A query row's transform does not depend on the other query rows.
        _, alone = preprocess(kind, context, query[:1], categorical)
        np.testing.assert_array_equal(alone[0], pq[0])
        order = np.argsort(query[:, 0])
        assert np.all(np.diff(pq[order, 0]) >= 0)  # monotone
    pc, pq = preprocess("quantile", context, query, categorical)
    assert abs(pc[:, 0].mean()) < 0.05 and 0.8 < pc[:, 0].std() < 1.1  # normal scores of the context
    _, log_query = preprocess("log", context, query, categorical)
    np.testing.assert_allclose(log_query[:, 0], np.log1p(query[:, 0]), rtol=1e-6)
    np.testing.assert_array_equal(log_query[:, 1], query[:, 1])  # not skewed: left alone
    holes = context.copy()
    holes[::5, 0] = np.nan
    assert np.isnan(preprocess("quantile", holes, query, categorical)[0][::5, 0]).all()


def test_category_permutation_relabels_context_and_query_alike():
    x, _, categorical = skewed_table()
    a = permute_categories(x, categorical, seed=3, n_codes=4)
    np.testing.assert_array_equal(a[:, :2], x[:, :2])
    mapping = {float(old): float(new) for old, new in zip(x[:, 2], a[:, 2])}
    assert sorted(mapping) == sorted(mapping.values()) == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(permute_categories(x[:7], categorical, 3, 4), a[:7])


def test_the_ensemble_is_deterministic_and_one_member_is_a_plain_pass():
    model = tiny_model()
    x, y, categorical = skewed_table()
    args = (model, x[:80], y[:80], x[80:], 2, categorical)
    first = predict_proba(*args, ensemble=Ensemble(n_estimators=8), random_state=1)
    np.testing.assert_array_equal(first, predict_proba(*args, ensemble=Ensemble(n_estimators=8), random_state=1))
    assert not np.allclose(first, predict_proba(*args, ensemble=Ensemble(n_estimators=1)))
    np.testing.assert_allclose(predict_proba(*args, ensemble=Ensemble(n_estimators=1)), predict_proba(*args),
                               atol=1e-6)
    np.testing.assert_allclose(first.sum(1), 1, atol=1e-5)


def test_a_full_round_renames_output_columns_with_the_classes():
    model = tiny_model(seed=1)
    x, y = toy_table(90, n_features=4, n_classes=3, seed=2)
    categorical = np.zeros(4, bool)
    x[:, 0] = np.exp(x[:, 0])  # skewed and positive: the log member applies
    n_grid = 3 * len(applicable_preprocessings(x[:60], categorical))
    round_ = Ensemble(n_estimators=n_grid, n_class_shifts=None)
    base = predict_proba(model, x[:60], y[:60], x[60:], 3, categorical, ensemble=round_)
    for shift in (1, 2):
        renamed = predict_proba(model, x[:60], (y[:60] + shift) % 3, x[60:], 3, categorical, ensemble=round_)
        np.testing.assert_allclose(renamed[:, (np.arange(3) + shift) % 3], base, atol=1e-5)


def test_wide_tables_cost_one_pass_per_member():
    model = tiny_model(max_features=4)
    x, y = toy_table(60, n_features=10, n_classes=3)
    categorical = np.zeros(10, bool)
    passes = []
    hook = model.register_forward_hook(lambda module, inputs, output: passes.append(inputs[0].shape[-1]))
    five = Ensemble(n_estimators=5, n_class_shifts=None)
    predict_proba(model, x[:40], y[:40], x[40:], 3, categorical, ensemble=five)
    assert passes == [4] * 5
    passes.clear()
    shifts_on_subsets = Ensemble(n_class_shifts=3, n_feature_subsets=4)
    predict_proba(model, x[:40], y[:40], x[40:], 3, categorical, ensemble=shifts_on_subsets)
    assert len(passes) == 12  # without n_estimators: every shift on every subset
    hook.remove()
    members = plan_members(model.cfg, x[:40], 3, categorical, Ensemble(n_estimators=5))
    assert len({m.columns for m in members}) == 5


def test_the_backbone_carries_the_ensemble_settings():
    model = tiny_model()
    x, y, categorical = skewed_table()
    ensemble = Ensemble(n_estimators=4, preprocessing=("none", "log"), category_orders=False)
    backbone = BuiltinBackbone(model, ensemble)
    assert backbone.ensemble is ensemble
    np.testing.assert_array_equal(backbone.predict_proba(x[:80], y[:80], x[80:], 2, categorical),
                                  predict_proba(model, x[:80], y[:80], x[80:], 2, categorical, ensemble=ensemble))
    with torch.no_grad():
        assert BuiltinBackbone(model).ensemble == Ensemble()  # a bare backbone predicts in one pass
        assert Ensemble().n_estimators is None and Ensemble().n_class_shifts == 1
