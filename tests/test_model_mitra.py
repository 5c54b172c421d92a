"""The Mitra adapter (causalmixft.model.mitra) on randomly initialised weights of AutoGluon's Tab2D
architecture, offline. Error paths and the pin check run everywhere; the rest where AutoGluon's Mitra is
installed (make test-mitra)."""

import json
import re

import numpy as np
import pytest

from adapter_checks import (check_conda_env, check_finetuning, check_inference, check_round_trip, require,
                            run_tiny_workflow)
from causalmixft.model import mitra
from causalmixft.model.adapters import adapter_name
from causalmixft.model.interface import Backbone, load_backbone
from causalmixft.model.sklearn import TabularFMClassifier
from conftest import REPO
from model_helpers import toy_table

# The pins requirements-mitra.txt may hold differently from requirements.txt (the file's header says why).
MITRA_OVERRIDES = {"pyarrow", "python-dateutil"}


def pins(path):
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)$", line).groups() for line in lines if "==" in line)


def test_mitra_environment_repeats_the_default_pins():
    default, mitra_env = pins(REPO / "requirements.txt"), pins(REPO / "requirements-mitra.txt")
    differing = {name for name, version in default.items() if mitra_env.get(name) != version}
    assert differing == MITRA_OVERRIDES
    assert mitra_env["torch"] == "2.13.0"


def test_conda_env_pins_what_the_venv_pins():
    check_conda_env("mitra")

def test_missing_autogluon_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(mitra, "TAB2D_MODULE", "autogluon_that_is_not_installed.tab2d")
    with pytest.raises(ImportError, match="make venv-mitra"):
        mitra.MitraBackbone.random(dim=16, n_layers=1, n_heads=2)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no Mitra checkpoint at .*mitra-classifier.*config\.json.*never"):
        mitra.MitraBackbone.load(tmp_path / "mitra-classifier")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text(json.dumps({"dim": 16}))
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        mitra.MitraBackbone.load(tmp_path / "partial")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    require("mitra", mitra.TAB2D_MODULE)
    directory = tmp_path_factory.mktemp("mitra")
    mitra.MitraBackbone.random(dim=16, n_layers=2, n_heads=2, seed=0).save(directory)
    return directory


def test_random_weights_save_and_reload_bit_identically(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    assert {k: config[k] for k in ("dim", "dim_output", "n_layers", "n_heads", "task")} == {
        "dim": 16, "dim_output": 10, "n_layers": 2, "n_heads": 2, "task": "CLASSIFICATION"}
    assert adapter_name(checkpoint) == "mitra"
    assert isinstance(load_backbone(checkpoint, "cpu"), mitra.MitraBackbone)
    assert isinstance(load_backbone(checkpoint, "cpu"), Backbone)
    check_round_trip(checkpoint, checkpoint / "model.safetensors",
                     mitra.MitraBackbone.random(dim=16, n_layers=2, n_heads=2, seed=1))


def test_inference(checkpoint):
    check_inference(mitra.MitraBackbone.load(checkpoint, "cpu"))


def test_finetuning(checkpoint, tmp_path):
    check_finetuning(checkpoint, tmp_path)


def test_sklearn_wrapper_on_a_mitra_checkpoint(checkpoint, tmp_path):
    x, y = toy_table(90, n_features=4, seed=4)
    estimator = TabularFMClassifier(weights=checkpoint, device="cpu").fit(x[:60], y[:60])
    assert estimator.predict_proba(x[60:]).shape == (30, 2)
    estimator.save(tmp_path / "clf")
    np.testing.assert_array_equal(TabularFMClassifier.load(tmp_path / "clf").predict_proba(x[60:]),
                                  estimator.predict_proba(x[60:]))


@pytest.mark.slow
def test_tiny_workflow_run(checkpoint, tmp_path):
    run_tiny_workflow("mitra", checkpoint, checkpoint / "model.safetensors", tmp_path)
