"""Pretraining: the options interface, resuming, and the workflow rule that runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import job_counts, run_snakemake, tiny_config, write_config
from model_helpers import tiny_model
from safetensors.torch import load_file

from causalmixft.model.backbone import load_model, save_model
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


def test_checkpoints_every_few_minutes_as_well_as_every_few_steps(tmp_path):
    # A step-interval beyond the run: only the time rule (here: at every step) and the end checkpoint.
    pretrain_from_options(tmp_path, {**TINY, "steps": 3, "checkpoint_every": 100, "checkpoint_every_min": 1e-9})
    written = [json.loads(line) for line in (tmp_path / "checkpoints.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in written] == [1, 2, 3]
    pretrain_from_options(tmp_path / "steps", {**TINY, "steps": 3, "checkpoint_every": 100})
    written = [json.loads(line) for line in (tmp_path / "steps" / "checkpoints.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in written] == [3]


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


CLI_TINY = ["--batch-size", "2", "--warmup", "1", "--eval-every", "2", "--checkpoint-every", "1", "--device", "cpu",
            "--threads", "1", "--real-datasets", "--d-model", "16", "--n-heads", "2", "--n-layers", "1", "--d-ff", "32",
            "--n-thinking-rows", "1", "--prior-min-rows", "24", "--prior-max-rows", "40", "--prior-max-features", "4"]


def run_cli(out, *args: str) -> dict:
    """``python -m causalmixft.model.pretrain --out OUT ...`` in a fresh interpreter; its summary."""
    done = subprocess.run([sys.executable, "-m", "causalmixft.model.pretrain", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads((out / "summary.json").read_text())


def test_the_command_line_trains_and_resumes(tmp_path):
    first = run_cli(tmp_path, "--steps", "2", *CLI_TINY)
    assert first["steps"] == 2 and first["datasets_seen"] == 4 and first["init_weights"] is None
    assert (tmp_path / "checkpoint" / "state.safetensors").exists()
    resumed = run_cli(tmp_path, "--steps", "4", *CLI_TINY)
    assert resumed["steps"] == 4 and resumed["datasets_seen"] == 8
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [2, 4]
    assert load_model(tmp_path / "final").cfg.n_layers == 1


def test_the_command_line_continues_from_given_weights(tmp_path):
    start = tiny_model(seed=3)
    save_model(start, tmp_path / "start")
    given = load_model(tmp_path / "start").state_dict()
    # No steps: the final weights are the given ones, in their own architecture (not the flags').
    untouched = run_cli(tmp_path / "zero", "--steps", "0", "--init-weights", str(tmp_path / "start"),
                        *CLI_TINY)
    assert untouched["init_weights"] == str(tmp_path / "start")
    final = load_model(tmp_path / "zero" / "final")
    assert final.cfg == start.cfg and final.cfg.n_layers == 2
    for name, value in final.state_dict().items():
        torch.testing.assert_close(value, given[name], rtol=0, atol=0)
    # Two steps move the weights away from the given ones, and the run resumes like any other.
    moved = run_cli(tmp_path / "two", "--steps", "2", "--init-weights", str(tmp_path / "start"),
                    *CLI_TINY)
    assert moved["steps"] == 2
    trained = load_model(tmp_path / "two" / "final").state_dict()
    assert any(not torch.equal(trained[name], given[name]) for name in given)
    fresh = tiny_model(seed=3, n_layers=1)  # the flags' architecture, never used when weights are given
    assert set(trained) != set(fresh.state_dict())
    resumed = run_cli(tmp_path / "two", "--steps", "4", "--init-weights", str(tmp_path / "start"),
                      *CLI_TINY)
    assert resumed["steps"] == 4 and resumed["datasets_seen"] == 8
