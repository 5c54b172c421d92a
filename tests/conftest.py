"""Shared test helpers: repository paths, a tiny workflow config, and running Snakemake.

Tests read the repository's data (resources/tabarena) and never write into the repository;
workflow runs happen in pytest's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TABARENA = REPO / "resources" / "tabarena"
MANIFEST = TABARENA / "MANIFEST.json"
CI_CONFIG = REPO / ".test" / "config" / "config.yaml"


def repo_copy(tmp_path: Path) -> Path:
    """The workflow and its package copied, so a test can edit a module and edits elsewhere (another
    test, a developer) cannot trigger reruns mid-test."""
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("workflow", "src", "envs"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    shutil.copy(REPO / "Snakefile", repo / "Snakefile")
    return repo


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def tiny_config(**overrides) -> dict:
    """The default config on a 2-dataset x 2-fold grid with paths that work from any folder."""
    config = load_yaml(REPO / "config.yaml")
    config["datasets"] = {
        "diabetes": {"source": f"file:{TABARENA / 'diabetes.csv.gz'}", "manifest": str(MANIFEST)},
        "iris": {"source": "sklearn:iris"},
    }
    protocol = {"n_folds": 2, "folds": [0, 1], "test_max_rows": 40, "real_budget": 48, "val_fraction": 0.25}
    config["protocol"] = {**protocol, "seed": 0}
    # The workflow tests run the first shipped weights under their own name (the expected run paths
    # say tfm-small), whatever backbone config.yaml defaults to.
    config["backbone"] = {"name": "tfm-small", "weights": str(REPO / "src/causalmixft/model/weights/tfm-small")}
    config.update(overrides)
    return config


def write_config(directory: Path, config: dict, name: str = "config.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile", check: bool = True):
    """``python -m snakemake`` with the repository's default profile, in ``workdir``."""
    profile = Path(snakefile).parent / "workflow" / "profiles" / "default"
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir)]
    command += ["--workflow-profile", str(profile), "--cores", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from Snakemake's 'Job stats' table."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Job stats")), None)
    if start is None:
        return counts
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    counts.pop("total", None)
    return counts


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with the tiny config as config.yaml."""
    write_config(tmp_path, tiny_config())
    return tmp_path


def ci_config() -> dict:
    """.test/config/config.yaml (the tiny run CI uses) with its paths made absolute, so it runs from
    any folder (they are relative to .test/, where `snakemake --directory .test` runs it)."""
    config = load_yaml(CI_CONFIG)
    base = CI_CONFIG.parents[1]
    for dataset in config["datasets"].values():
        kind, _, argument = dataset["source"].partition(":")
        if kind == "file":
            dataset["source"] = f"file:{(base / argument).resolve()}"
        if "manifest" in dataset:
            dataset["manifest"] = str((base / dataset["manifest"]).resolve())
    config["backbone"]["weights"] = str((base / config["backbone"]["weights"]).resolve())
    return config


_ci_local_run: list[Path] = []  # filled once per session by ci_local_run_once
_ci_local_lock = threading.Lock()


def ci_local_run_once(tmp_path_factory) -> Path:
    """A local run (default profile, 2 cores) of the CI config in a repository copy, once per session:
    the reference the SLURM runs are compared with (tests/test_slurm_cluster.py starts it beside its
    first cluster invocation) and the run whose HTML report is checked. Returns the work folder (with
    snakemake.log); the repository copy it ran is its sibling `repo`."""
    with _ci_local_lock:
        if not _ci_local_run:
            root = tmp_path_factory.mktemp("ci-local")
            repo = repo_copy(root)
            work = root / "work"
            work.mkdir()
            write_config(work, ci_config())
            result = run_snakemake(work, snakefile=repo / "Snakefile")
            (work / "snakemake.log").write_text(result.stdout + result.stderr)
            _ci_local_run.append(work)
        return _ci_local_run[0]


@pytest.fixture(scope="session")
def ci_local_run(tmp_path_factory) -> Path:
    """ci_local_run_once as a fixture."""
    return ci_local_run_once(tmp_path_factory)
