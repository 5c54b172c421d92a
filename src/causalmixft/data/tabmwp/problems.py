"""TabMWP problems: reading the upstream problem files into :class:`Problem` records."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causalmixft.data.tabmwp.errors import TabmwpError
from causalmixft.io import sha256_file

@dataclass(frozen=True)
class Problem:
    """One TabMWP problem. ``rich`` fields exist only in the full-schema problem files."""

    pid: str
    split: str  # upstream split: train, dev or test
    question: str
    table: str  # the pipe-separated text table
    choices: tuple[str, ...] | None  # None for free-text questions
    answer: str | float  # gold answer; the PoT file gives numeric answers as floats
    rich: dict | None = None  # {unit, table_title, ques_type, ans_type, grade} or None (reduced schema)


# (file, split it holds, schema); later files win for a problem id, so full-schema records
# replace the reduced PoT records of the same test problems.
PROBLEM_FILES = (
    ("tabmwp_test_pot.jsonl", "test", "reduced"),
    ("problems_dev1k.json", "dev", "rich"),
    ("problems_test1k.json", "test", "rich"),
    ("problems_train.json", "train", "rich"),
    ("problems_dev.json", "dev", "rich"),
    ("problems_test.json", "test", "rich"),
)
SPLITS_FILE = "splits.json"


@dataclass
class ProblemSet:
    """The problems readable from a source folder, and what could not be read."""

    problems: dict[str, Problem] = field(default_factory=dict)
    malformed: dict[str, str] = field(default_factory=dict)  # problem id -> reason
    inputs: list[dict] = field(default_factory=list)  # one entry per file read
    official: dict[str, list[str]] | None = None  # splits.json: split -> problem ids
    feature_cache: dict[str, dict] = field(default_factory=dict, repr=False)  # see features.shared_features


def read_problems(src: str | os.PathLike) -> ProblemSet:
    """Every problem in the known problem files under ``src``."""
    src = Path(src)
    found = ProblemSet()
    for name, split, schema in PROBLEM_FILES:
        path = src / name
        if not path.is_file():
            continue
        records = _read_records(path)
        found.inputs.append(input_entry(path, src, len(records)))
        for line, (pid, record) in enumerate(records, start=1):
            if pid is None:
                found.malformed[f"{name}:{line}"] = "id_missing"
                continue
            _add_problem(found, pid, record, split, schema)
    if not found.inputs:
        names = ", ".join(name for name, _, _ in PROBLEM_FILES)
        raise TabmwpError(f"no TabMWP problem file in {src} (looked for {names})")
    splits_path = src / SPLITS_FILE
    if splits_path.is_file():
        splits = read_json_file(splits_path)
        found.official = {name: [str(pid) for pid in ids] for name, ids in splits.items()}
        found.inputs.append(input_entry(splits_path, src, sum(len(ids) for ids in splits.values())))
    return found


def _read_records(path: Path) -> list[tuple[str | None, Any]]:
    """(problem id, record) pairs of a problem file; the id is None where a jsonl line has none."""
    if path.suffix != ".jsonl":
        data = read_json_file(path)
        if not isinstance(data, dict):
            raise TabmwpError(f"{path} does not hold a JSON object of problems")
        return [(str(pid), record) for pid, record in data.items()]
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise TabmwpError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    return [(str(row["id"]) if isinstance(row, dict) and row.get("id") is not None else None, row) for row in rows]


def read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TabmwpError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


def input_entry(path: Path, src: Path, records: int) -> dict:
    return {
        "file": str(path.relative_to(src)),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "records": records,
    }


def _add_problem(found: ProblemSet, pid: str, record: Any, split: str, schema: str) -> None:
    problem, reason = parse_problem(pid, record, split, schema)
    if problem is None:
        if pid not in found.problems:
            found.malformed[pid] = reason
        return
    found.malformed.pop(pid, None)
    if schema == "rich" or pid not in found.problems:
        found.problems[pid] = problem


def parse_problem(pid: str, record: Any, split: str, schema: str) -> tuple[Problem | None, str]:
    """A :class:`Problem` from one upstream record, or ``(None, reason)`` when it is malformed."""
    if not isinstance(record, dict):
        return None, "record_not_an_object"
    question, table, choices, answer = (record.get(k) for k in ("question", "table", "choices", "answer"))
    if not isinstance(question, str) or not question.strip():
        return None, "question_missing"
    if not isinstance(table, str) or not table.strip():
        return None, "table_missing"
    if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
        return None, "choices_not_a_list_of_strings"
    if not isinstance(answer, (str, int, float)) or isinstance(answer, bool) or answer == "":
        return None, "answer_missing"
    rich = None
    if schema == "rich":
        rich = {key: record.get(key) for key in ("unit", "table_title", "ques_type", "ans_type", "grade")}
    record_split = record.get("split")
    problem = Problem(
        pid=pid,
        split=record_split if isinstance(record_split, str) else split,
        question=question,
        table=table,
        choices=tuple(choices) if choices is not None else None,
        answer=float(answer) if isinstance(answer, int) else answer,
        rich=rich,
    )
    return problem, ""
