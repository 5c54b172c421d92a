"""Checkpoints of a long study kept in the repository: finished cells saved, restored in a new checkout.

    python -m causalmixft.study_checkpoints save --configfile config/study.yaml --to study-checkpoints/study-v3
    python -m causalmixft.study_checkpoints restore --configfile config/study.yaml --from study-checkpoints/study-v3

Why: a study of ~10 h on 2 cores runs in parts, and the machine of one part need not hold the files
of the last (a fresh clone, a reinstalled laptop, a CI runner, a session that starts from the
repository). ``save`` packs every (dataset, fold, budget) cell whose runs all exist, and that no
earlier checkpoint holds, into one ``NNN-<time>.tar.xz`` beside an index ``NNN-<time>.json`` (cells,
files, sha256, code id). ``restore`` unpacks every checkpoint into ``results/``; Snakemake then takes
those jobs as done and ``make study-part`` skips their datasets.

A cell's files are all the results of its jobs: split, DAG, generator fit, samples and their
fidelity reports, runs (``config.json`` and ``metrics.json``: a study keeps no weights,
``finetune.keep_weights``), failure markers, and the jobs' logs and benchmarks (the cost table).
A dataset's prepared table, its log and benchmark go with its cells.

A checkpoint is only as good as the code that made it. Its code id hashes the merged config (less
its ``analysis`` block, which only the aggregate reads), the data and weights the jobs read, and every
file whose edit would rerun a job (the rule files, job scripts and package modules, less what only
the aggregate runs). ``restore`` refuses a checkpoint whose code id is not the checkout's: with
other code its cells would mix two workflows. The restored files get the restore's time: in a new
checkout every code and data file is new, so Snakemake would otherwise rerun every restored job by
its mtime trigger; the equal code id is what makes them current.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from glob import glob
from pathlib import Path
from typing import Iterable, Sequence

from causalmixft import layout
from causalmixft.experiment.run_files import run_problem
from causalmixft.generators import registry
from causalmixft.io import sha256_file
from causalmixft.config_checks import merged_config
from causalmixft.workflow_code import script_modules
from causalmixft.workflow_config import WorkflowConfig

Cell = tuple[str, int, int]  # (dataset, fold, budget)
AGGREGATE_ONLY = ("workflow/rules/aggregate.smk", "workflow/scripts/aggregate.py")
SCHEMA = "workflow/schemas/config.schema.yaml"


class CheckpointError(Exception):
    """A checkpoint that cannot be saved or restored as asked; nothing was written."""


def _cut_at_budget(pattern: str) -> str:
    """``pattern`` up to and with ``real{budget}`` (a cell's folder or file stem), or up to ``{dataset}``."""
    for key in ("real{budget}", "{dataset}"):
        if key in pattern:
            return pattern[: pattern.index(key) + len(key)]
    raise ValueError(pattern)


def file_patterns() -> list[str]:
    """Every results pattern a cell's or a dataset's jobs write, cut after its cell key: the rules'
    outputs, failure markers, logs and benchmarks (causalmixft.layout)."""
    patterns = {layout.FAILED_FIT, layout.FAILED_SAMPLE}
    for rule, (pattern, start) in layout.JOB_FILES.items():
        if "{dataset}" not in pattern:
            continue  # a pretrained backbone: no cell's
        patterns.add(pattern)
        for root in (layout.LOGS, layout.BENCHMARKS):
            patterns.add(f"{root}/{rule}/{layout.tail(pattern, start)}")
    return sorted(_cut_at_budget(p) for p in patterns)


def cell_files(results_parent: Path, cell: Cell, datasets: Iterable[str]) -> list[str]:
    """The files under ``results_parent`` (the folder holding ``results/``) that belong to ``cell``,
    and the dataset-level ones of its dataset, as sorted relative paths."""
    dataset, fold, budget = cell
    longer = [d for d in datasets if d != dataset and d.startswith(dataset)]
    found = set()
    for pattern in file_patterns():
        is_cell = "{budget}" in pattern
        stem = layout.WILDCARD.sub(lambda m: "*", layout.fill(pattern, dataset=dataset, fold=fold, budget=budget))
        for match in glob(str(results_parent / stem) + ".*") + glob(str(results_parent / stem) + "/**", recursive=True):
            relative = os.path.relpath(match, results_parent)
            # a dataset-level file "<dataset>.<ext>" of a dataset named "<dataset>.<more>" is not this one's
            if not is_cell and any(f"/{d}." in relative or f"/{d}/" in relative for d in longer):
                continue
            if os.path.isfile(match):
                found.add(relative)
    return sorted(found)


def complete_cells(workflow: WorkflowConfig, results_parent: Path) -> list[Cell]:
    """Cells whose every run of the grid has whole files (``metrics.json`` written last)."""
    runs: dict[Cell, list[str]] = defaultdict(list)
    for run, folder in zip(workflow.runs(), workflow.run_dirs()):
        runs[(run.dataset, run.fold, run.budget)].append(folder)
    return sorted(
        cell for cell, folders in runs.items()
        if all((results_parent / f / "metrics.json").exists()
               and run_problem(results_parent / f, workflow.keep_weights) is None for f in folders)
    )


def load_workflow(repo: Path, workdir: Path, configfiles: Sequence[str]) -> tuple[dict, WorkflowConfig]:
    """The merged config (``workdir``'s config.yaml, then ``configfiles``), validated by ``repo``'s schema
    (which fills its defaults), and its WorkflowConfig: as Snakemake builds them."""
    from snakemake.utils import validate

    config = merged_config([workdir / "config.yaml", *(workdir / c for c in configfiles)])
    validate(config, str(repo / SCHEMA))
    cwd = os.getcwd()
    os.chdir(workdir)  # relative data paths are the workdir's, as in a job
    try:
        return config, WorkflowConfig.from_config(config)
    finally:
        os.chdir(cwd)


def code_files(repo: Path, workdir: Path, workflow: WorkflowConfig) -> list[str]:
    """Files whose edit reruns a job of the grid (see the module's text): the package modules the job
    scripts run (the generators' modules, named at run time, included), the scripts, rule files,
    schemas, Snakefile, pinned requirements (under ``repo``), the data and the weights (as the config
    names them, from ``workdir``). Paths as the config and the checkout name them: relative where they can be."""
    scripts = sorted(p for p in (repo / "workflow" / "scripts").glob("*.py") if p.name != "aggregate.py")
    generators = [registry.module_name(g) for g in workflow.generators]
    files = {Path(p) for s in scripts for p in script_modules(s, repo / "src", generators)}
    files |= set(scripts) | set((repo / "workflow" / "rules").glob("*.smk"))
    files |= set((repo / "workflow" / "schemas").glob("*")) | {repo / "Snakefile", repo / "requirements.txt"}
    files |= {Path(f) for d in workflow.datasets for f in workflow.source_files(d)}
    files |= {Path(f) for f in workflow.weights_files()}
    return sorted(n for n in map(lambda f: _name(f, repo, workdir), files) if n not in AGGREGATE_ONLY)


def _name(path: Path, *roots: Path) -> str:
    """``path`` relative to the first of ``roots`` that holds it (so two checkouts name it alike)."""
    for root in roots:
        absolute = path if path.is_absolute() else root / path
        if absolute.resolve().is_relative_to(root.resolve()):
            return str(absolute.resolve().relative_to(root.resolve()))
    return str(path)


def code_id(repo: Path, workdir: Path, configfiles: Sequence[str]) -> str:
    """sha256 of the merged config (less ``analysis``) and of every :func:`code_files` file's content."""
    return _code_id(repo, workdir, *load_workflow(repo, workdir, configfiles))


def _code_id(repo: Path, workdir: Path, config: dict, workflow: WorkflowConfig) -> str:
    config = {key: value for key, value in config.items() if key != "analysis"}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in code_files(repo, workdir, workflow):
        path = Path(name) if os.path.isabs(name) else (repo / name if (repo / name).exists() else workdir / name)
        if path.is_file():
            digest.update(f"{name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _indexes(folder: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted(folder.glob("[0-9][0-9][0-9]-*.json"))]


def save(repo: Path, workdir: Path, configfiles: Sequence[str], folder: Path,
         now: datetime | None = None) -> Path | None:
    """Pack the complete cells under ``workdir`` that no checkpoint in ``folder`` holds; the new
    index's path (None: nothing new)."""
    config, workflow = load_workflow(repo, workdir, configfiles)
    identity = _code_id(repo, workdir, config, workflow)
    indexes = _indexes(folder)
    held = set()
    for path, index in indexes:
        if index["code_id"] != identity:
            raise CheckpointError(
                f"study checkpoints: {path} was made by other code (code id {index['code_id'][:12]}, this "
                f"checkout's {identity[:12]}): save to another folder, or run the study at its commit {index['commit']}")
        held |= {tuple(c) for c in index["cells"]}
    new = [c for c in complete_cells(workflow, workdir) if c not in held]
    if not new:
        return None
    now = now or datetime.now(timezone.utc)
    stem = f"{len(indexes) + 1:03d}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    files = sorted({f for cell in new for f in cell_files(workdir, cell, workflow.datasets)})
    index = {
        "code_id": identity, "commit": _commit(repo), "saved": now.isoformat(timespec="seconds"),
        "configfiles": list(configfiles), "cells": [list(c) for c in new],
        "runs": sum((r.dataset, r.fold, r.budget) in set(new) for r in workflow.runs()),
        # mtime: when the job wrote it (restore gives the restore's time; see the module's text)
        "files": {f: {"sha256": sha256_file(workdir / f), "mtime": os.stat(workdir / f).st_mtime} for f in files},
    }
    folder.mkdir(parents=True, exist_ok=True)
    archive, index_path = folder / f"{stem}.tar.xz", folder / f"{stem}.json"
    partial = folder / f"{stem}.partial"
    with tarfile.open(partial, "w:xz") as tar:
        for f in files:
            tar.add(workdir / f, arcname=f, recursive=False)
    os.replace(partial, archive)
    index_path.write_text(json.dumps(index, indent=1) + "\n")  # last: an archive without its index is no checkpoint
    return index_path


def restore(repo: Path, workdir: Path, configfiles: Sequence[str], folder: Path) -> tuple[int, int]:
    """Unpack every checkpoint of ``folder`` under ``workdir``; (files written, files already there).
    Checks everything first: on an error nothing is written."""
    identity = code_id(repo, workdir, configfiles)
    indexes = _indexes(folder)
    if not indexes:
        raise CheckpointError(f"study checkpoints: no checkpoint in {folder}")
    plan: dict[str, tuple[Path, str]] = {}
    for path, index in indexes:
        if index["code_id"] != identity:
            raise CheckpointError(
                f"study checkpoints: {path} was made by other code than this checkout's (code id "
                f"{index['code_id'][:12]}, this checkout's {identity[:12]}): restore it in a checkout of its "
                f"commit {index['commit']}; nothing restored")
        archive = path.with_suffix(".tar.xz")
        if not archive.exists():
            raise CheckpointError(f"study checkpoints: {archive} is missing (its index is {path}); nothing restored")
        plan.update({name: (archive, meta["sha256"]) for name, meta in index["files"].items()})
    # Nothing a user made is overwritten: a file already there must be the checkpoint's own.
    there = {name for name in plan if (workdir / name).exists()}
    clashes = sorted(name for name in there if sha256_file(workdir / name) != plan[name][1])
    if clashes:
        raise CheckpointError(
            f"study checkpoints: {len(clashes)} file(s) under {workdir} differ from the checkpoints' "
            f"({', '.join(clashes[:3])}{' ...' if len(clashes) > 3 else ''}); nothing restored")
    by_archive: dict[Path, list[str]] = defaultdict(list)
    for name, (archive, _) in plan.items():
        if name not in there:
            by_archive[archive].append(name)
    stamp, written = time.time(), 0
    for archive, names in sorted(by_archive.items()):
        with tarfile.open(archive, "r:xz") as tar:
            for name in names:
                member = tar.extractfile(name)
                data = member.read() if member else b""
                if hashlib.sha256(data).hexdigest() != plan[name][1]:
                    raise CheckpointError(f"study checkpoints: {name} in {archive} does not match its index")
                target = workdir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".restoring")
                partial.write_bytes(data)
                os.utime(partial, (stamp, stamp))
                os.replace(partial, target)
                written += 1
    return written, len(there)


def _commit(root: Path) -> str:
    """The checkout's commit, for the reader of an index (the code id is what restore compares)."""
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m causalmixft.study_checkpoints",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["save", "restore", "status"])
    parser.add_argument("--configfile", nargs="+", default=["config/study.yaml"])
    parser.add_argument("--folder", required=True, help="the study's checkpoint folder, e.g. study-checkpoints/study-v3")
    args = parser.parse_args(argv)
    here, folder = Path.cwd(), Path(args.folder)
    try:
        if args.action == "save":
            index = save(here, here, args.configfile, folder)
            print(f"saved {index}: {len(json.loads(index.read_text())['cells'])} new cells" if index
                  else "no complete cell that the checkpoints do not hold")
        elif args.action == "restore":
            written, kept = restore(here, here, args.configfile, folder)
            print(f"restored {written} files from {folder} ({kept} already there)")
        config, workflow = load_workflow(here, here, args.configfile)
        cells = {(r.dataset, r.fold, r.budget) for r in workflow.runs()}
        held = {tuple(c) for _, index in _indexes(folder) for c in index["cells"]} & cells
        print(f"{len(held)} of {len(cells)} cells in {folder}; {len(complete_cells(workflow, here))} complete here; "
              f"code id {_code_id(here, here, config, workflow)[:12]}")
    except CheckpointError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
