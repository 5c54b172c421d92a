"""Settings that passed the schema and broke or silently bent a run now stop the dry run with the key.

Each case is one `snakemake --dry-run` of the tiny config with one bad setting: it fails before
any job, naming what is wrong, and writes nothing under results/.
"""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO, run_snakemake, tiny_config, write_config

from causalmixft.config_checks import repeated_keys


def with_name(kind: str, name: str) -> dict:
    config = tiny_config()
    if kind == "dataset":
        config["datasets"] = {name: {"source": "sklearn:iris"}}
    elif kind == "backbone":
        config["backbone"]["name"] = name
    elif kind == "method":
        config["finetune"]["custom_methods"] = {name: {"pool": "real"}}
        config["finetune"]["methods"] = ["zeroshot", name]
    return config


def finetune_setting(**options) -> dict:
    config = tiny_config()
    config["finetune"].update(options)
    return config


def weights_at(folder: str) -> dict:
    config = tiny_config()
    config["backbone"]["weights"] = folder
    return config


CASES = {
    # a finished run whose weights input is missing looked up to date: rc 0, old metrics
    "weights absent": (weights_at("no/such/folder"), r"config: backbone\.weights: no/such/folder does not exist"),
    # a name that becomes a folder escaped it ("..") or hid it (".x")
    "dataset ..": (with_name("dataset", ".."), r"'\.\.' does not match .*On instance\['datasets'\]"),
    "dataset .": (with_name("dataset", "."), r"'\.' does not match .*On instance\['datasets'\]"),
    "dataset .hidden": (with_name("dataset", ".hidden"), r"'\.hidden' does not match .*On instance\['datasets'\]"),
    "backbone ..": (with_name("backbone", ".."), r"'\.\.' does not match .*On instance\['backbone'\]\['name'\]"),
    "method ..": (with_name("method", ".."), r"'\.\.' does not match .*On instance\['finetune'\]"),
    # numbers the schema's bounds let through
    "lr nan": (finetune_setting(lr=float("nan")), r"config: finetune\.lr \(nan\): not a finite number"),
    "lr inf": (finetune_setting(lr=float("inf")), r"config: finetune\.lr \(inf\): not a finite number"),
    "batch_rows 1": (finetune_setting(batch_rows=1), r"1 is less than the minimum of 2"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_setting_fails_the_dry_run_naming_it(tmp_path, case):
    config, message = CASES[case]
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr, re.S), result.stderr[-3000:]
    assert not (tmp_path / "results").exists()


def test_a_key_given_twice_fails_naming_the_file_and_line(tmp_path):
    text = yaml.safe_dump(tiny_config(), sort_keys=False)
    text = text.replace("finetune:\n", "finetune:\n  lr: 0.5\n", 1)  # a second lr further down wins unsaid
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert repeated_keys(path)
    result = run_snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert re.search(r"config\.yaml: keys given twice .*'lr' \(line \d+\)", result.stdout + result.stderr)
    # a file given with --configfile is checked too
    write_config(tmp_path, tiny_config())
    (tmp_path / "extra.yaml").write_text("finetune:\n  steps: 3\n  steps: 4\n")
    result = run_snakemake(tmp_path, "--dry-run", "--configfile", "extra.yaml", check=False)
    assert result.returncode != 0 and "extra.yaml: keys given twice" in result.stdout + result.stderr


def test_the_wildcard_name_pattern_is_the_schemas():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    common = (REPO / "workflow/rules/common.smk").read_text()
    (name,) = re.findall(r'^NAME = r"(.+)"$', common, re.M)
    assert schema["$defs"]["name"]["pattern"] == f"^{name}$"
    for bad in (".", "..", ".x", "a/b"):
        assert not re.fullmatch(name, bad)
    for good in ("diabetes", "tfm-small-v2", "a.b", "_x"):
        assert re.fullmatch(name, good)
