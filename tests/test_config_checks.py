"""Config mistakes the schema lets through: a key given twice, a number that is NaN or infinite."""

from __future__ import annotations

import yaml

from causalmixft.analysis.effects import Analysis
from causalmixft.config_checks import config_problems, merged_config, non_finite_numbers, repeated_keys


def test_a_key_given_twice_is_found_with_its_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("finetune:\n  lr: 0.001\n  steps: 10\n  lr: 0.1\nscm: {quality: fast}\n")
    assert yaml.safe_load(path.read_text())["finetune"]["lr"] == 0.1  # what Snakemake would use, unsaid
    assert repeated_keys(path) == ["'lr' (line 4)"]
    (problem,) = config_problems({}, [path])
    assert str(path) in problem and "'lr' (line 4)" in problem


def test_the_same_key_in_two_mappings_is_not_a_repeat(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a: {seed: 1}\nb: {seed: 2}\nc: [{x: 1}, {x: 2}]\n")
    assert repeated_keys(path) == []


def test_nan_and_infinity_are_found_by_key():
    config = yaml.safe_load("finetune: {lr: .nan, steps: 3}\nscm: {alphas: [0.1, .inf]}\nprotocol: {seed: 0}\n")
    assert non_finite_numbers(config) == ["finetune.lr (nan)", "scm.alphas.1 (inf)"]
    assert config_problems(config, []) == [
        "config: finetune.lr (nan): not a finite number",
        "config: scm.alphas.1 (inf): not a finite number",
    ]
    assert non_finite_numbers({"a": 1.5, "b": [1, "x", None]}) == []


def test_the_analysis_settings_are_merged_block_by_block_over_the_default_config(tmp_path):
    base, study = tmp_path / "config.yaml", tmp_path / "study.yaml"
    base.write_text("analysis: {equivalence_margin: 0.02, alpha: 0.05}\nprotocol: {seeds: 2}\n")
    study.write_text("analysis: {alpha: 0.01}\n")
    merged = merged_config([base, study])
    assert merged == {"analysis": {"equivalence_margin": 0.02, "alpha": 0.01}, "protocol": {"seeds": 2}}
    assert Analysis.from_config(merged).equivalence_margin == 0.02
