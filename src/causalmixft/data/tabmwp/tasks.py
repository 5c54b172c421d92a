"""The derived classification tasks: one builder per task, and the build of a set of tasks with its report."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from causalmixft.data.schema import TARGET
from causalmixft.data.tabmwp.errors import TabmwpError
from causalmixft.data.tabmwp.features import (
    PROBLEM_CATEGORICAL,
    PROBLEM_FEATURES,
    RICH_CATEGORICAL,
    RICH_FEATURES,
    rich_features,
    shared_features,
)
from causalmixft.data.tabmwp.probes import PROBES, build_probe
from causalmixft.data.tabmwp.problems import ProblemSet, input_entry, read_json_file, read_problems
from causalmixft.data.tabmwp.rows import Rows, TaskTable

log = logging.getLogger(__name__)

# - solved-<solver> -

SOLVER_RESULTS = {
    "gpt3": "results/gpt3/exp4_test_TQ-SA_2_seed_2.json",
    "t5": "results/t5/exp6_large.json",
    "tapex": "results/tapex/exp4_tapex-large.json",
}
SOLVER_NAMES = {
    "gpt3": "GPT-3 text-davinci-002, few-shot chain of thought (2 random training examples, seed 2)",
    "t5": "UnifiedQA-large (T5) fine-tuned on the TabMWP training split",
    "tapex": "TAPEX-large fine-tuned on the TabMWP training split",
}


def build_solved(found: ProblemSet, src: Path, solver: str) -> TaskTable:
    """One row per test problem with a result: features of the problem, label correct/incorrect."""
    path = src / SOLVER_RESULTS[solver]
    results = _read_results(path)
    rows = Rows()
    for pid, result in results.items():
        problem = found.problems.get(pid)
        if problem is None:
            reason = found.malformed.get(pid)
            rows.drop(f"problem_record_malformed:{reason}" if reason else "problem_not_in_source_files", pid)
        elif not isinstance(result, dict) or not isinstance(result.get("true_false"), bool):
            rows.drop("result_has_no_true_false_flag", pid)
        else:
            rows.add(problem, shared_features(found, problem), "correct" if result["true_false"] else "incorrect")
    notes = {
        "solver": SOLVER_NAMES[solver],
        "results_file": input_entry(path, src, len(results)),
        "universe": "problems in the results file (the official test split)",
    }
    return rows.table(f"solved-{solver}", PROBLEM_FEATURES, PROBLEM_CATEGORICAL, notes)


def _read_results(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TabmwpError(f"results file {path} not found")
    data = read_json_file(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise TabmwpError(f"results file {path} has no 'results' object")
    return {str(pid): result for pid, result in results.items()}


# - grade -

GRADE_BANDS = {1: "1-3", 2: "1-3", 3: "1-3", 4: "4-6", 5: "4-6", 6: "4-6", 7: "7-8", 8: "7-8"}


def build_grade(found: ProblemSet, src: Path) -> TaskTable:
    """One row per problem that carries a grade: problem and full-schema features, label the grade band."""
    rows = Rows()
    for problem in found.problems.values():
        if problem.rich is None:
            rows.drop("no_grade_field_reduced_schema", problem.pid)
        elif problem.rich.get("grade") not in GRADE_BANDS:
            rows.drop("grade_missing_or_out_of_range", problem.pid)
        else:
            features = {**shared_features(found, problem), **rich_features(problem)}
            rows.add(problem, features, GRADE_BANDS[problem.rich["grade"]])
    for pid, reason in found.malformed.items():
        rows.drop(f"problem_record_malformed:{reason}", pid)
    notes = {"bands": GRADE_BANDS, "universe": "every problem read (malformed records counted as dropped)"}
    return rows.table("grade", {**PROBLEM_FEATURES, **RICH_FEATURES}, PROBLEM_CATEGORICAL + RICH_CATEGORICAL, notes)


# - registry -

TASK_BUILDERS: dict[str, Callable[[ProblemSet, Path], TaskTable]] = {
    **{f"solved-{solver}": (lambda found, src, s=solver: build_solved(found, src, s)) for solver in SOLVER_RESULTS},
    "grade": build_grade,
    **{name: (lambda found, src, p=probe: build_probe(found, src, p)) for name, probe in PROBES.items()},
}
TASKS = tuple(TASK_BUILDERS)


def feature_definitions(task: str) -> dict[str, str]:
    """Feature name -> definition for one task."""
    if task.startswith("solved-"):
        return dict(PROBLEM_FEATURES)
    if task == "grade":
        return {**PROBLEM_FEATURES, **RICH_FEATURES}
    return dict(PROBES[task].features)


def build_tasks(src: str | os.PathLike, tasks: Iterable[str] = TASKS) -> tuple[dict[str, TaskTable], dict]:
    """Build the named tasks from the upstream files in ``src``; return the tables and the build report."""
    src = Path(src)
    tasks = list(tasks)
    unknown = [t for t in tasks if t not in TASK_BUILDERS]
    if unknown:
        raise TabmwpError(f"unknown TabMWP task(s) {unknown}; known: {', '.join(TASKS)}")
    found = read_problems(src)
    tables = {task: TASK_BUILDERS[task](found, src) for task in tasks}
    for table in tables.values():
        log.info(
            "tabmwp %s: %d rows of %d considered, dropped %s",
            table.name,
            len(table.frame),
            table.considered,
            table.dropped or "none",
        )
    return tables, build_report(found, tables)


def build_report(found: ProblemSet, tables: Mapping[str, TaskTable]) -> dict:
    read = Counter(p.split for p in found.problems.values())
    schema = Counter("rich" if p.rich else "reduced" for p in found.problems.values())
    problems = {
        "read_by_split": dict(sorted(read.items())),
        "read_by_schema": dict(sorted(schema.items())),
        "malformed_by_reason": dict(sorted(Counter(found.malformed.values()).items())),
    }
    if found.official is not None:
        official = {split: len(ids) for split, ids in found.official.items()}
        problems["official_by_split"] = official
        problems["not_available_by_split"] = {
            split: sum(pid not in found.problems for pid in ids) for split, ids in found.official.items()
        }
    return {
        "dataset": "TabMWP (Lu et al., ICLR 2023), CC BY-NC-SA 4.0; see LICENSE and NOTICE in this folder",
        "inputs": found.inputs,
        "problems": problems,
        "tasks": {name: _task_report(table) for name, table in tables.items()},
    }


def _task_report(table: TaskTable) -> dict:
    counts = table.frame[TARGET].value_counts()
    return {
        "file": f"{table.name}.csv.gz",
        "rows": len(table.frame),
        "considered": table.considered,
        "dropped": table.dropped,
        "dropped_ids": table.dropped_ids,
        "class_counts": {label: int(counts[label]) for label in sorted(counts.index)},
        "upstream_split_counts": dict(sorted(Counter(table.frame["upstream_split"]).items())),
        "n_features": len(table.features),
        "features": table.features,
        "categorical": table.categorical,
        **table.notes,
    }
