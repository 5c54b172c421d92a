"""config/study.yaml (`make study`): what issue 17 asks of the grid, a valid config once merged over
config.yaml, sources inside the repository, and a dry run whose job counts are the grid's."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from conftest import MANIFEST, REPO, job_counts, load_yaml, run_snakemake
from snakemake.utils import update_config, validate

from causalmixft.data.tabmwp.tasks import TASKS
from causalmixft.experiment.collect import generator_sample_sizes, run_sizes
from causalmixft.methods import resolve_method

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
STUDY = load_yaml(REPO / "config" / "study.yaml")
REQUIRED_METHODS = {"zeroshot", "finetune", "causalmixft", "scm_only", "scm_emptydag", "scm_randomdag"}


def merged() -> dict:
    """What `--configfile config/study.yaml` gives: the study merged over config.yaml key by key."""
    config = load_yaml(REPO / "config.yaml")
    update_config(config, load_yaml(REPO / "config" / "study.yaml"))
    return config


def test_the_study_config_validates_merged_over_the_default():
    config = merged()
    validate(config, str(SCHEMA))
    custom = config["finetune"].get("custom_methods")
    generators = set(config["synthetic"]["generators"])
    for name in config["finetune"]["methods"]:
        method = resolve_method(name, custom)
        assert method.generator is None or method.generator in generators, name


def test_every_shipped_tabarena_table_and_every_kind_of_tabmwp_task_is_in_the_study():
    datasets = merged()["datasets"]
    by_source = {spec["source"]: spec for spec in datasets.values()}
    for entry in json.loads(MANIFEST.read_text())["datasets"]:
        spec = by_source[f"file:resources/tabarena/{entry['file']}"]
        assert spec["manifest"] == "resources/tabarena/MANIFEST.json"
    tasks = {spec["source"].removeprefix("tabmwp:") for spec in datasets.values() if spec["source"].startswith("tabmwp:")}
    assert tasks <= set(TASKS)
    assert any(t.startswith("solved-") for t in tasks) and "grade" in tasks and any(t.startswith("probe-") for t in tasks)
    # the default's datasets keep their names, so the merge does not run one table twice
    assert set(load_yaml(REPO / "config.yaml")["datasets"]) <= set(STUDY["datasets"])


def test_every_source_is_a_file_in_the_repository():
    for name, spec in merged()["datasets"].items():
        kind, _, argument = spec["source"].partition(":")
        assert kind in ("file", "tabmwp"), name
        paths = [argument, spec.get("manifest")] if kind == "file" else [f"resources/tabmwp/{argument}.csv.gz"]
        for path in filter(None, paths):
            assert ".." not in path and not path.startswith("/"), (name, path)
            assert (REPO / path).is_file(), (name, path)


def test_the_grid_is_what_the_issue_asks():
    config = merged()
    protocol, sizes = config["protocol"], sorted(s for s in config["synthetic"]["sizes"] if s > 0)
    # seeds: 1 replicate, as the measured budget allows (config/study.yaml's header); folds >= 3
    assert protocol["n_folds"] >= 3 and len(protocol["folds"]) >= 3
    assert 0 in config["synthetic"]["sizes"] and len(sizes) >= 4
    assert math.log10(sizes[-1] / sizes[0]) >= 1.5
    train_rows = protocol["real_budget"] - round(protocol["val_fraction"] * protocol["real_budget"])
    assert sizes[0] < train_rows < sizes[-1]
    assert REQUIRED_METHODS <= set(config["finetune"]["methods"])
    # the DAG controls run at some of causalmixft's sizes (equal-size comparisons), here one
    own = config["synthetic"]["sizes_by_generator"]
    assert set(own) == {"scm_emptydag", "scm_randomdag"} and all(set(v) <= set(sizes) and v for v in own.values())
    assert "causalmixft" not in own
    # the splits of every dataset need real_budget rows next to the largest test fold
    for name, spec in config["datasets"].items():
        kind, _, argument = spec["source"].partition(":")
        path = REPO / (argument if kind == "file" else f"resources/tabmwp/{argument}.csv.gz")
        rows = len(pd.read_csv(path, usecols=[0]))
        assert rows - math.ceil(rows / protocol["n_folds"]) >= protocol["real_budget"], name


def expected_jobs(config: dict) -> dict[str, int]:
    """Jobs per rule of a fresh run, from the grid alone."""
    n_datasets, n_folds = len(config["datasets"]), len(config["protocol"]["folds"])
    folds = n_datasets * n_folds
    sizes, by_generator = config["synthetic"]["sizes"], config["synthetic"].get("sizes_by_generator")
    baselines = [g for g in config["synthetic"]["generators"] if g != "causalmixft"]
    custom = config["finetune"].get("custom_methods")
    runs = sum(len(run_sizes(resolve_method(m, custom), sizes, by_generator)) for m in config["finetune"]["methods"])
    sampled = {g: len(generator_sample_sizes(g, sizes, by_generator)) for g in ["causalmixft", *baselines]}
    return {
        "prepare_dataset": n_datasets,
        "split": folds,
        "discover_dag": folds,
        "fit_scm": folds,
        "sample_synthetic": folds * sampled["causalmixft"],
        "fit_generator": folds * len(baselines),
        "sample_generator": folds * sum(sampled[g] for g in baselines),
        "finetune": folds * runs,
        "aggregate": 1,
        "all": 1,
    }


@pytest.mark.slow
def test_the_study_dry_run_runs_the_grid(tmp_path):
    """`make study-dry-run` in a folder that sees the repository's data and weights (dry run only)."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "study.yaml", tmp_path / "config" / "study.yaml")
    for name in ("resources", "src"):
        (tmp_path / name).symlink_to(REPO / name)
    result = run_snakemake(tmp_path, "--dry-run", "--quiet", "rules", "--configfile", "config/study.yaml")
    assert job_counts(result.stdout) == expected_jobs(merged())


def test_the_pilot_is_the_study_on_fold_zero():
    # config/study-pilot.yaml (make study-pilot, docs/results/study-pilot): merged over the study it
    # changes only the folds, so its files are the full study's fold-0 files.
    pilot = merged()
    update_config(pilot, load_yaml(REPO / "config" / "study-pilot.yaml"))
    validate(pilot, str(SCHEMA))
    study = merged()
    assert pilot["protocol"].pop("folds") == [0] and study["protocol"].pop("folds") == [0, 1, 2]
    assert pilot == study
