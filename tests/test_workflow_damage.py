"""Damaged files heal: the job that reads one removes it naming it, and a plain rerun rebuilds it.

One finished run of the tiny config (diabetes, one fold, sizes [0, 16], zeroshot, finetune and
causalmixft), then one file at a time is truncated as a disk or a copy might leave it:

| damaged | the failing run | the plain rerun |
|---|---|---|
| a run's metrics.json | aggregate names it, removes the run's files, keeps the last report | that run, aggregate |
| a run's model.safetensors (read by no job) | the same | the same |
| a split's train.parquet | the job that reads it names and removes it | split and what follows |
| a synthetic sample n16.parquet | the fine-tuning job names and removes it | that sample, its run, aggregate |

Files are found by glob, not by path, so the test holds whatever folders the grid adds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import job_counts, repo_copy, run_snakemake, write_config
from test_workflow_reruns import small_config

pytestmark = pytest.mark.slow

REPORT = ("report/summary.md", "tables/runs_long.csv", "tables/improvement.csv", "plots/scaling.png")


def one(results: Path, pattern: str) -> Path:
    (path,) = results.glob(pattern)
    return path


def test_damaged_files_are_removed_by_their_reader_and_a_plain_rerun_rebuilds_them(tmp_path):
    repo = repo_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    write_config(work, small_config())
    results = work / "results"

    def snakemake(*args, check=True):
        return run_snakemake(work, *args, snakefile=repo / "Snakefile", check=check)

    def logs(rule: str) -> str:
        """Every log of ``rule`` (results/logs/<rule>.log or results/logs/<rule>/**/*.log)."""
        paths = [results / "logs" / f"{rule}.log", *(results / "logs" / rule).rglob("*.log")]
        return "\n".join(path.read_text() for path in paths if path.is_file())

    snakemake()
    assert (results / "report" / "manifest.json").exists()

    # A run's metrics.json, then its weights: the aggregate finds it, removes the run, keeps the report.
    for name, problem in [("metrics.json", "is not valid JSON"), ("model.safetensors", "is damaged")]:
        report = {name: (results / name).read_bytes() for name in REPORT}  # timings differ between runs
        damaged = one(results, f"runs/*/finetune/**/{name}")
        os.truncate(damaged, 20)
        failed = snakemake(check=False)
        assert failed.returncode != 0
        assert f"{damaged.relative_to(work)} {problem}" in logs("aggregate").replace(str(work) + "/", "")
        assert "a plain rerun of the workflow (the same command) fine-tunes them again" in logs("aggregate")
        assert not damaged.parent.joinpath("metrics.json").exists()
        assert {n: (results / n).read_bytes() for n in REPORT} == report, "the last good report was lost"
        assert not (results / "report" / "manifest.json").exists()  # so the rerun redoes the aggregate
        rebuilt = snakemake()
        assert job_counts(rebuilt.stderr) == {"finetune": 1, "aggregate": 1, "all": 1}

    # Inputs of fine-tuning: a split's table, a synthetic sample (read when a run is redone).
    for pattern, reruns in [
        ("synth/causalmixft/**/n16.parquet", {"sample_generator": 1, "finetune": 1, "aggregate": 1, "all": 1}),
        ("splits/**/train.parquet", None),
    ]:
        damaged = one(results, pattern)
        os.truncate(damaged, 500)
        one(results, "runs/*/causalmixft/**/metrics.json").unlink()  # a run that reads both
        failed = snakemake(check=False)
        assert failed.returncode != 0
        message = f"{damaged.relative_to(work)} is not a readable parquet table"
        assert message in logs("finetune").replace(str(work) + "/", ""), logs("finetune")[-2000:]
        assert "a plain rerun of the workflow (the same command) rebuilds it" in logs("finetune")
        assert not damaged.exists()
        rebuilt = snakemake()
        if reruns is not None:
            assert job_counts(rebuilt.stderr) == reruns
        else:
            assert job_counts(rebuilt.stderr)["split"] == 1
    assert "Nothing to be done" in snakemake("--dry-run").stdout
