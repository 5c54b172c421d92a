"""The Snakemake workflow end to end on a tiny config, run in tmp directories.

Real runs ask for the data stage's files (not `all`), so these tests stay about this stage
however many stages the workflow grows.
"""

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, job_counts, load_yaml, run_snakemake, tiny_config, write_config

from causalmixft.data.prepare import read_prepared
from causalmixft.methods import BUILTIN_METHODS, resolve_method
from causalmixft.workflow_config import WorkflowConfig

GRID = [(dataset, fold) for dataset in ("diabetes", "iris") for fold in (0, 1)]
SPLIT_METAS = [f"results/splits/{dataset}/fold{fold}/real48/meta.json" for dataset, fold in GRID]


def test_dry_run_shows_the_dataset_by_fold_grid(workdir):
    result = run_snakemake(workdir, "--dry-run")
    counts = job_counts(result.stdout)
    assert (counts["prepare_dataset"], counts["split"], counts["all"]) == (2, 4, 1)
    assert not (workdir / "results").exists()


def tabarena_dry_run(tmp_path, *targets):
    """`snakemake -n --configfile config/tabarena.yaml`, offline: openml sources are fetched by jobs only."""
    for name in ("src", "resources", "config"):  # the config's relative paths resolve as in the repo
        (tmp_path / name).symlink_to(REPO / name)
    args = ("--configfile", "config/tabarena.yaml", "--replace-workflow-config", "--dry-run", *targets)
    return job_counts(run_snakemake(tmp_path, *args).stdout)


TABARENA_CONFIG = load_yaml(REPO / "config" / "tabarena.yaml")
TABARENA_METHODS = [
    resolve_method(name, TABARENA_CONFIG["finetune"].get("custom_methods"))
    for name in TABARENA_CONFIG["finetune"]["methods"]
]


def tabarena_jobs_per_dataset() -> dict[str, int]:
    """Jobs of one TabArena task: every fold, every sampled generator and size, every method's runs."""
    folds = len(TABARENA_CONFIG["protocol"]["folds"])
    positive = len([s for s in TABARENA_CONFIG["synthetic"]["sizes"] if s > 0])
    generators = len(TABARENA_CONFIG["synthetic"]["generators"])  # causalmixft among them: it needs the DAG
    counts = {
        "prepare_dataset": 1,
        "split": folds,
        "discover_dag": folds,
        "fit_generator": folds * generators,
        "sample_generator": folds * generators * positive,
        "finetune": folds * sum(positive if m.generator else 1 for m in TABARENA_METHODS),
    }
    return {rule: n for rule, n in counts.items() if n}


def test_tabarena_config_is_the_paper_grid():
    assert len(TABARENA_CONFIG["datasets"]) == 38 and TABARENA_CONFIG["protocol"]["folds"] == list(range(10))
    # every method the project has but the selection probe of the study (config/study.yaml)
    assert {m.name for m in TABARENA_METHODS} == set(BUILTIN_METHODS) - {"causalmixft_synthval"}
    assert sorted({m.generator for m in TABARENA_METHODS if m.generator}) == sorted(
        TABARENA_CONFIG["synthetic"]["generators"]
    )
    assert TABARENA_CONFIG["synthetic"]["sizes"] == [0, 64, 128, 256, 512, 1024, 2048, 4096]
    assert TABARENA_CONFIG["finetune"]["device"] == "auto"  # fine-tuning asks for a GPU


def test_tabarena_config_shows_38_tasks_by_10_folds(tmp_path):
    folds = TABARENA_CONFIG["protocol"]["folds"]
    budget = TABARENA_CONFIG["protocol"]["real_budget"]
    splits = [f"results/splits/{d}/fold{f}/real{budget}/meta.json" for d in TABARENA_CONFIG["datasets"] for f in folds]
    assert tabarena_dry_run(tmp_path, *splits) == {"prepare_dataset": 38, "split": 380}


