"""What the published-model adapters share (causalmixft.model.adapters), and the tiny per-backbone
workflow config; runs everywhere (the packages themselves are tested by tests/test_model_<model>.py)."""

import hashlib
import json

import pytest
from jsonschema import validate

from causalmixft.io import sha256_file
from causalmixft.model import adapters
from conftest import REPO, load_yaml


def test_smoke_config_is_a_complete_tiny_grid():
    config = load_yaml(REPO / "config" / "backbone-smoke.yaml")
    validate(config, load_yaml(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    assert list(config["datasets"]) == ["diabetes"] and config["protocol"]["folds"] == [0]
    assert config["synthetic"]["sizes"] == [0, 64]
    assert config["finetune"]["methods"] == ["zeroshot", "finetune", "causalmixft"]
    assert "n_class_shifts" not in config["finetune"]  # the built-in backbone's option only


def test_checkpoints_are_told_apart_by_their_config(tmp_path):
    for name, config in {"mitra": {"dim": 512}, "tabpfn": {"backbone": "tabpfn"}, "tabicl": {"backbone": "tabicl"}}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        assert adapters.adapter_name(tmp_path / name) == name
    (tmp_path / "tabpfn-v3.5.safetensors").write_bytes(b"")
    assert adapters.adapter_name(tmp_path / "tabpfn-v3.5.safetensors") == "tabpfn"
    assert adapters.backbone_kind(tmp_path / "tabicl") == "tabicl"
    assert adapters.backbone_kind(REPO / "src" / "causalmixft" / "model" / "weights" / "tfm-small") == "builtin"
    for name in adapters.ADAPTERS:  # each backbone's environment for --sdm conda
        assert (REPO / "envs" / "backbones" / f"{name}.yaml").is_file()


def test_unknown_or_missing_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no backbone at .*nowhere: expected config\.json and model\.safetensors"):
        adapters.adapter_name(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"backbone": "catboost"}))
    with pytest.raises(ValueError, match="names no known backbone adapter"):
        adapters.adapter_name(tmp_path / "other")
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="not a checkpoint the adapters read"):
        adapters.adapter_name(tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="unknown backbone adapter 'catboost'"):
        adapters.adapter_class("catboost")


def test_sha256_of_a_file_read_in_blocks(tmp_path):
    data = bytes(range(256)) * 9000  # more than one 1 MiB block
    (tmp_path / "model.safetensors").write_bytes(data)
    assert sha256_file(tmp_path / "model.safetensors") == hashlib.sha256(data).hexdigest()


def merged(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile merge: nested mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_gpu_config_puts_a_published_backbone_on_cuda():
    overlay = load_yaml(REPO / "config" / "gpu.yaml")
    assert set(overlay) == {"backbone", "finetune"}  # the study's grid stays the study's
    assert overlay["backbone"]["name"] in adapters.ADAPTERS and overlay["finetune"]["device"] == "cuda"
    validate(merged(load_yaml(REPO / "config.yaml"), overlay),
             load_yaml(REPO / "workflow" / "schemas" / "config.schema.yaml"))
