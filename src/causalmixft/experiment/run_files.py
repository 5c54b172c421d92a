"""A finished run's three files, checked whole before the aggregate reads any run.

A fine-tuning job writes ``model.safetensors``, ``config.json`` and, last, ``metrics.json``
(:func:`causalmixft.experiment.runs.save_run`); without the weights where ``finetune.keep_weights``
is false (a study of a thousand runs reads none of them: 0.8 MB each). No later job loads the
weights, so a truncated ``model.safetensors`` went unnoticed; the aggregate checks every run's files
(the weights by their header: cheap) and removes all the files of a damaged run, so a plain rerun
fine-tunes it again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from causalmixft.io import DamagedFile, safetensors_problem

RUN_FILES = ("model.safetensors", "config.json", "metrics.json")
WEIGHTS = "model.safetensors"


def run_file_names(keep_weights: bool = True) -> tuple[str, ...]:
    """The files a finished run holds, ``metrics.json`` (written last) last."""
    return RUN_FILES if keep_weights else tuple(name for name in RUN_FILES if name != WEIGHTS)


def run_problem(run: Path, keep_weights: bool = True) -> str | None:
    """Why the files of the run folder ``run`` are not whole (None if they are, or if it has no metrics.json)."""
    if not (run / "metrics.json").exists():
        return None  # not finished: the aggregate reports it missing
    for name in ("metrics.json", "config.json"):
        path = run / name
        if not path.exists():
            return f"{path} is missing"
        try:
            json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return f"{path} is not valid JSON ({error})"
    if not keep_weights:
        return None
    weights = run / WEIGHTS
    if not weights.exists():
        return f"{weights} is missing"
    problem = safetensors_problem(weights)
    return f"{weights} is damaged ({problem})" if problem else None


def check_runs(metrics_files: Iterable[str | os.PathLike], keep_weights: bool = True) -> None:
    """Raise :class:`DamagedFile` listing every run whose files are not whole, after removing them."""
    problems = []
    for metrics in metrics_files:
        run = Path(metrics).parent
        problem = run_problem(run, keep_weights)
        if problem:
            for name in RUN_FILES:
                (run / name).unlink(missing_ok=True)
            problems.append(problem)
    if problems:
        raise DamagedFile(
            f"{len(problems)} fine-tuning run(s) damaged: " + "; ".join(problems)
            + f". Removed their {', '.join(RUN_FILES)}: a plain rerun of the workflow (the same command) "
            "fine-tunes them again"
        )
