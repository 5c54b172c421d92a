"""Incremental reruns: after a change, Snakemake reruns what the change invalidates and nothing else.

Real runs of a tiny config (diabetes, one fold, real budget 64, sizes [0, 16], 2 fine-tuning
steps) in a copy of the repository, with the default profile's rerun triggers (mtime, input,
params, code). Each change is checked with a dry run's job counts, then undone (or run).

| change | rules rerun |
|---|---|
| synthetic sizes + one size | sample_generator and finetune at the new size only, aggregate |
| scm.quality | fit_generator, sample_generator (causalmixft's), finetune of SCM-sampling methods, aggregate |
| content of causal/scm.py | the same (not discover_dag, not split) |
| finetune settings (lr) | finetune (every run), aggregate |
| backbone.weights: another folder / one that is not there | finetune (every run), aggregate / an error naming the folder |
| dag.json, dag.png, a generator's report.json, a run's model.safetensors or config.json deleted | the job that writes it and what follows |
| a run killed mid-way (SIGKILL) | that run, redone on the next invocation with the same metrics |
| a damaged generator.pkl (signature mismatch) | the sampling job removes it and fails; a plain rerun refits and resamples the same rows |
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import MANIFEST, REPO, TABARENA, job_counts, repo_copy, run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

CAUSAL_CHAIN = {"fit_generator": 1, "sample_generator": 2, "finetune": 2, "aggregate": 1, "all": 1}
TIMING_FIELDS = ("wall_time_s", "steps_per_second")


def small_config(**finetune) -> dict:
    config = tiny_config()
    config["datasets"] = {"diabetes": {"source": f"file:{TABARENA / 'diabetes.csv.gz'}", "manifest": str(MANIFEST)}}
    config["protocol"].update(n_folds=2, folds=[0], real_budget=64)
    config["synthetic"]["sizes"] = [0, 16]
    config["finetune"].update(methods=["zeroshot", "finetune", "causalmixft"], steps=2, eval_every=1, warmup_steps=0)
    config["finetune"].update(device="cpu", **finetune)
    return config


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_change_reruns_only_what_it_invalidates(tmp_path):
    repo = repo_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    config = small_config()
    write_config(work, config)

    def snakemake(*args, check=True):
        return run_snakemake(work, *args, snakefile=repo / "Snakefile", check=check)

    def dry_run():
        result = snakemake("--dry-run")
        return job_counts(result.stdout) or ("nothing" if "Nothing to be done" in result.stdout + result.stderr else {})

    first = snakemake()
    assert job_counts(first.stderr) == {
        "prepare_dataset": 1,
        "split": 1,
        "discover_dag": 1,
        "fit_generator": 1,
        "sample_generator": 1,
        "finetune": 3,
        "aggregate": 1,
        "all": 1,
    }
    assert dry_run() == "nothing"

    # A documented output deleted by hand is missing to `rule all`: a plain rerun restores it
    # (before: "Nothing to be done"). Put back (mtimes kept), nothing is left to do.
    results = work / "results"
    scm_chain = {"fit_generator": 1, "sample_generator": 1, "finetune": 1, "aggregate": 1, "all": 1}
    folders = {"dag.json": "causal", "dag.png": "causal", "report.json": "generators/causalmixft"}
    for name, reruns in [
        ("dag.json", {"discover_dag": 1, **scm_chain}),
        ("dag.png", {"discover_dag": 1, **scm_chain}),
        ("report.json", scm_chain),
        ("model.safetensors", {"finetune": 1, "aggregate": 1, "all": 1}),
        ("config.json", {"finetune": 1, "aggregate": 1, "all": 1}),
    ]:
        where = results / folders.get(name, "runs/tfm-small/finetune")
        (path,) = where.rglob(name)
        kept = tmp_path / name
        shutil.copy2(path, kept)
        path.unlink()
        assert dry_run() == reruns, name
        shutil.copy2(kept, path)
    assert dry_run() == "nothing"

    # A new synthetic size: its samples and runs only; the existing size's files stay as they are.
    synth = work / "results" / "synth" / "causalmixft" / "diabetes"
    runs = work / "results" / "runs" / "tfm-small"
    kept = {p: digest(p) for p in [*synth.glob("fold*/real*/n16.*"), *runs.glob("*/diabetes/fold*/real*/n*/metrics.json")]}
    config["synthetic"]["sizes"] = [0, 16, 32]
    write_config(work, config)
    assert dry_run() == {"sample_generator": 1, "finetune": 1, "aggregate": 1, "all": 1}
    added = snakemake()
    assert job_counts(added.stderr) == {"sample_generator": 1, "finetune": 1, "aggregate": 1, "all": 1}
    assert len(kept) == 5 and {p: digest(p) for p in kept} == kept
    # nested: n32 starts with the rows of n16, drawn in another job
    small, large = (pd.read_parquet(synth / "fold0" / "real64" / f"n{n}.parquet") for n in (16, 32))
    pd.testing.assert_frame_equal(small, large.iloc[:16].reset_index(drop=True))
    assert sorted(p.parent.name for p in runs.glob("causalmixft/diabetes/fold0/real64/n*/metrics.json")) == ["n16", "n32"]

    # An SCM setting: fitting, sampling, the runs on the samples, aggregation; not splits or discovery.
    config["scm"]["quality"] = "good"
    write_config(work, config)
    assert dry_run() == CAUSAL_CHAIN
    config["scm"]["quality"] = "fast"  # undone: the next dry run finds nothing to do
    write_config(work, config)

    # The SCM module's content (a plain touch changes nothing: Snakemake compares checksums).
    module = repo / "src" / "causalmixft" / "causal" / "scm.py"
    original = module.read_text()
    os.utime(module)
    assert dry_run() == "nothing"
    module.write_text(original + "\n# an edit\n")
    assert dry_run() == CAUSAL_CHAIN
    module.write_text(original)  # undone: the next dry run has no causal jobs

    # A fine-tuning setting: every run and the aggregation, nothing upstream.
    lr = config["finetune"]["lr"]
    config["finetune"]["lr"] = 2.0e-3
    write_config(work, config)
    assert dry_run() == {"finetune": 4, "aggregate": 1, "all": 1}
    config["finetune"]["lr"] = lr
    write_config(work, config)

    # Other backbone weights (the same files, mtimes kept): every run again. Weights that are not
    # there stop the workflow naming the folder (they passed, with the old runs taken as current).
    copy = shutil.copytree(config["backbone"]["weights"], tmp_path / "weights-copy")
    config["backbone"]["weights"] = str(copy)
    write_config(work, config)
    assert dry_run() == {"finetune": 4, "aggregate": 1, "all": 1}
    config["backbone"]["weights"] = str(tmp_path / "no-weights")
    write_config(work, config)
    gone = snakemake("--dry-run", check=False)
    assert gone.returncode != 0
    assert f"config: backbone.weights: {tmp_path / 'no-weights'} does not exist" in gone.stdout + gone.stderr


def script_cpu_seconds(group: int, script: str) -> float:
    """CPU seconds used so far by the processes of ``group`` whose command line names ``script``."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == group and script.encode() in cmdline:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def test_a_run_killed_mid_way_is_redone_and_gives_the_same_metrics(tmp_path):
    repo = repo_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    # About 15 CPU seconds of steps (64-row episodes), so that the kill lands inside the step loop.
    write_config(work, small_config(steps=600, eval_every=100, patience=100, warmup_steps=5))
    target = "results/runs/tfm-small/finetune/diabetes/fold0/real64/n0/metrics.json"

    def snakemake(*args):
        return run_snakemake(work, *args, snakefile=repo / "Snakefile")

    assert job_counts(snakemake("results/splits/diabetes/fold0/real64/meta.json").stderr) == {"prepare_dataset": 1, "split": 1}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(work)]
    command += ["--workflow-profile", str(repo / "workflow/profiles/default"), "--cores", "1", target]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, cwd=work, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # Kill once the job's script has used 7 CPU seconds: past imports and model loading (about
        # 4), before the end of its 600 steps (about 20), however loaded the machine is.
        deadline = time.monotonic() + 300
        while script_cpu_seconds(process.pid, "finetune.py") < 7 and process.poll() is None:
            assert time.monotonic() < deadline, "the finetune job did not get going"
            time.sleep(0.1)
        assert process.poll() is None, "the run finished before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert not (work / target).exists()
    assert "selected step" not in (work / "results/logs/finetune/tfm-small/finetune/diabetes/fold0/real64/n0.log").read_text()

    # A SIGKILLed Snakemake leaves its lock behind: unlock, then run again; the run is redone.
    snakemake("--unlock")
    redone = snakemake("--rerun-incomplete", target)
    assert job_counts(redone.stderr) == {"finetune": 1}
    interrupted = json.loads((work / target).read_text())
    assert interrupted["steps_run"] == 600

    uninterrupted = snakemake(target, "--forcerun", target)
    assert job_counts(uninterrupted.stderr) == {"finetune": 1}
    reference = json.loads((work / target).read_text())
    assert without_timings(interrupted) == without_timings(reference)


