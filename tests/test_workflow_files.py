"""Workflow files stay consistent: formatting, lint, configs, conda envs, TabArena task list, licences."""

import copy
import csv
import json
import re
import subprocess
import sys

import pytest
from conftest import MANIFEST, REPO, TABARENA, load_yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def pins(lines):
    return dict(re.match(r"^\s*-?\s*([A-Za-z0-9_.-]+)==(\S+)\s*$", line).groups() for line in lines if "==" in line)


def test_snakefmt_is_clean():
    snakefmt = [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/"]
    result = subprocess.run(snakefmt, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_lint_is_clean(tmp_path):
    lint = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--lint"]
    result = subprocess.run(lint, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.parametrize("path", ["config.yaml", "config/tabarena.yaml"])
def test_shipped_configs_validate_on_their_own(path):
    validate(load_yaml(REPO / path), SCHEMA)


def test_schema_rejects_unknown_keys_at_every_level():
    config = load_yaml(REPO / "config.yaml")
    validate(copy.deepcopy(config), SCHEMA)
    for section in ("protocol", "discovery", "scm", "synthetic", "backbone", "finetune"):
        broken = copy.deepcopy(config)
        broken[section]["typo"] = 1
        with pytest.raises(WorkflowError, match="'typo' was unexpected"):
            validate(broken, SCHEMA)


def test_tabarena_config_lists_every_classification_task():
    with open(TABARENA / "tabarena_v0.1_classification.csv") as handle:
        tasks = {row["dataset_name"]: row["task_id"] for row in csv.DictReader(handle)}
    config = load_yaml(REPO / "config" / "tabarena.yaml")
    assert len(tasks) == 38
    assert config["datasets"] == {name: {"source": f"openml:{task}"} for name, task in tasks.items()}
    assert config["protocol"]["n_folds"] == 10 and config["protocol"]["folds"] == list(range(10))


def test_conda_envs_pin_what_requirements_pin():
    required = pins((REPO / "requirements.txt").read_text().splitlines())
    assert required["torch"] == "2.13.0"
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = load_yaml(env)
        assert "python=3.11" in spec["dependencies"]
        listed = pins(next(d for d in spec["dependencies"] if isinstance(d, dict))["pip"])
        assert listed and all(required.get(name) == version for name, version in listed.items()), env.name


def test_licences_cover_every_shipped_dataset():
    text = (TABARENA / "LICENSES.md").read_text()
    for entry in json.loads(MANIFEST.read_text())["datasets"]:
        assert f"## {entry['tabarena_name']} (`{entry['file']}`)" in text
        assert entry["license"] in text and entry["source"]["ref"] in text


def test_ci_runs_the_slow_tests_too():
    script = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script and "make test" in script and "make test-slow" in script