def test_tabarena_dry_run_of_one_task_counts_its_jobs(tmp_path):
    # One task's files as targets: the grid's DAG is 38 copies of this plus the aggregation (41,080
    # jobs; the whole grid's dry run takes Snakemake 3-5 minutes of CPU, too long for the suite).
    name = "credit-g"
    wf = WorkflowConfig.from_config(TABARENA_CONFIG)
    targets = [path for path in wf.split_metas() if f"/{name}/" in path]
    targets += [path for path in wf.fidelity_files() + wf.metrics_files() if f"/{name}/" in path]
    assert tabarena_dry_run(tmp_path, *targets) == tabarena_jobs_per_dataset()


@pytest.mark.parametrize("change, message", [
    (lambda c: c["protocol"].update(n_fold=3), "'n_fold' was unexpected"),
    (lambda c: c.update(protocl={}), "'protocl' was unexpected"),
    (lambda c: c["datasets"]["iris"].update(targt="y"), "'targt' was unexpected"),
    (lambda c: c["finetune"].update(device="gpu"), "'gpu' does not match"),
    (lambda c: c["protocol"].update(folds=[0, 2]), "config: protocol.folds [2] must be below protocol.n_folds (2)"),
    (lambda c: c["datasets"].update({"my data": {"source": "sklearn:iris"}}), "'my data' does not match"),
    (lambda c: c["datasets"]["iris"].update(source="kaggle:iris"),
     "config: datasets.iris.source: [prepare] iris: unknown source kind 'kaggle'"),
])
def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path, change, message):
    config = tiny_config()
    change(config)
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_failing_job_reports_the_stage_error_and_leaves_no_output(tmp_path):
    (tmp_path / "one_class.csv").write_text("x,target\n1,a\n2,a\n3,a\n")
    write_config(tmp_path, tiny_config(datasets={"one_class": {"source": "file:one_class.csv"}}))
    result = run_snakemake(tmp_path, "results/data/one_class.meta.json", check=False)
    assert result.returncode != 0
    assert "[prepare] one_class: a single class 'a'" in result.stdout + result.stderr
    assert not list((tmp_path / "results" / "data").glob("one_class*"))


@pytest.mark.slow
def test_run_rerun_nothing_and_edit_reruns_only_the_edited_stage(tmp_path):
    repo = tmp_path / "repo"  # a copy, so that editing its modules leaves the real one alone
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("workflow", "src", "envs"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    shutil.copy(REPO / "Snakefile", repo / "Snakefile")
    work = tmp_path / "work"
    work.mkdir()
    write_config(work, tiny_config())

    def snakemake(*args):
        return run_snakemake(work, *args, *SPLIT_METAS, snakefile=repo / "Snakefile")

    first = snakemake()
    assert job_counts(first.stdout + first.stderr) == {"prepare_dataset": 2, "split": 4}
    for dataset, fold in GRID:
        folder = work / "results" / "splits" / dataset / f"fold{fold}" / "real48"
        assert all((folder / f"{part}.parquet").is_file() for part in ("train", "val", "test"))
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["counts"]["train"]["n"] + meta["counts"]["val"]["n"] == 48
        assert (work / "results" / "logs" / "split" / dataset / f"fold{fold}" / "real48.log").is_file()
        assert (work / "results" / "benchmarks" / "split" / dataset / f"fold{fold}" / "real48.tsv").is_file()
    table, schema, _ = read_prepared(work / "results/data/diabetes.parquet", work / "results/data/diabetes.meta.json")
    assert list(table.columns) == [*schema.names, "target"]

    assert "Nothing to be done" in snakemake().stderr

    splits_module = repo / "src" / "causalmixft" / "data" / "splits.py"
    splits_module.write_text(splits_module.read_text() + "\n# an edit\n")
    edited = snakemake("--dry-run")
    assert job_counts(edited.stdout) == {"split": 4}

    prepare_module = repo / "src" / "causalmixft" / "data" / "prepare.py"
    prepare_module.write_text(prepare_module.read_text() + "\n# an edit\n")
    assert job_counts(snakemake("--dry-run").stdout) == {"prepare_dataset": 2, "split": 4}


def test_scripts_are_thin():
    for script in (REPO / "workflow" / "scripts").glob("*.py"):
        if script.name in ("prepare_dataset.py", "split.py"):
            assert len(Path(script).read_text().splitlines()) < 25
