"""The Mitra adapter. Error paths run everywhere; the rest only where AutoGluon's Mitra is importable
(the optional extra ``[mitra]``), offline, with randomly initialised weights of the Tab2D architecture."""

import json

import numpy as np
import pytest
import torch

from causalmixft.model import mitra
from causalmixft.model.finetune import FinetuneConfig, finetune, finetune_step
from causalmixft.model.interface import Backbone, load_backbone
from causalmixft.model.sklearn import TabularFMClassifier
from model_helpers import toy_table


def test_missing_autogluon_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(mitra, "TAB2D_MODULE", "autogluon_that_is_not_installed.tab2d")
    with pytest.raises(ImportError, match=r"pip install 'causalmixft\[mitra\]'"):
        mitra.MitraBackbone.random(dim=16, n_layers=1, n_heads=2)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        mitra.MitraBackbone.load(tmp_path / "mitra-classifier")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text(json.dumps({"dim": 16}))
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        mitra.MitraBackbone.load(tmp_path / "partial")


@pytest.fixture(scope="module")
def tab2d():
    return pytest.importorskip(mitra.TAB2D_MODULE, reason="AutoGluon's Mitra (extra [mitra]) is not installed")


@pytest.fixture(scope="module")
def checkpoint(tab2d, tmp_path_factory):
    directory = tmp_path_factory.mktemp("mitra")
    mitra.MitraBackbone.random(dim=16, n_layers=2, n_heads=2, seed=0).save(directory)
    return directory


@pytest.fixture(scope="module")
def table():
    x, y = toy_table(70, n_features=4, n_classes=3, seed=2)
    return x[:50], y[:50], x[50:]


def test_random_weights_save_and_reload_bit_identically(checkpoint, table):
    config = json.loads((checkpoint / "config.json").read_text())
    assert {k: config[k] for k in ("dim", "dim_output", "n_layers", "n_heads", "task")} == {
        "dim": 16, "dim_output": 10, "n_layers": 2, "n_heads": 2, "task": "CLASSIFICATION"}
    first = mitra.MitraBackbone.load(checkpoint, "cpu")
    second = load_backbone(checkpoint, "cpu")
    assert isinstance(second, mitra.MitraBackbone) and isinstance(second, Backbone)
    proba = first.predict_proba(*table, 3)
    assert proba.shape == (20, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(second.predict_proba(*table, 3), proba)
    other = mitra.MitraBackbone.random(dim=16, n_layers=2, n_heads=2, seed=1)
    assert not np.allclose(other.predict_proba(*table, 3), proba)


def test_row_order_query_independence_and_missing_values(checkpoint, table):
    backbone = mitra.MitraBackbone.load(checkpoint, "cpu")
    xc, yc, xq = table
    base = backbone.predict_proba(xc, yc, xq, 3)
    perm = np.random.default_rng(0).permutation(len(xc))
    np.testing.assert_allclose(backbone.predict_proba(xc[perm], yc[perm], xq, 3), base, atol=1e-5)
    np.testing.assert_allclose(backbone.predict_proba(xc, yc, xq[:1], 3)[0], base[0], atol=1e-5)
    holes = xc.copy()
    holes[::3, 1] = np.nan
    holes[:, 2] = 1.0  # constant in the context: dropped as AutoGluon's preprocessor does
    assert np.isfinite(backbone.predict_proba(holes, yc, np.where(xq > 1, np.nan, xq), 3)).all()


def test_finetuning_step_learns_and_the_loop_is_deterministic(checkpoint, tmp_path):
    x, y = toy_table(160, n_features=4, seed=3)
    backbone = mitra.MitraBackbone.load(checkpoint, "cpu")
    start = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    optimizer = torch.optim.AdamW(backbone.module.parameters(), lr=3e-3)
    episode = [torch.as_tensor(a) for a in (x[:60], y[:60], x[60:100], y[60:100])]
    backbone.module.train()
    losses = [finetune_step(backbone, optimizer, *episode, 2, torch.zeros(4, dtype=torch.bool), 1.0)
              for _ in range(15)]
    assert losses[-1] < losses[0]  # repeated steps on one episode fit it
    assert any(not torch.equal(start[k], v) for k, v in backbone.module.state_dict().items())
    backbone.save(tmp_path / "tuned")
    reloaded = load_backbone(tmp_path / "tuned", "cpu")
    np.testing.assert_array_equal(reloaded.predict_proba(x[:100], y[:100], x[130:], 2),
                                  backbone.predict_proba(x[:100], y[:100], x[130:], 2))

    cfg = FinetuneConfig(steps=3, eval_every=3, lr=1e-3, batch_rows=64, device="cpu")

    def tune():
        return finetune(mitra.MitraBackbone.load(checkpoint, "cpu"), x[:100], y[:100], x[:100], y[:100],
                        x[100:130], y[100:130], x[130:], y[130:], 2, None, cfg, seed=0)

    first, second = tune(), tune()
    assert first.curve == second.curve and first.steps_run == 3 and len(first.curve) == 2
    assert isinstance(first.model, mitra.MitraBackbone)


def test_sklearn_wrapper_on_a_mitra_checkpoint(checkpoint, tmp_path):
    x, y = toy_table(90, n_features=4, seed=4)
    estimator = TabularFMClassifier(weights=checkpoint, device="cpu").fit(x[:60], y[:60])
    assert estimator.predict_proba(x[60:]).shape == (30, 2)
    estimator.save(tmp_path / "clf")
    np.testing.assert_array_equal(TabularFMClassifier.load(tmp_path / "clf").predict_proba(x[60:]),
                                  estimator.predict_proba(x[60:]))
