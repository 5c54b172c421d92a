"""The SLURM profile (workflow/profiles/slurm) with snakemake-executor-plugin-slurm, against stand-ins.

Stand-in `sbatch`, `sacct`, `squeue`, `scancel`, `sinfo`, `scontrol` and `srun` on PATH (written
into the test's tmp dir) record every submission (its arguments and job script), run the job script
at once and report the job COMPLETED (or FAILED), so Snakemake runs the workflow as on a cluster.
Kept only for what the one-node cluster of tests/test_slurm_cluster.py cannot show: GPU requests
(`--gpus`, `--cpus-per-gpu`: that node has no GPU gres), two partitions, and the exact sbatch flags
of every submission (the real cluster checks submissions, scheduling, faults and scores).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MANIFEST, REPO, TABARENA, job_counts, repo_copy, tiny_config, write_config

pytest.importorskip("snakemake_executor_plugin_slurm", reason="the [slurm] extra is not installed")

PROFILE = REPO / "workflow" / "profiles" / "slurm"
SMALL_RULES = ["discover_dag", "prepare_dataset", "split"]  # group prep
GENERATOR_RULES = ["fit_generator", "sample_generator"]  # group generators

SBATCH = """#!{python}
# Stand-in sbatch: record the call, run the job script now, print the job id (--parsable).
import json, os, subprocess, sys
from pathlib import Path

state = Path(os.environ["FAKE_SLURM_STATE"])
state.mkdir(parents=True, exist_ok=True)
args = sys.argv[1:]
script = next((a[len("--wrap="):] for a in args if a.startswith("--wrap=")), None)
if script is None and args and args[-1] == "/dev/stdin":
    script = sys.stdin.read()


def option(name):
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


job_id = str(1000 + len(list(state.glob("*.state"))))
(state / f"{{job_id}}.state").write_text("RUNNING")
env = {{**os.environ, "SLURM_JOB_ID": job_id}}
if option("--gpus"):
    env["SLURM_GPUS"] = option("--gpus").split(":")[-1]
log = option("--output")
with open(log.replace("%j", job_id), "w") if log else open(os.devnull, "w") as out:
    job = subprocess.run(["/bin/sh", "-c", script], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=option("-D"))
rc = job.returncode
with open(state / "submissions.jsonl", "a") as handle:
    handle.write(json.dumps({{"id": job_id, "args": args, "script": script, "rc": rc}}) + "\\n")
(state / f"{{job_id}}.state").write_text("COMPLETED" if rc == 0 else "FAILED")
print(job_id)
"""
SACCT = """#!{python}
# Stand-in sacct: answers the plugin's status query (JobIdRaw|State) from the stand-in sbatch's files.
import os, sys
from pathlib import Path

if "--format=JobIdRaw,State" in sys.argv:
    for path in sorted(Path(os.environ["FAKE_SLURM_STATE"]).glob("*.state")):
        print(f"{{path.stem}}|{{path.read_text().strip()}}")
"""
SRUN = """#!/bin/sh
# Stand-in srun: drop srun's own options (all --opt=value or -n1 forms), run the command.
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
exec "$@"
"""
SINFO = "#!/bin/sh\nprintf 'PARTITION\\ncpu*\\ngpu\\n'\n"
NOOP = "#!/bin/sh\nexit 0\n"


def fake_slurm(tmp_path: Path) -> dict[str, str]:
    """Stand-ins in tmp_path/bin; the environment that puts them first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # scontrol answers nothing: no MinJobAge known, so the plugin queries the stand-in sacct (not a
    # real cluster's squeue, where one runs beside the test)
    scripts = {"sbatch": SBATCH, "sacct": SACCT, "srun": SRUN, "sinfo": SINFO, "squeue": NOOP, "scancel": NOOP}
    scripts["scontrol"] = NOOP
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text.format(python=sys.executable) if name in ("sbatch", "sacct") else text)
        path.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_SLURM_STATE": str(tmp_path / "slurm-state"),
        "OMP_NUM_THREADS": "1",
    }


def slurm_config(
    folds=(0, 1), device="auto", methods=("zeroshot", "finetune", "causalmixft"), generators=("causalmixft",)
) -> dict:
    config = tiny_config()
    config["datasets"] = {"diabetes": {"source": f"file:{TABARENA / 'diabetes.csv.gz'}", "manifest": str(MANIFEST)}}
    config["protocol"].update(n_folds=2, folds=list(folds), real_budget=64)
    config["synthetic"].update(sizes=[0, 16], generators=list(generators))
    config["finetune"].update(
        methods=list(methods), steps=2, eval_every=1, warmup_steps=0, device=device
    )
    return config


