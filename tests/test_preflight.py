"""Start-up checks: the backbone's class limit (enforced at prepare) and a GPU asked for where none is visible."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, job_counts, run_snakemake, tiny_config, write_config

from causalmixft.preflight import backbone_class_limit, backbone_weights_problem, missing_gpu

SHIPPED = REPO / "src" / "causalmixft" / "model" / "weights" / "tfm-small"


def test_the_class_limit_comes_from_the_backbones_config(tmp_path):
    assert backbone_class_limit({"weights": str(SHIPPED)}) == json.loads((SHIPPED / "config.json").read_text())["max_classes"]
    (tmp_path / "config.json").write_text(json.dumps({"dim": 512, "dim_output": 10, "n_layers": 12}))  # Mitra
    assert backbone_class_limit({"weights": str(tmp_path)}) == 10
    assert backbone_class_limit({"weights": str(tmp_path / "absent")}) is None
    assert backbone_class_limit({"weights": "x", "pretrain": {"model": {"max_classes": 4}}}) == 4


def test_a_gpu_device_without_a_gpu_is_named_and_cpu_or_a_cluster_is_not_checked(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "CUDA_VISIBLE_DEVICES is empty" in missing_gpu("cuda", local=True)
    assert "CUDA_VISIBLE_DEVICES is empty" in missing_gpu("cuda:1", local=True)
    assert missing_gpu("cpu", local=True) is None and missing_gpu("auto", local=True) is None
    assert missing_gpu("cuda", local=False) is None  # a cluster executor runs the jobs elsewhere


def test_cuda_without_a_gpu_fails_before_any_job_and_a_dry_run_still_plans(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    config = tiny_config()
    config["finetune"]["device"] = "cuda"
    write_config(tmp_path, config)
    assert job_counts(run_snakemake(tmp_path, "--dry-run").stdout)["finetune"] > 0
    result = run_snakemake(tmp_path, check=False)
    assert result.returncode != 0
    assert "config: finetune.device: device 'cuda' asks for a GPU but CUDA_VISIBLE_DEVICES is empty" in result.stderr
    assert not (tmp_path / "results" / "data").exists()  # not even the data stage ran
    # the data stage alone needs no GPU
    run_snakemake(tmp_path, "results/data/iris.parquet")


def test_a_dataset_with_more_classes_than_the_backbone_fails_at_prepare(tmp_path):
    path = tmp_path / "many.csv"
    pd.DataFrame({"x": np.arange(60.0), "target": [f"c{i % 12}" for i in range(60)]}).to_csv(path, index=False)
    config = tiny_config()
    config["datasets"] = {"many": {"source": f"file:{path}"}}
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "results/splits/many/fold0/real48/meta.json", check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "logs" / "prepare_dataset" / "many.log").read_text()
    assert "[prepare] many: 12 classes, more than the 10 the backbone tells apart" in log
    assert not (tmp_path / "results" / "data" / "many.parquet").exists()


def test_without_cuda_devices_torch_is_asked(monkeypatch):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert missing_gpu("cuda", local=True) == "device 'cuda' asks for a GPU but no CUDA device is visible on this machine"


def test_missing_or_truncated_backbone_weights_are_named(tmp_path):
    import shutil

    shipped = REPO / "src/causalmixft/model/weights/tfm-small"
    assert backbone_weights_problem(shipped) is None
    assert backbone_weights_problem(tmp_path / "absent") == (
        f"{tmp_path / 'absent'} does not exist; it must hold model.safetensors and config.json (docs/backbones.md)"
    )
    folder = shutil.copytree(shipped, tmp_path / "copy")
    (folder / "config.json").unlink()
    assert "has no config.json" in backbone_weights_problem(folder)
    (folder / "config.json").write_text('{"d_model": ')
    assert f"{folder / 'config.json'} is not valid JSON" in backbone_weights_problem(folder)
    shutil.copy(shipped / "config.json", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    assert f"{weights} is damaged (" in backbone_weights_problem(folder)
    assert "where its header says" in backbone_weights_problem(folder)
