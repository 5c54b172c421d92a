"""Pretraining: the options interface, resuming, and the workflow rule that runs it."""

from __future__ import annotations

import json

import pytest
from conftest import job_counts, run_snakemake, tiny_config, write_config
from safetensors.torch import load_file

from causalmixft.model.backbone import load_model
from causalmixft.model.pretrain import lr_factor, pretrain_from_options

TINY = {
    "batch_size": 2, "warmup": 1, "eval_every": 2, "checkpoint_every": 1, "device": "cpu", "real_datasets": [],
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "n_thinking_rows": 1},
    "prior": {"min_rows": 24, "max_rows": 40, "max_features": 4},
}


def test_schedule_warms_up_holds_then_decays_to_a_tenth():
    assert lr_factor(0, 100, 10, 0.2) == pytest.approx(0.1)
    assert lr_factor(50, 100, 10, 0.2) == 1.0
    assert lr_factor(99, 100, 10, 0.2) == pytest.approx(1 - 0.9 * 19 / 20)


def test_a_resumed_run_continues_where_it_stopped(tmp_path):
    first = pretrain_from_options(tmp_path, {**TINY, "steps": 2})
    assert first["steps"] == 2 and first["datasets_seen"] == 4
    resumed = pretrain_from_options(tmp_path, {**TINY, "steps": 4})
    assert resumed["steps"] == 4 and resumed["datasets_seen"] == 8
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [2, 4]
    model = load_model(tmp_path / "final")
    assert model.cfg.d_model == 16
    assert set(load_file(str(tmp_path / "final" / "model.safetensors"))) == set(model.state_dict())


def test_unknown_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown pretraining options: \\['stepz'\\]"):
        pretrain_from_options(tmp_path, {"stepz": 3})


@pytest.mark.slow
def test_workflow_pretrains_the_backbone_when_the_config_asks(tmp_path):
    config = tiny_config()
    config["backbone"] = {"name": "tiny", "weights": "unused", "pretrain": {**TINY, "steps": 2}}
    write_config(tmp_path, config)
    dry = run_snakemake(tmp_path, "--dry-run")
    counts = job_counts(dry.stdout)
    assert counts["pretrain_backbone"] == 1 and counts["finetune"] > 0
    run_snakemake(tmp_path, "results/models/tiny/model.safetensors")
    summary = json.loads((tmp_path / "results/models/tiny/summary.json").read_text())
    assert summary["steps"] == 2
    assert (tmp_path / "results/benchmarks/pretrain_backbone/tiny.tsv").exists()
    assert load_model(tmp_path / "results/models/tiny").cfg.n_layers == 1