def snakemake_slurm(
    workdir: Path, env: dict, *args: str, repo: Path = REPO, timeout: int = 900
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir)]
    profile = repo / "workflow" / "profiles" / "slurm"
    command += ["--workflow-profile", str(profile), "--slurm-init-seconds-before-status-checks", "1", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def job_resources(output: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job a dry run lists."""
    jobs, rule = [], None
    for line in output.splitlines():
        match = re.match(r"\s*(?:local)?rule (\w+):", line)
        if match:
            rule = match[1]
        elif line.strip().startswith("resources:") and rule:
            pairs = (item.split("=", 1) for item in line.split(":", 1)[1].split(", "))
            jobs.append((rule, {key.strip(): value for key, value in pairs}))
            rule = None
    return jobs


@pytest.mark.parametrize("device, gpus", [("auto", "1"), ("cpu", "0")])
def test_dry_run_groups_the_small_jobs_and_gives_gpus_to_finetune_only(tmp_path, device, gpus):
    methods = ("zeroshot", "finetune", "causalmixft", "smote")
    write_config(tmp_path, slurm_config(device=device, methods=methods, generators=("causalmixft", "smote")))
    result = snakemake_slurm(tmp_path, fake_slurm(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    # one group job per dataset: its prepare, splits and DAGs; one for the generators' fits and
    # samples, causalmixft's among them (one part per generator and fold, up to 10 parts per job)
    assert output.count("Group job prep") == 1 and output.count("Group job generators") == 1
    jobs = job_resources(result.stdout)
    small_rules = [*SMALL_RULES, *GENERATOR_RULES]
    assert sorted({rule for rule, _ in jobs}) == sorted(["aggregate", "all", "finetune", *small_rules])
    for rule, resources in jobs:
        if rule == "finetune":
            assert resources["gpu"] == gpus and resources["cpus_per_gpu"] == "2", resources
            assert (resources["runtime"], resources["mem_mb"]) == ("60", "8000")
        else:
            assert "gpu" not in resources and "cpus_per_gpu" not in resources, (rule, resources)
    assert not (tmp_path / "slurm-state").exists()  # nothing submitted


@pytest.mark.slow
def test_run_submits_one_group_job_and_one_gpu_job_per_run_and_aggregates_locally(tmp_path):
    repo = repo_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    write_config(work, slurm_config(folds=[0], methods=["zeroshot", "causalmixft"]))
    env = fake_slurm(tmp_path)
    result = snakemake_slurm(work, env, repo=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    small = dict.fromkeys([*SMALL_RULES, *GENERATOR_RULES], 1)
    assert job_counts(result.stderr) == {**small, "finetune": 2, "aggregate": 1, "all": 1}
    recorded = (tmp_path / "slurm-state" / "submissions.jsonl").read_text().splitlines()
    submissions = [json.loads(line) for line in recorded]
    assert all(s["rc"] == 0 for s in submissions)
    by_kind = {}
    for submission in submissions:
        comment = submission["args"][submission["args"].index("--comment") + 1]
        kind = next((g for g in ("prep", "generators") if comment.startswith(f"rule_{g}")), None)
        by_kind.setdefault(kind or comment.split("_wildcards_")[0], []).append(submission)
    # aggregate and all are local rules: never submitted
    kinds = sorted((kind, len(items)) for kind, items in by_kind.items())
    assert kinds == [("generators", 1), ("prep", 1), ("rule_finetune", 2)]

    def flags(submission):
        return [a for a in submission["args"] if not a.startswith("--wrap")]

    # runtimes add up along each group's chain (minutes): prepare -> split -> discover, fit -> sample
    for kind, minutes, rules in [("prep", 10 + 5 + 60, SMALL_RULES), ("generators", 60 + 60, GENERATOR_RULES)]:
        group = flags(by_kind[kind][0])
        assert not any(a.startswith(("--gpus", "--gres", "--cpus-per-gpu")) for a in group)
        assert group[group.index("-t") + 1] == str(minutes), kind
        assert group[group.index("--mem") + 1] == "4000" and "--cpus-per-task=1" in group
        allowed = by_kind[kind][0]["script"].split("--allowed-rules")[1].split("--")[0].split()
        assert sorted(allowed) == rules
    methods = set()
    for submission in by_kind["rule_finetune"]:
        args = flags(submission)
        assert "--gpus=1" in args and "--cpus-per-gpu=2" in args, args
        assert args[args.index("-t") + 1] == "60" and args[args.index("--mem") + 1] == "8000"
        methods.add(re.search(r"'finetune:backbone=tfm-small,method=(\w+)", submission["script"])[1])
    assert methods == {"zeroshot", "causalmixft"}
    [metrics_path] = (work / "results" / "runs").glob("tfm-small/causalmixft/diabetes/fold0/**/n16/metrics.json")
    metrics = json.loads(metrics_path.read_text())
    assert metrics["device"] == "cpu"  # device auto without a GPU (the stand-in grants none)
    assert (work / "results" / "report" / "summary.md").is_file()
    assert "Nothing to be done" in snakemake_slurm(work, env, repo=repo).stderr
