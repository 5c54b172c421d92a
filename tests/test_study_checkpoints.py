"""Study checkpoints (causalmixft.study_checkpoints): finished cells saved into the repository and
restored in a fresh checkout, only into the same code, never over a user's file; and (slow) a real
tiny run whose restored cells Snakemake takes as done."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import MANIFEST, REPO, TABARENA, job_counts, repo_copy, run_snakemake, tiny_config, write_config

from causalmixft import layout
from causalmixft.study_checkpoints import (
    CheckpointError,
    cell_files,
    code_id,
    complete_cells,
    load_workflow,
    restore,
    save,
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)


def test_a_cells_files_are_its_jobs_outputs_logs_and_benchmarks_and_its_datasets_table(tmp_path):
    mine = [
        "results/data/a.parquet", "results/data/a.meta.json", "results/logs/prepare_dataset/a.log",
        "results/benchmarks/prepare_dataset/a.tsv", "results/splits/a/fold0/real32/train.parquet",
        "results/logs/split/a/fold0/real32.log", "results/causal/a/fold0/real32/dag.json",
        "results/generators/causalmixft/a/fold0/real32/generator.pkl",
        "results/synth/causalmixft/a/fold0/real32/n26.parquet",
        "results/logs/sample_generator/causalmixft/a/fold0/real32/n26.log",
        "results/runs/tfm-small/finetune/a/fold0/real32/n0/metrics.json",
        "results/benchmarks/finetune/tfm-small/finetune/a/fold0/real32/n0.tsv",
        "results/failed/fit_generator/smote/a/fold0/real32.json",
    ]
    others = [
        "results/splits/a/fold0/real320/train.parquet", "results/logs/split/a/fold0/real320.log",  # another budget
        "results/splits/a/fold1/real32/train.parquet",  # another fold
        "results/data/a.b.parquet", "results/logs/prepare_dataset/a.b.log",  # dataset "a.b"
        "results/splits/a.b/fold0/real32/train.parquet", "results/tables/effects.csv",
    ]
    touch(tmp_path, *mine, *others)
    assert cell_files(tmp_path, ("a", 0, 32), ["a", "a.b"]) == sorted(mine)


def study_config(directory: Path, **finetune) -> dict:
    config = tiny_config()
    config["finetune"].update(keep_weights=False, **finetune)
    config["analysis"] = {"equivalence_margin": 0.01}
    write_config(directory, config)
    return config


def fake_runs(workdir: Path, cell: tuple[str, int, int]) -> list[str]:
    """Every run of ``cell`` finished (config.json, metrics.json) plus a split file of the cell."""
    _, workflow = load_workflow(REPO, workdir, [])
    written = []
    for run, folder in zip(workflow.runs(), workflow.run_dirs()):
        if (run.dataset, run.fold, run.budget) == cell:
            for name in ("config.json", "metrics.json"):
                (workdir / folder).mkdir(parents=True, exist_ok=True)
                (workdir / folder / name).write_text(json.dumps({"run": folder}))
                written.append(f"{folder}/{name}")
    split = layout.fill(layout.SPLIT, dataset=cell[0], fold=cell[1], budget=cell[2]) + "/train.parquet"
    touch(workdir, split)
    return sorted([*written, split])


def two_checkouts(tmp_path: Path) -> tuple[Path, Path, Path, list[str]]:
    """A study folder with one finished cell (iris, fold 1), a fresh one, a checkpoint folder."""
    work, fresh, folder = tmp_path / "work", tmp_path / "fresh", tmp_path / "checkpoints"
    for directory in (work, fresh):
        directory.mkdir()
        study_config(directory)
    return work, fresh, folder, fake_runs(work, ("iris", 1, 48))


def test_save_packs_complete_cells_once_and_restore_brings_them_back_as_current(tmp_path):
    work, fresh, folder, files = two_checkouts(tmp_path)
    (work / files[0]).unlink()  # ("iris", 1) lacks a run: not complete yet
    _, workflow = load_workflow(REPO, work, [])
    assert complete_cells(workflow, work) == [] and save(REPO, work, [], folder) is None
    files = fake_runs(work, ("iris", 1, 48))
    index_path = save(REPO, work, [], folder)
    index = json.loads(index_path.read_text())
    assert index["cells"] == [["iris", 1, 48]] and index["runs"] == (len(files) - 1) // 2 and sorted(index["files"]) == files
    assert index["code_id"] == code_id(REPO, work, []) and index_path.with_suffix(".tar.xz").exists()
    assert save(REPO, work, [], folder) is None  # nothing new

    before = time.time()
    assert restore(REPO, fresh, [], folder) == (len(files), 0)
    for name in files:
        assert (fresh / name).read_bytes() == (work / name).read_bytes()
        assert os.stat(fresh / name).st_mtime >= before - 1  # as new as the checkout it is restored into
    assert restore(REPO, fresh, [], folder) == (0, len(files))  # again: nothing to write

    fake_runs(work, ("diabetes", 0, 48))
    second = save(REPO, work, [], folder)
    assert second.name.startswith("002-") and json.loads(second.read_text())["cells"] == [["diabetes", 0, 48]]


def test_restore_writes_nothing_over_a_users_file_or_into_other_code(tmp_path):
    work, fresh, folder, files = two_checkouts(tmp_path)
    save(REPO, work, [], folder)
    touch(fresh, files[-1])
    (fresh / files[-1]).write_text("the user's own")  # a file of the user's at a path the checkpoint holds
    with pytest.raises(CheckpointError, match=r"1 file\(s\) under .* differ from the checkpoints' .*nothing restored"):
        restore(REPO, fresh, [], folder)
    assert [p for p in fresh.rglob("*") if p.is_file() and p.name != "config.yaml"] == [fresh / files[-1]]

    other = tmp_path / "other"
    other.mkdir()
    study_config(other, lr=0.5)  # another recipe: other runs
    with pytest.raises(CheckpointError, match=r"made by other code than this checkout's .* nothing restored"):
        restore(REPO, other, [], folder)
    assert not (other / "results").exists()
    with pytest.raises(CheckpointError, match="made by other code"):
        save(REPO, other, [], folder)


def test_the_code_id_follows_what_the_jobs_run_and_not_what_only_the_aggregate_runs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    config = study_config(work)
    repo = repo_copy(tmp_path)
    time.sleep(0.01)
    same = repo_copy(tmp_path / "again")  # another checkout, other times: the same code
    start = code_id(repo, work, [])
    assert code_id(same, work, []) == start
    with open(repo / "src/causalmixft/analysis/summary.py", "a") as handle:  # the aggregate's
        handle.write("\n# an edit\n")
    config["analysis"]["equivalence_margin"] = 0.02
    write_config(work, config)
    assert code_id(repo, work, []) == start
    with open(repo / "src/causalmixft/causal/scm.py", "a") as handle:  # a job's
        handle.write("\n# an edit\n")
    assert code_id(repo, work, []) != start


@pytest.mark.slow
def test_snakemake_takes_the_restored_cells_of_a_real_run_as_done(tmp_path):
    """A tiny real study run, saved; a fresh checkout (a copy of the code: new times) restores it and
    its dry run plans only the aggregate; a cell not in the checkpoint is still run."""
    repo, folder = repo_copy(tmp_path / "a"), tmp_path / "checkpoints"
    config = tiny_config()
    config["datasets"] = {"diabetes": {"source": f"file:{TABARENA / 'diabetes.csv.gz'}", "manifest": str(MANIFEST)}}
    config["protocol"].update(n_folds=2, folds=[0, 1], real_budget=64)
    config["synthetic"]["sizes"] = [0, 16]
    config["finetune"].update(methods=["zeroshot", "finetune", "causalmixft"], steps=2, eval_every=1,
                              warmup_steps=0, device="cpu", keep_weights=False)
    work = tmp_path / "work"
    work.mkdir()
    write_config(work, config)
    _, workflow = load_workflow(repo, work, [])
    fold0 = [m for r, m in zip(workflow.runs(), workflow.metrics_files()) if r.fold == 0]
    run_snakemake(work, *fold0, snakefile=repo / "Snakefile")
    assert not list((work / "results" / "runs").rglob("model.safetensors"))  # keep_weights: false
    index = json.loads(save(repo, work, [], folder).read_text())
    assert index["cells"] == [["diabetes", 0, 64]] and index["runs"] == 3

    time.sleep(1)
    fresh_repo, fresh = repo_copy(tmp_path / "b"), tmp_path / "fresh"
    fresh.mkdir()
    write_config(fresh, config)
    written, _ = restore(fresh_repo, fresh, [], folder)
    assert written == len(index["files"])
    dry = run_snakemake(fresh, "--dry-run", snakefile=fresh_repo / "Snakefile")
    counts = job_counts(dry.stdout)
    # fold 1 is still to run (its own split, DAG, generator, sample, 3 runs); nothing of fold 0
    assert counts == {"split": 1, "discover_dag": 1, "fit_generator": 1, "sample_generator": 1, "finetune": 3,
                      "aggregate": 1, "all": 1}, dry.stdout
    fold0_dry = run_snakemake(fresh, "--dry-run", *fold0, snakefile=fresh_repo / "Snakefile")
    assert "Nothing to be done" in fold0_dry.stdout + fold0_dry.stderr
