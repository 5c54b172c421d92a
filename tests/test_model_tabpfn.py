"""The TabPFN adapter (causalmixft.model.tabpfn) on randomly initialised weights of two of TabPFN's
architectures (v2, the TabArena one, and v3.5, the package's default), offline. Error paths run
everywhere; the rest where tabpfn is installed (make test-tabpfn)."""

import pytest
import torch

from adapter_checks import (check_conda_env, check_finetuning, check_inference, check_round_trip, require,
                            run_tiny_workflow)
from causalmixft.model import tabpfn
from causalmixft.model.adapters import adapter_name, load_adapter

# Small versions of the real architectures (one CPU thread, seconds per test).
ARCHITECTURES = {
    "tabpfn_v2": {"max_num_classes": 10, "emsize": 16, "nhead": 2, "nlayers": 2, "features_per_group": 2},
    "tabpfn_v3_5": {"max_num_classes": 10, "num_buckets": 16, "embed_dim": 16, "dist_embed_num_blocks": 1,
                    "dist_embed_num_heads": 2, "dist_embed_num_inducing_points": 8, "feat_agg_num_blocks": 1,
                    "feat_agg_num_heads": 2, "feat_agg_num_cls_tokens": 2, "nlayers": 2, "icl_num_heads": 2,
                    "decoder_head_dim": 8, "decoder_num_heads": 2, "softmax_scaling_mlp_hidden_dim": 8},
}


def test_conda_env_pins_what_the_venv_pins():
    check_conda_env("tabpfn")

def test_missing_checkpoint_names_the_path_and_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no TabPFN checkpoint at .*tabpfn-v2.*model\.safetensors.*never"):
        tabpfn.TabPFNBackbone.load(tmp_path / "tabpfn-v2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        tabpfn.TabPFNBackbone.load(tmp_path / "empty")
    (tmp_path / "published.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="causalmixft.model.tabpfn convert"):
        adapter_name(tmp_path / "published.ckpt")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tabpfn.architectures", None)
    with pytest.raises(ImportError, match="make venv-tabpfn"):
        tabpfn.TabPFNBackbone.random("tabpfn_v2", **ARCHITECTURES["tabpfn_v2"])


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def architecture(request):
    require("tabpfn", "tabpfn.architectures")
    return request.param


@pytest.fixture(scope="module")
def checkpoint(architecture, tmp_path_factory):
    directory = tmp_path_factory.mktemp(architecture)
    tabpfn.TabPFNBackbone.random(architecture, seed=0, **ARCHITECTURES[architecture]).save(directory)
    return directory


def test_random_weights_save_and_reload_bit_identically(architecture, checkpoint):
    assert adapter_name(checkpoint) == "tabpfn"
    other = tabpfn.TabPFNBackbone.random(architecture, seed=1, **ARCHITECTURES[architecture])
    check_round_trip(checkpoint, checkpoint / "model.safetensors", other)
    # The weights file is TabPFN's own format: the package's loader reads it, alone or in its folder.
    alone = load_adapter(checkpoint / "model.safetensors", "cpu")
    assert alone.header["architecture_name"] == architecture


def test_inference(checkpoint):
    check_inference(load_adapter(checkpoint, "cpu"))


def test_finetuning(checkpoint, tmp_path):
    check_finetuning(checkpoint, tmp_path)


def test_convert_a_pickled_checkpoint(architecture, checkpoint, tmp_path):
    """A published-style .ckpt ({state_dict, config, architecture_name}) becomes a directory the workflow reads."""
    source = load_adapter(checkpoint, "cpu")
    torch.save({"state_dict": source.module.state_dict(), "config": source.header["config"],
                "architecture_name": architecture}, tmp_path / "published.ckpt")
    converted = load_adapter(tabpfn.convert(tmp_path / "published.ckpt", tmp_path / "converted"), "cpu")
    x = torch.randn(30, 4).numpy()
    y = (x[:20, 0] > 0).astype("int64")
    assert (converted.predict_proba(x[:20], y, x[20:], 2) == source.predict_proba(x[:20], y, x[20:], 2)).all()
    copied = tabpfn.convert(checkpoint / "model.safetensors", tmp_path / "copied")
    assert (copied / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_tiny_workflow_run(tmp_path_factory):
    require("tabpfn", "tabpfn.architectures")
    checkpoint = tmp_path_factory.mktemp("tabpfn-v2")
    tabpfn.TabPFNBackbone.random("tabpfn_v2", seed=0, **ARCHITECTURES["tabpfn_v2"]).save(checkpoint)
    run_tiny_workflow("tabpfn", checkpoint, checkpoint / "model.safetensors", tmp_path_factory.mktemp("workflow"))
