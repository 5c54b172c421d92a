"""The GPU check (bench/gpu_check.sh): its CPU smoke run, and the precision switch it measures with.

The smoke run goes through every stage of the script on the CPU with tiny sizes, so the script a
GPU session runs once cannot rot between sessions that have one.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from conftest import REPO
from safetensors.numpy import load_file

from causalmixft.model.backbone import autocast, cuda_precision
from causalmixft.model.finetune import FinetuneConfig, FinetuneData, finetune
from model_helpers import tiny_model


def gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_cuda_precision_sets_the_autocast_dtype_of_cuda_passes_only():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # on a machine without CUDA torch warns that it disables autocast
        assert autocast(cuda).fast_dtype == torch.bfloat16
        with cuda_precision(torch.float32):
            assert autocast(cuda).fast_dtype == torch.float32 and not autocast(cuda)._enabled
            assert not autocast(cpu)._enabled
        assert autocast(cuda).fast_dtype == torch.bfloat16
    assert not autocast(cpu)._enabled


def test_a_cpu_run_records_no_peak_gpu_memory():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), np.arange(40) % 2
    result = finetune(tiny_model(), FinetuneData((x[:30], y[:30]), (x[:30], y[:30]), (x[30:], y[30:]), 2),
                      cfg=FinetuneConfig(steps=2, eval_every=1, batch_rows=16, device="cpu"))
    assert result.device == "cpu" and result.peak_gpu_memory_mb is None


def test_finetune_jobs_are_counted_with_their_gpu_resource():
    log = (
        "localrule finetune:\n    input: a\n    wildcards: method=zeroshot\n    resources: tmpdir=/tmp, gpu=1, runtime=60\n"
        "rule split:\n    resources: tmpdir=/tmp\n"
        "rule finetune:\n    input: b\n    resources: tmpdir=/tmp, runtime=60\n"
    )
    assert gpu_check_module().finetune_jobs_with_gpu(log) == (2, 1)


def test_without_cuda_the_check_refuses_before_writing_anything(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run = subprocess.run([str(REPO / "bench" / "gpu_check.sh"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})
    assert run.returncode == 2 and "CUDA is not available" in run.stderr and "--smoke" in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_killed_sprint_still_leaves_weights_from_its_checkpoint(tmp_path):
    from causalmixft.model.backbone import load_model
    from causalmixft.model.pretrain import pretrain_from_options

    model = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "n_thinking_rows": 1}
    pretrain_from_options(tmp_path / "run", {"steps": 2, "batch_size": 2, "warmup": 1, "eval_every": 2,
                                             "checkpoint_every": 1, "device": "cpu", "real_datasets": [],
                                             "model": model, "prior": {"min_rows": 24, "max_rows": 40}})
    extra = gpu_check_module().weights_from_checkpoint(tmp_path / "run", model, tmp_path / "weights")
    assert extra["step"] == 2
    state = load_file(str(tmp_path / "run" / "checkpoint" / "state.safetensors"))
    exported = load_model(tmp_path / "weights").state_dict()
    assert set(exported) == {k.removeprefix("model.") for k in state if k.startswith("model.")}
    assert all(np.array_equal(exported[k].numpy(), state[f"model.{k}"]) for k in exported)


def finite_numbers(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    return True


@pytest.mark.slow
def test_the_smoke_run_passes_every_stage(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([str(REPO / "bench" / "gpu_check.sh"), "--out", str(out), "--smoke"], capture_output=True,
                         text=True, env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}, timeout=600)
    report = json.loads((out / "gpu_check.json").read_text())
    assert run.returncode == 0, (report, run.stderr[-3000:])
    assert json.loads(run.stdout) == report and (out / "gpu_check.log").stat().st_size > 0
    assert report["ok"] and report["machine"]["smoke"] and finite_numbers(report)
    stages = report["stages"]
    assert set(stages) == {"workflow", "speed", "pretrain", "zeroshot"}
    assert all(stage["ok"] and stage["problems"] == [] for stage in stages.values())

    workflow = stages["workflow"]
    assert workflow["finetune_jobs"] == workflow["finetune_jobs_with_gpu_resource"] == len(workflow["runs"]) >= 1
    for run_record in workflow["runs"]:
        assert run_record["device"] == "cpu" and run_record["peak_gpu_memory_mb"] is None
        assert run_record["steps_run"] > 0 and 0 <= run_record["test_roc_auc"] <= 1

    speed = stages["speed"]["runs"]["speed_cpu_fp32"]
    assert speed["finetune_steps_per_second_wall"] > 0 and speed["device"] == "cpu"
    assert all(seconds > 0 for seconds in speed["prediction_wall_s"].values())

    pretrain = stages["pretrain"]
    assert pretrain["steps"] > 0 and pretrain["parameters"] > 0 and len(pretrain["checkpoints_written"]) >= 2
    assert pretrain["decay_reached"]  # the sprint timed the resumed part so that its decay phase began
    checkpoint = load_file(str(tmp_path / "out" / "work" / "pretrain" / "checkpoint" / "state.safetensors"))
    model_tensors = {k: v for k, v in checkpoint.items() if k.startswith("model.")}
    assert sum(v.size for v in model_tensors.values()) == pretrain["parameters"]
    weights = load_file(str(out / "pretrained" / "model.safetensors"))
    assert {f"model.{k}" for k in weights} == set(model_tensors)
    assert json.loads((out / "pretrained" / "config.json").read_text())["d_model"] == pretrain["model"]["d_model"]

    scores = stages["zeroshot"]["scores"]
    assert set(scores) == {"pretrained"} and scores["pretrained"]["tables"] == 1
    assert 0 <= scores["pretrained"]["mean_test_roc_auc"] <= 1
