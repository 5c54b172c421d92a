"""The TabICL adapter (causalmixft.model.tabicl) on randomly initialised weights of TabICL's architecture,
offline. Error paths run everywhere; the rest where tabicl is installed (make test-tabicl)."""

import json

import numpy as np
import pytest
import torch

from adapter_checks import (check_conda_env, check_finetuning, check_inference, check_round_trip, require,
                            run_tiny_workflow, table)
from causalmixft.model import tabicl
from causalmixft.model.adapters import adapter_name, load_adapter

# A small TabICL (the constructor's defaults are the published model's sizes); v2 layout (zero_init off).
CONFIG = {"max_classes": 10, "embed_dim": 16, "col_num_blocks": 1, "col_nhead": 2, "col_num_inds": 8,
          "row_num_blocks": 1, "row_nhead": 2, "row_num_cls": 2, "icl_num_blocks": 2, "icl_nhead": 2,
          "zero_init": False}


def test_conda_env_pins_what_the_venv_pins():
    check_conda_env("tabicl")

def test_missing_checkpoint_names_the_path_and_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no TabICL checkpoint at .*tabicl-v2.*config\.json.*never"):
        tabicl.TabICLBackbone.load(tmp_path / "tabicl-v2")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text(json.dumps({"backbone": "tabicl", "config": CONFIG}))
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        tabicl.TabICLBackbone.load(tmp_path / "partial")
    (tmp_path / "tabicl-classifier-v2.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="causalmixft.model.tabicl convert"):
        adapter_name(tmp_path / "tabicl-classifier-v2.ckpt")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tabicl._model.tabicl", None)
    with pytest.raises(ImportError, match="make venv-tabicl"):
        tabicl.TabICLBackbone.random(**CONFIG)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    require("tabicl", "tabicl._model.tabicl")
    directory = tmp_path_factory.mktemp("tabicl")
    tabicl.TabICLBackbone.random(seed=0, **CONFIG).save(directory)
    return directory


def test_random_weights_save_and_reload_bit_identically(checkpoint):
    assert adapter_name(checkpoint) == "tabicl"
    check_round_trip(checkpoint, checkpoint / "model.safetensors", tabicl.TabICLBackbone.random(seed=1, **CONFIG))


def test_inference(checkpoint):
    # TabICL's column embedding sums over context rows in another order after a permutation: float32 drift.
    check_inference(load_adapter(checkpoint, "cpu"), atol=2e-3)


def test_finetuning(checkpoint, tmp_path):
    check_finetuning(checkpoint, tmp_path)


def test_convert_a_published_style_checkpoint(checkpoint, tmp_path):
    """TabICL's .ckpt layout ({config, state_dict}, read with weights_only=True) becomes a checkpoint directory."""
    source = load_adapter(checkpoint, "cpu")
    torch.save({"config": CONFIG, "state_dict": source.module.state_dict()}, tmp_path / "published.ckpt")
    converted = load_adapter(tabicl.convert(tmp_path / "published.ckpt", tmp_path / "converted"), "cpu")
    np.testing.assert_array_equal(converted.predict_proba(*table(), 3), source.predict_proba(*table(), 3))
    assert json.loads((tmp_path / "converted" / "config.json").read_text())["metadata"]["converted_from"] == "published.ckpt"
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a TabICL checkpoint"):
        tabicl.convert(tmp_path / "other.ckpt", tmp_path / "nothing")


@pytest.mark.slow
def test_tiny_workflow_run(checkpoint, tmp_path):
    run_tiny_workflow("tabicl", checkpoint, checkpoint / "model.safetensors", tmp_path)
