"""The SLURM profile (workflow/profiles/slurm) on a real one-node SLURM cluster, faults included.

Needs a cluster that answers `sinfo` with an idle node and lets this user drain it: .ci/slurm-up
starts one (munged, slurmctld, slurmd; no accounting database), and .ci/run runs these tests
between it and .ci/slurm-down. Skipped where `sinfo` is absent or shows no usable node.

The CI config (.test/config/config.yaml: diabetes, fold 0, sizes 0 and 64, one replicate) runs
locally (the reference) and through `sbatch` in three invocations sharing one work folder:
  A. the profile as shipped plus `slurm_account` (README: a cluster without accounting), with
     --retries 0; while it runs the node is drained (during the grouped small jobs) and resumed
     once the fine-tuning jobs have waited, and one running fine-tuning job is scancel'ed;
  B. the next invocation, with the fine-tuning rule's first-attempt memory set far too low: it must
     rerun exactly the cancelled job, SLURM kills that for its memory, and the retry gets the
     profile's second-attempt memory;
  C. a third invocation, which must submit nothing.
Scores are compared file by file: every metrics.json found under each results folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import ci_config, ci_local_run_once, job_counts, repo_copy, write_config

TINY_MEM_MB = 100  # far below what a fine-tuning job's Python process holds (~1 GB with torch)
SMALL_RULES = {"prepare_dataset", "split", "discover_dag"}


def _slurm(*args: str, check: bool = True, timeout: int = 30) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=check).stdout


def usable_node() -> str | None:
    """The cluster's one node where sinfo shows it idle, else None."""
    if shutil.which("sinfo") is None or shutil.which("scontrol") is None:
        return None
    try:
        lines = _slurm("sinfo", "--noheader", "--format=%n %t", timeout=10).split()  # no controller: sinfo retries
    except (subprocess.SubprocessError, OSError):
        return None
    nodes = dict(zip(lines[::2], lines[1::2]))
    idle = [name for name, state in nodes.items() if state == "idle"]
    return idle[0] if len(nodes) == 1 and idle else None


NODE = usable_node()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NODE is None,
        reason="no one-node SLURM cluster with an idle node (`sinfo`); start one with .ci/slurm-up",
    ),
]


@dataclass
class Job:
    id: int
    state: str
    comment: str  # the plugin's: rule_<rule>_wildcards_<values> or rule_<group>_... for a group job
    min_memory: str  # squeue's %m, e.g. 8000M
    reason: str

    @property
    def is_finetune(self) -> bool:
        return self.comment.startswith("rule_finetune")


def jobs_after(first_id: int) -> dict[int, Job]:
    """Jobs SLURM still shows (MinJobAge keeps finished ones) with ids above first_id."""
    out = _slurm("squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%m|%r")
    jobs = {}
    for line in out.splitlines():
        job_id, state, comment, memory, reason = line.strip().split("|", 4)
        if int(job_id) > first_id:
            jobs[int(job_id)] = Job(int(job_id), state, comment, memory, reason)
    return jobs


def last_job_id() -> int:
    ids = _slurm("squeue", "--states=all", "--noheader", "--format=%i").split()
    return max((int(i) for i in ids), default=0)


def submitted_ids(log: str) -> set[int]:
    return {int(i) for i in re.findall(r"has been submitted with SLURM jobid (\d+)", log)}


def metrics_by_run(work: Path) -> dict[str, dict]:
    """Every metrics.json under work/results by its path there: the scores, without timings."""
    runs = {}
    for path in sorted((work / "results").glob("**/metrics.json")):
        metrics = json.loads(path.read_text())
        curves = [replicate["curve"] for replicate in metrics["replicates"]]
        runs[str(path.relative_to(work))] = {"selected": metrics["selected"], "curves": curves}
    return runs


def profile_expression(profile: Path, rule: str, resource: str) -> str:
    return str(yaml.safe_load((profile / "config.yaml").read_text())["set-resources"][rule][resource])


def node_memory_mb() -> int:
    return int(re.search(r"RealMemory=(\d+)", _slurm("scontrol", "show", "node", NODE))[1])


@dataclass
class Invocation:
    returncode: int
    log: str
    jobs: dict[int, Job]
    seconds: float
    metrics: dict[str, dict] = field(default_factory=dict)


@dataclass
class ClusterRuns:
    work: Path
    local: dict[str, dict]
    local_counts: dict[str, int]
    a: Invocation
    b: Invocation
    c: Invocation
    cancelled: Job
    drain: dict
    retry_mem_mb: int | None  # the profile's finetune mem_mb at attempt 2; None: the node is smaller


def snakemake_command(work: Path, repo: Path, *args: str) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(work)]
    # a short first status check (the profile's 20 s suits a real queue, not a 10-job test)
    command += ["--workflow-profile", str(repo / "workflow/profiles/slurm")]
    return [*command, "--slurm-init-seconds-before-status-checks", "2", *args]


