"""The built-in backbone: invariances, missing values, wide tables, weights and training-state files, prior."""

from itertools import combinations

import numpy as np
import pytest
import torch

from causalmixft.model.backbone import load_model, predict_proba, save_model
from causalmixft.model.checkpoint import load_training_state, save_training_state
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.interface import BuiltinBackbone, load_backbone
from causalmixft.model.pretrain import build_optimizers, prior_loss
from causalmixft.model.prior import PriorConfig, sample_batch
from model_helpers import tiny_model, toy_table

ATOL = 1e-5


@pytest.fixture(scope="module")
def table():
    x, y = toy_table(60, n_features=6, n_classes=3, seed=1)
    categorical = np.array([False, False, True, False, False, False])
    x[:, 2] = np.round(np.abs(x[:, 2]) * 2)  # a categorical column holds integer codes
    return x[:40], y[:40], x[40:], categorical


def test_prediction_is_invariant_to_context_row_order(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    perm = np.random.default_rng(0).permutation(len(xc))
    base = predict_proba(model, xc, yc, xq, 3, cat)
    permuted = predict_proba(model, xc[perm], yc[perm], xq, 3, cat)
    np.testing.assert_allclose(permuted, base, atol=ATOL)


def test_prediction_is_equivariant_to_query_row_order(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    perm = np.random.default_rng(1).permutation(len(xq))
    base = predict_proba(model, xc, yc, xq, 3, cat)
    np.testing.assert_allclose(predict_proba(model, xc, yc, xq[perm], 3, cat), base[perm], atol=ATOL)


def test_prediction_is_invariant_to_feature_order(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    perm = np.random.default_rng(2).permutation(xc.shape[1])
    base = predict_proba(model, xc, yc, xq, 3, cat)
    np.testing.assert_allclose(predict_proba(model, xc[:, perm], yc, xq[:, perm], 3, cat[perm]), base, atol=ATOL)


def test_query_rows_do_not_influence_each_other(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    batch = predict_proba(model, xc, yc, xq, 3, cat)
    for i in (0, 7, len(xq) - 1):
        np.testing.assert_allclose(predict_proba(model, xc, yc, xq[i : i + 1], 3, cat)[0], batch[i], atol=ATOL)
    # Chunked prediction is the same computation as one batch.
    np.testing.assert_allclose(predict_proba(model, xc, yc, xq, 3, cat, query_chunk=3), batch, atol=ATOL)


def test_context_labels_matter(table):
    """Guards the invariance tests above: a model ignoring its context would pass them trivially."""
    model = tiny_model()
    xc, yc, xq, cat = table
    flipped = (yc + 1) % 3
    assert np.abs(predict_proba(model, xc, flipped, xq, 3, cat) - predict_proba(model, xc, yc, xq, 3, cat)).max() > 1e-3


def test_missing_values_give_finite_probabilities(table):
    model = tiny_model()
    xc, yc, xq, cat = (a.copy() for a in table)
    rng = np.random.default_rng(3)
    xc[rng.random(xc.shape) < 0.2] = np.nan
    xq[rng.random(xq.shape) < 0.2] = np.nan
    xc[:, 4] = np.nan  # a column missing in every context row
    xq[0] = np.nan  # a query row with nothing observed
    xc[:, 5] = 3.0  # a constant column
    proba = predict_proba(model, xc, yc, xq, 3, cat)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    # Missingness is information: the NaN indicator changes the prediction of that row.
    assert np.abs(proba[0] - predict_proba(model, xc, yc, np.nan_to_num(xq[:1]), 3, cat)[0]).max() > 1e-6


def test_categorical_mask_is_used(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    as_numeric = predict_proba(model, xc, yc, xq, 3, np.zeros_like(cat))
    as_categorical = predict_proba(model, xc, yc, xq, 3, cat)
    assert np.abs(as_numeric - as_categorical).max() > 1e-4


def test_class_shift_averaging_removes_label_index_preferences(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    single = predict_proba(model, xc, yc, xq, 3, cat)
    averaged = predict_proba(model, xc, yc, xq, 3, cat, ensemble=Ensemble(n_class_shifts=3))
    assert np.abs(averaged - single).max() > 1e-4
    np.testing.assert_allclose(averaged.sum(1), 1.0, atol=1e-5)
    # Averaged over all cyclic shifts, renaming the classes cyclically only renames the columns.
    for shift in (1, 2):
        renamed = predict_proba(model, xc, (yc + shift) % 3, xq, 3, cat, ensemble=Ensemble(n_class_shifts=3))
        np.testing.assert_allclose(renamed[:, (np.arange(3) + shift) % 3], averaged, atol=ATOL)
    assert not np.allclose(predict_proba(model, xc, (yc + 1) % 3, xq, 3, cat)[:, [1, 2, 0]], single, atol=ATOL)
    backbone = BuiltinBackbone(model, Ensemble(n_class_shifts=3))
    np.testing.assert_array_equal(backbone.predict_proba(xc, yc, xq, 3, cat), averaged)


def test_one_column_per_class_and_class_limit_enforced(table):
    model = tiny_model()
    xc, yc, xq, cat = table
    proba = predict_proba(model, xc, yc, xq, 3, cat)
    assert proba.shape == (len(xq), 3)
    with pytest.raises(ValueError, match="exceed"):
        predict_proba(model, xc, yc, xq, 11, cat)


def test_tables_wider_than_max_features_use_feature_subsets():
    model = tiny_model(max_features=4)
    x, y = toy_table(30, n_features=10, seed=4)
    xc, yc, xq = x[:20], y[:20], x[20:]
    single = predict_proba(model, xc, yc, xq, 2, ensemble=Ensemble(n_feature_subsets=1), random_state=5)
    # One subset: the prediction is exactly the model's prediction on some 4 of the 10 columns.
    matches = [cols for cols in combinations(range(10), 4)
               if np.allclose(predict_proba(model, xc[:, cols], yc, xq[:, cols], 2), single, atol=1e-6)]
    assert len(matches) == 1
    averaged = predict_proba(model, xc, yc, xq, 2, ensemble=Ensemble(n_feature_subsets=4), random_state=5)
    np.testing.assert_array_equal(averaged, predict_proba(model, xc, yc, xq, 2, random_state=5))  # 4: the default
    assert not np.allclose(averaged, single)
    np.testing.assert_allclose(averaged.sum(1), 1.0, atol=1e-5)


def test_weights_round_trip_gives_bit_identical_predictions(tmp_path, table):
    model = tiny_model(seed=3)
    xc, yc, xq, cat = table
    save_model(model, tmp_path / "w", extra={"note": "test"})
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["config.json", "model.safetensors"]
    reloaded = load_model(tmp_path / "w")
    assert reloaded.cfg == model.cfg
    np.testing.assert_array_equal(predict_proba(reloaded, xc, yc, xq, 3, cat), predict_proba(model, xc, yc, xq, 3, cat))
    backbone = load_backbone(tmp_path / "w", "cpu")
    assert isinstance(backbone, BuiltinBackbone)
    np.testing.assert_array_equal(backbone.predict_proba(xc, yc, xq, 3, cat), predict_proba(model, xc, yc, xq, 3, cat))


def test_missing_weights_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_backbone(tmp_path / "nothing")


def test_prior_batch_shapes_and_classes():
    cfg = PriorConfig(min_rows=40, max_rows=60, max_features=7, max_classes=6)
    for seed in range(6):
        batch = sample_batch(4, torch.Generator().manual_seed(seed), cfg)
        b, rows, features = batch.x.shape
        assert b == 4 and 40 <= rows <= 60 and 1 <= features <= 7
        assert batch.y.shape == (4, rows) and batch.categorical.shape == (4, features)
        assert 0 < batch.n_context < rows
        for i in range(4):
            k = int(batch.n_classes[i])
            assert 2 <= k <= 6
            labels = batch.y[i].unique()
            assert labels.min() >= 0 and labels.max() < k and len(labels) >= 2
            codes = batch.x[i][:, batch.categorical[i]]
            codes = codes[~torch.isnan(codes)]
            assert torch.equal(codes, codes.round()) and (codes >= 0).all()
    again = sample_batch(4, torch.Generator().manual_seed(5), cfg)
    assert torch.equal(torch.nan_to_num(again.x, 99.0), torch.nan_to_num(batch.x, 99.0))


def _train_step(model, optimizers, generator, cfg):
    batch = sample_batch(2, generator, cfg)
    loss = prior_loss(model, batch, torch.device("cpu"))
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimizers.values():
        opt.step()
    return loss.item()


def test_training_state_resume_gives_identical_next_loss(tmp_path):
    cfg = PriorConfig(min_rows=30, max_rows=40, max_features=5)
    model = tiny_model(seed=1).train()
    optimizers = build_optimizers(model, lr=1e-3, muon_lr=0.02, weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        _train_step(model, optimizers, generator, cfg)
    save_training_state(tmp_path, model, optimizers, generator, {"step": 2})
    expected = [_train_step(model, optimizers, generator, cfg) for _ in range(2)]

    resumed = tiny_model(seed=99).train()  # different weights until the state is restored
    resumed_optimizers = build_optimizers(resumed, lr=1e-3, muon_lr=0.02, weight_decay=0.01)
    resumed_generator = torch.Generator().manual_seed(12345)
    assert load_training_state(tmp_path, resumed, resumed_optimizers, resumed_generator) == {"step": 2}
    assert [_train_step(resumed, resumed_optimizers, resumed_generator, cfg) for _ in range(2)] == expected
    assert load_training_state(tmp_path / "absent", resumed, resumed_optimizers, resumed_generator) is None


def test_sum_threshold_prior_labels_thresholded_sums():
    from causalmixft.model.prior import sum_threshold_latent

    for seed in range(8):
        x, latent = sum_threshold_latent(200, 6, torch.Generator().manual_seed(seed))
        assert torch.isfinite(x).all() and torch.isfinite(latent).all()
        # The latent label is (up to small noise) linear in the features.
        design = torch.cat([x, torch.ones(200, 1)], 1).double()
        fit = torch.linalg.lstsq(design, latent.double()[:, None]).solution
        residual = latent.double() - (design @ fit)[:, 0]
        assert residual.std() < 0.15 * latent.double().std()
    cfg = PriorConfig(min_rows=40, max_rows=60, max_features=7, sum_fraction=1.0, tree_fraction=0.0)
    batch = sample_batch(4, torch.Generator().manual_seed(0), cfg)
    assert torch.isfinite(torch.nan_to_num(batch.x, 0.0)).all()