def without_timings(metrics: dict) -> dict:
    """A run's metrics.json without the wall-clock fields (top level and per replicate)."""
    kept = {key: value for key, value in metrics.items() if key not in TIMING_FIELDS}
    kept["replicates"] = [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in metrics["replicates"]]
    return kept


def test_a_damaged_pickle_is_removed_by_the_job_that_reads_it_and_a_plain_rerun_rebuilds_it(tmp_path):
    repo = repo_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    config = small_config()
    config["datasets"] = {"iris": {"source": "sklearn:iris"}}
    write_config(work, config)
    target = "results/synth/causalmixft/iris/fold0/real64/n16.parquet"
    scm = work / "results" / "generators" / "causalmixft" / "iris" / "fold0" / "real64" / "generator.pkl"

    def snakemake(*args, check=True):
        return run_snakemake(work, *args, target, snakefile=repo / "Snakefile", check=check)

    snakemake()
    first = pd.read_parquet(work / target)
    scm.write_bytes(scm.read_bytes() + b"\0")  # damaged after it was written

    damaged = snakemake(check=False)
    assert damaged.returncode != 0
    log = (work / "results/logs/sample_generator/causalmixft/iris/fold0/real64/n16.log").read_text()
    assert "[sample] iris: refusing to unpickle" in log
    removed = "Removed generator.pkl and generator.pkl.sha256: a plain rerun of the workflow (the same command) rebuilds them"
    assert removed in log
    assert not scm.exists() and not scm.with_name("generator.pkl.sha256").exists()

    rebuilt = snakemake()
    assert job_counts(rebuilt.stderr) == {"fit_generator": 1, "sample_generator": 1}
    pd.testing.assert_frame_equal(pd.read_parquet(work / target), first)