def invoke(work: Path, repo: Path, env: dict, *args: str) -> Invocation:
    first, start = last_job_id(), time.monotonic()
    result = subprocess.run(
        snakemake_command(work, repo, *args), cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    log = result.stdout + result.stderr
    return Invocation(result.returncode, log, jobs_after(first), time.monotonic() - start, metrics_by_run(work))


def run_with_drain_and_cancel(work: Path, repo: Path, env: dict) -> tuple[Invocation, Job, dict]:
    """Invocation A: drain the node while the grouped small jobs run, resume it once the fine-tuning
    jobs have been pending for 5 s, then scancel the first job that fine-tunes once it has run for
    4 s (its Python process started, not a job cancelled at launch)."""
    first, start = last_job_id(), time.monotonic()
    log_path = work / "invocation-a.log"
    drain: dict = {"pending_while_drained": {}, "node_states": set()}
    cancelled, running_since = None, {}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            snakemake_command(work, repo, "--retries", "0"), cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            while process.poll() is None and time.monotonic() - start < 600:
                jobs = jobs_after(first)
                finetune = [job for job in jobs.values() if job.is_finetune]
                if "drained_at" not in drain and any(not j.is_finetune and j.state == "RUNNING" for j in jobs.values()):
                    _slurm("scontrol", "update", f"nodename={NODE}", "state=drain", "reason=causalmixft-test")
                    drain["drained_at"] = time.monotonic() - start
                elif "drained_at" in drain and "resumed_at" not in drain:
                    drain["node_states"].add(_slurm("sinfo", "--noheader", "--format=%t", f"--nodes={NODE}").strip())
                    pending = [job for job in finetune if job.state == "PENDING"]
                    for job in pending:
                        drain["pending_while_drained"][job.id] = job.reason
                    drain.setdefault("started_while_drained", set()).update(
                        job.id for job in finetune if job.state != "PENDING"
                    )
                    if pending and "first_pending_at" not in drain:
                        drain["first_pending_at"] = time.monotonic() - start
                    if pending and time.monotonic() - start - drain["first_pending_at"] > 5:
                        _slurm("scontrol", "update", f"nodename={NODE}", "state=resume")
                        drain["resumed_at"] = time.monotonic() - start
                elif cancelled is None and "resumed_at" in drain:
                    for job in finetune:
                        if job.state == "RUNNING" and "_zeroshot_" not in job.comment:
                            running_since.setdefault(job.id, time.monotonic())
                    now = time.monotonic()
                    ready = [j for j in finetune if j.state == "RUNNING" and now - running_since.get(j.id, now) >= 4]
                    if ready:
                        cancelled = ready[0]
                        _slurm("scancel", str(cancelled.id))
                        drain["cancelled_at"] = time.monotonic() - start
                time.sleep(0.5)
        finally:
            if "drained_at" in drain and "resumed_at" not in drain:
                _slurm("scontrol", "update", f"nodename={NODE}", "state=resume", check=False)
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
    invocation = Invocation(
        process.returncode, log_path.read_text(), jobs_after(first), time.monotonic() - start, metrics_by_run(work)
    )
    assert cancelled is not None, f"no fine-tuning job was seen running to cancel:\n{invocation.log[-3000:]}"
    return invocation, cancelled, drain


@pytest.fixture(scope="module")
def cluster_runs(tmp_path_factory) -> ClusterRuns:
    root = tmp_path_factory.mktemp("cluster")
    repo = repo_copy(root)
    profile = repo / "workflow" / "profiles" / "slurm"
    profile_yaml = profile / "config.yaml"
    # README: on a cluster without accounting, name any account (the plugin's guess only errors)
    config = yaml.safe_load(profile_yaml.read_text())
    config["default-resources"]["slurm_account"] = "ci"
    profile_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    work = root / "work"
    work.mkdir()
    write_config(work, ci_config())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    # The local reference run goes beside invocation A, which mostly waits for SLURM and its status checks.
    with ThreadPoolExecutor(max_workers=1) as pool:
        local_run = pool.submit(ci_local_run_once, tmp_path_factory)
        a, cancelled, drain = run_with_drain_and_cancel(work, repo, env)
        local_work = local_run.result()

    # B: the first attempt of fine-tuning gets a memory limit it cannot live with; the retry (the
    # profile's retries: 1) gets the profile's own expression at attempt 2.
    expression = profile_expression(profile, "finetune", "mem_mb")
    retry_mem_mb = int(eval(expression, {"attempt": 2}))  # noqa: S307 - the profile's resource expression
    if retry_mem_mb <= node_memory_mb():
        config["set-resources"]["finetune"]["mem_mb"] = f"{TINY_MEM_MB} if attempt == 1 else {expression}"
        profile_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        retry_mem_mb = None
    b = invoke(work, repo, env)
    c = invoke(work, repo, env)
    local_log = (local_work / "snakemake.log").read_text()
    for name, invocation in {"A": a, "B": b, "C": c}.items():
        print(f"invocation {name}: {invocation.seconds:.0f} s, {len(invocation.jobs)} SLURM jobs, rc {invocation.returncode}")
        for job in invocation.jobs.values():
            print(f"  job {job.id}: {job.state}, --mem {job.min_memory}, {job.comment}")
    print(f"drain and scancel (seconds into invocation A): {drain}")
    return ClusterRuns(
        work, metrics_by_run(local_work), job_counts(local_log), a, b, c, cancelled, drain, retry_mem_mb
    )


def test_every_job_goes_through_sbatch_and_the_small_jobs_as_two_group_jobs(cluster_runs):
    a = cluster_runs.a
    # the same DAG as the local run: 5 small jobs, one fine-tuning job per run, aggregate, all
    assert job_counts(a.log) == cluster_runs.local_counts
    assert submitted_ids(a.log) == set(a.jobs), (a.jobs, a.log[-3000:])
    groups = [job for job in a.jobs.values() if not job.is_finetune]
    finetune = [job for job in a.jobs.values() if job.is_finetune]
    # prep (prepare, split, discover) and generators (causalmixft's fit and sample)
    assert sorted(job.comment.split("_")[1] for job in groups) == ["generators", "prep"], groups
    assert len(finetune) == cluster_runs.local_counts["finetune"]
    for rule in SMALL_RULES | {"fit_generator", "sample_generator"}:
        assert f"(Rule: {rule})" in a.log  # finished, inside a group job
    assert all(job.state == "COMPLETED" for job in groups)
    # aggregate and all are local rules; no account guess without accounting once one is named
    assert "Unable to guess SLURM account" not in a.log and "invalid option" not in a.log


def test_scancel_is_reported_and_the_next_invocation_reruns_exactly_that_job(cluster_runs):
    a, b, victim = cluster_runs.a, cluster_runs.b, cluster_runs.cancelled
    assert a.returncode != 0
    assert a.jobs[victim.id].state == "CANCELLED"
    assert f"SLURM-job '{victim.id}' failed, SLURM status is: 'CANCELLED'" in a.log
    others = [job for job in a.jobs.values() if job.id != victim.id]
    assert all(job.state == "COMPLETED" for job in others), others
    # the cancelled run left no metrics; every other run is there
    missing = set(cluster_runs.local) - set(a.metrics)
    assert len(missing) == 1 and set(a.metrics) < set(cluster_runs.local), missing
    # B submitted that job only (its first attempt and, with the memory fault, its retry)
    assert b.returncode == 0, b.log[-3000:]
    assert b.jobs and {job.comment for job in b.jobs.values()} == {victim.comment}
    assert submitted_ids(b.log) == set(b.jobs)


def test_a_job_over_its_memory_is_killed_and_its_retry_gets_the_next_attempts_memory(cluster_runs):
    if cluster_runs.retry_mem_mb is None:
        pytest.skip("the profile's second-attempt fine-tuning memory exceeds this node's RealMemory")
    b = cluster_runs.b
    first, retry = (b.jobs[i] for i in sorted(b.jobs))
    assert len(b.jobs) == 2
    assert first.state in ("FAILED", "OUT_OF_MEMORY") and first.min_memory == f"{TINY_MEM_MB}M", first
    slurm_log = next((cluster_runs.work / ".snakemake" / "slurm_logs").glob(f"**/{first.id}.log"))
    assert "exceeded memory limit" in slurm_log.read_text()
    assert retry.state == "COMPLETED" and retry.min_memory == f"{cluster_runs.retry_mem_mb}M", retry


def test_a_node_drained_mid_run_delays_jobs_but_loses_none(cluster_runs):
    drain = cluster_runs.drain
    assert "drained_at" in drain and "resumed_at" in drain, drain
    assert drain["node_states"] & {"drng", "drain"}, drain  # draining while the group job ran, then drained
    # the fine-tuning jobs submitted meanwhile waited for the node, none started before the resume
    assert drain["pending_while_drained"], drain
    assert not drain.get("started_while_drained"), drain
    assert any("ReqNodeNotAvail" in reason for reason in drain["pending_while_drained"].values()), drain
    assert set(drain["pending_while_drained"]) <= {j.id for j in cluster_runs.a.jobs.values() if j.is_finetune}


def test_finished_runs_equal_the_local_runs_scores(cluster_runs):
    assert cluster_runs.local  # the comparison is over every run the local workflow wrote
    assert cluster_runs.b.metrics == cluster_runs.local
    assert (cluster_runs.work / "results" / "report" / "summary.md").is_file()


def test_a_second_invocation_submits_nothing(cluster_runs):
    c = cluster_runs.c
    assert c.returncode == 0 and "Nothing to be done" in c.log, c.log[-3000:]
    assert not c.jobs and not submitted_ids(c.log)
