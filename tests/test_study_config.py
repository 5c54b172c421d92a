"""config/study.yaml (`make study`): what issue 28 asks of the grid, a valid config once merged over
config.yaml, sources inside the repository, and a dry run whose job counts are the grid's."""

from __future__ import annotations

import csv
import gzip
import json
import math
import shutil

import pandas as pd
import pytest
from conftest import MANIFEST, REPO, job_counts, load_yaml, run_snakemake
from snakemake.utils import update_config, validate

from causalmixft.data.tabmwp.tasks import TASKS
from causalmixft.methods import resolve_method

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
STUDY = load_yaml(REPO / "config" / "study.yaml")
REQUIRED_METHODS = {"zeroshot", "finetune", "causalmixft", "causalmixft_synthval"}


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


# The header's cut: tables wider than this leave the study (their cost, not their results)
MAX_STUDY_FEATURES = 50


def test_every_shipped_tabarena_table_up_to_the_width_cut_and_every_tabmwp_task_is_in_the_study():
    datasets = merged()["datasets"]
    by_source = {spec["source"]: spec for spec in datasets.values()}
    widths = {}
    for entry in json.loads(MANIFEST.read_text())["datasets"]:
        path = REPO / "resources" / "tabarena" / entry["file"]
        with gzip.open(path, "rt") as handle:
            widths[entry["file"]] = len(next(csv.reader(handle))) - 1  # the header minus the target
        spec = by_source.get(f"file:resources/tabarena/{entry['file']}")
        if widths[entry["file"]] > MAX_STUDY_FEATURES:
            assert spec is None, entry["file"]
        else:
            assert spec is not None and spec["manifest"] == "resources/tabarena/MANIFEST.json", entry["file"]
    assert sum(w <= MAX_STUDY_FEATURES for w in widths.values()) == 15 and len(widths) == 19
    tasks = {spec["source"].removeprefix("tabmwp:") for spec in datasets.values() if spec["source"].startswith("tabmwp:")}
    assert tasks <= set(TASKS)
    assert tasks == set(TASKS)  # every TabMWP task: 3 tables cannot reach p < 0.05
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


def train_rows(budget: int, val_fraction: float) -> int:
    return budget - round(val_fraction * budget)


def test_the_grid_is_what_the_issue_asks():
    config = merged()
    protocol, synthetic = config["protocol"], config["synthetic"]
    budgets = sorted(protocol["real_budget"])
    # at least 3 real budgets spanning 16x; at least 2 paired replicates and 3 folds at every cell
    assert len(budgets) >= 3 and budgets[-1] / budgets[0] >= 16
    assert protocol["seeds"] >= 2 and protocol["n_folds"] >= 3 and len(protocol["folds"]) >= 3
    # sizes: real rows only and multiples of each budget's train rows
    assert synthetic["sizes"][0] == 0 and all(str(s).endswith("x") for s in synthetic["sizes"][1:])
    assert REQUIRED_METHODS <= set(config["finetune"]["methods"]) and synthetic["selection_rows"] >= 1
    assert 0 < config["analysis"]["equivalence_margin"] <= 0.02
    # every dataset's budgets fit its rows next to the largest test fold, in train and validation streams
    for name, spec in config["datasets"].items():
        kind, _, argument = spec["source"].partition(":")
        path = REPO / (argument if kind == "file" else f"resources/tabmwp/{argument}.csv.gz")
        rows = len(pd.read_csv(path, usecols=[0]))
        pool = rows - math.ceil(rows / protocol["n_folds"])
        val_stream = round(protocol["val_fraction"] * pool)
        for budget in spec.get("budgets", budgets):
            assert train_rows(budget, protocol["val_fraction"]) <= pool - val_stream, (name, budget)
            assert budget - train_rows(budget, protocol["val_fraction"]) <= val_stream, (name, budget)
        if "budgets" in spec:  # a dataset leaves out only the budgets it cannot give
            missing = [b for b in budgets if b not in spec["budgets"]]
            assert all(train_rows(b, protocol["val_fraction"]) > pool - val_stream for b in missing), name


def expected_jobs(config: dict) -> dict[str, int]:
    """Jobs per rule of a fresh run, counted from the config by hand (not through causalmixft.grid)."""
    protocol, synthetic = config["protocol"], config["synthetic"]
    n_folds, budgets = len(protocol["folds"]), protocol["real_budget"]
    cells = [(name, b) for name, spec in config["datasets"].items() for b in spec.get("budgets", budgets)]
    n_cells = len(cells) * n_folds
    multiples = [float(str(s)[:-1]) for s in synthetic["sizes"] if str(s).endswith("x")]
    methods = [resolve_method(m) for m in config["finetune"]["methods"]]
    samples = runs = 0
    for _, budget in cells:
        sizes = {round(m * train_rows(budget, protocol["val_fraction"])) for m in multiples} - {0}
        extra = {n + synthetic["selection_rows"] for n in sizes} if any(m.selects_on_synthetic for m in methods) else set()
        samples += len(sizes | extra)
        runs += sum(len(sizes) if m.generator else 1 for m in methods)
    generators = len(synthetic["generators"])  # each samples every size; causalmixft needs the DAG
    return {
        "prepare_dataset": len(config["datasets"]),
        "split": n_cells,
        "discover_dag": n_cells,
        "fit_generator": n_cells * generators,
        "sample_generator": samples * n_folds * generators,
        "finetune": runs * n_folds,
        "aggregate": 1,
        "all": 1,
    }


def test_the_hand_count_of_the_study_is_its_header():
    # the header's arithmetic: 15 TabArena tables and 4 TabMWP tasks at 3 budgets, 3 probes at 2, x 3
    # folds = (57 + 6) x 3 = 189 (dataset, fold, budget) cells, 8 runs and 6 samples each (one
    # generator, causalmixft: one fit per cell); 22 prepared tables, the aggregate and the target
    jobs = expected_jobs(merged())
    assert (jobs["split"], jobs["finetune"], jobs["sample_generator"], jobs["fit_generator"]) == (189, 1512, 1134, 189)
    assert sum(jobs.values()) == 22 + 3 * 189 + 1134 + 1512 + 2 == 3237  # README: 3,237 jobs


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
