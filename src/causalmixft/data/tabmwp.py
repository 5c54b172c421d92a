"""Classification tasks derived from TabMWP, and the ``tabmwp:<task>`` dataset source.

TabMWP (Lu et al., ICLR 2023: 38,431 grade-school math word problems, each with a small
table) is a question-answering benchmark, not a table of rows to classify. This module
derives classification tasks from it, one row per problem (docs/tabmwp.md has the full
account, including every feature's definition):

- ``solved-<solver>`` (gpt3, t5, tapex): did that published solver answer the test problem
  correctly (PromptPG's per-problem results)? Features describe the problem (table shape,
  the numbers in the table, question length and keywords, number of choices, answer form).
- ``grade``: the problem's grade band (1-3, 4-6, 7-8) from the same features plus the
  full-schema fields (unit, title, answer type); only problems that carry a grade.
- ``probe-shortage``, ``probe-enough-money``, ``probe-linear``: table-determined
  multiple-choice templates whose gold answer follows from a few numbers read from the
  table (compare two quantities, a sum against a budget, a constant slope).

Inputs are the upstream problem files: offline the partial copies in a local folder
(``problems_dev1k.json``, ``problems_test1k.json``, ``tabmwp_test_pot.jsonl``), online the
full ``problems_{train,dev,test}.json`` downloaded from the pinned upstream commit and
checked against their git blob ids. :func:`build_tasks` parses them, counts every problem
it cannot use by reason, and :func:`write_tables` writes one ``<task>.csv.gz`` per task plus
``build_report.json``. The tables built from the offline files ship in ``resources/tabmwp``.

Each table has the columns ``problem_id``, ``upstream_split`` (train/dev/test of the
official TabMWP split), the features, then ``target`` (string labels). The dataset loader
(:func:`load_task`) drops the two bookkeeping columns, so neither can leak into a model.

Command line::

    python -m causalmixft.data.tabmwp build --src /work/shared/data/tabmwp --out resources/tabmwp
    python -m causalmixft.data.tabmwp download --dest .cache/tabmwp/upstream
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import math
import os
import re
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from causalmixft.data.schema import TARGET
from causalmixft.data.sources import RawTable, Source
from causalmixft.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

ID_COLUMNS = ("problem_id", "upstream_split")  # bookkeeping columns, never features
DEFAULT_TABLES_DIR = Path(__file__).resolve().parents[3] / "resources" / "tabmwp"
TABLES_ENV = "CAUSALMIXFT_TABMWP_TABLES"  # overrides the folder of shipped derived tables
REPORT_FILE = "build_report.json"


class TabmwpError(ValueError):
    """Bad or missing TabMWP input: an unreadable file, a failed checksum, an unknown task."""


# --- upstream files ----------------------------------------------------------------------

PROMPTPG = "https://raw.githubusercontent.com/lupantech/PromptPG/7cf61b1bec07222fc24b4f5a1410911f77c2d2c9"


@dataclass(frozen=True)
class RemoteFile:
    """One upstream file: where it lives in a source folder, its raw URL and its checksums."""

    path: str  # relative path inside a source folder (the layout of the upstream repository's data)
    url: str
    blob_id: str  # git blob sha1: sha1(b"blob <size>\0" + content)
    size: int | None  # bytes; None where only the blob id (which hashes the size too) is published


def _promptpg(upstream_path: str, blob_id: str, size: int | None) -> RemoteFile:
    """A lupantech/PromptPG file at the pinned commit; stored without the ``data/tabmwp/`` prefix."""
    return RemoteFile(upstream_path.removeprefix("data/tabmwp/"), f"{PROMPTPG}/{upstream_path}", blob_id, size)


# The files a full build needs, all from lupantech/PromptPG at the pinned commit. Blob ids of the
# three problem files are upstream's; the others are the blob ids (and sizes) of the byte-identical
# copies in the shared data folder.
UPSTREAM_FILES = (
    _promptpg("data/tabmwp/problems_train.json", "bebca41ffd8124b196781ecd2ee36488961e0d0a", None),
    _promptpg("data/tabmwp/problems_dev.json", "5506b356bc3e45b0aa8d245dc3f927a67da3f50f", None),
    _promptpg("data/tabmwp/problems_test.json", "eb3a92279b57aa84ce7bb7d3051c7b9749a1aadc", None),
    _promptpg("data/tabmwp/splits.json", "dae553b2006b94b08d59858c0a4f435f192de7db", 411_685),
    _promptpg("results/gpt3/exp4_test_TQ-SA_2_seed_2.json", "7ddd7b4affe59ffab9bc823f2f77f8cd1afeaad9", 2_847_917),
    _promptpg("results/t5/exp6_large.json", "e72ea3a330f1e197569ede959e5b86bb0f50034b", 1_416_462),
    _promptpg("results/tapex/exp4_tapex-large.json", "778ed8880279499b1936c98c541f5cb2f4db99d0", 1_414_656),
)


def git_blob_id(data: bytes) -> str:
    """The id git gives a file with this content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fetch_url(url: str) -> bytes:
    """The bytes at ``url`` (http(s) or file://); imported lazily, used only when downloading."""
    from urllib.request import urlopen

    with urlopen(url, timeout=120) as response:
        return response.read()


def check_download(remote: RemoteFile, data: bytes) -> None:
    """Raise :class:`TabmwpError` unless ``data`` has the size and git blob id ``remote`` expects."""
    if remote.size is not None and len(data) != remote.size:
        raise TabmwpError(f"{remote.url}: got {len(data):,} bytes, expected {remote.size:,}")
    blob = git_blob_id(data)
    if blob != remote.blob_id:
        raise TabmwpError(f"{remote.url}: git blob id {blob} does not match the expected {remote.blob_id}")


def download_upstream(
    dest: str | os.PathLike,
    fetch: Callable[[str], bytes] = fetch_url,
    files: Iterable[RemoteFile] = UPSTREAM_FILES,
) -> Path:
    """Fetch the full upstream files into ``dest`` (kept when already there and intact); return ``dest``."""
    dest = Path(dest)
    for remote in files:
        target = dest / remote.path
        if target.is_file() and git_blob_id(target.read_bytes()) == remote.blob_id:
            log.info("tabmwp: %s already cached", target)
            continue
        log.info("tabmwp: downloading %s", remote.url)
        try:
            data = fetch(remote.url)
        except OSError as exc:
            raise TabmwpError(f"cannot download {remote.url} (offline?): {type(exc).__name__}: {exc}") from exc
        check_download(remote, data)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    return dest


# --- problems ----------------------------------------------------------------------------


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
    _features: dict[str, dict] = field(default_factory=dict, repr=False)

    def features(self, problem: Problem) -> dict[str, Any]:
        """:func:`problem_features`, computed once per problem and shared by the tasks."""
        if problem.pid not in self._features:
            self._features[problem.pid] = problem_features(problem)
        return self._features[problem.pid]


def read_problems(src: str | os.PathLike) -> ProblemSet:
    """Every problem in the known problem files under ``src``."""
    src = Path(src)
    found = ProblemSet()
    for name, split, schema in PROBLEM_FILES:
        path = src / name
        if not path.is_file():
            continue
        records = _read_records(path)
        found.inputs.append(_input_entry(path, src, len(records)))
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
        splits = _read_json(splits_path)
        found.official = {name: [str(pid) for pid in ids] for name, ids in splits.items()}
        found.inputs.append(_input_entry(splits_path, src, sum(len(ids) for ids in splits.values())))
    return found


def _read_records(path: Path) -> list[tuple[str | None, Any]]:
    """(problem id, record) pairs of a problem file; the id is None where a jsonl line has none."""
    if path.suffix != ".jsonl":
        data = _read_json(path)
        if not isinstance(data, dict):
            raise TabmwpError(f"{path} does not hold a JSON object of problems")
        return [(str(pid), record) for pid, record in data.items()]
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise TabmwpError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    return [(str(row["id"]) if isinstance(row, dict) and row.get("id") is not None else None, row) for row in rows]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TabmwpError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


def _input_entry(path: Path, src: Path, records: int) -> dict:
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


# --- reading numbers ---------------------------------------------------------------------

# A number as TabMWP writes it: optional minus, digits with optional thousands commas, optional decimals.
NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.])-?\d+(?:\.\d+)?(?!\d)")
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


WHOLE_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
WHOLE_FRACTION = re.compile(r"(-?\d+)\s*/\s*(\d+)")


def parse_number(text: str | float) -> float | None:
    """A whole text as a number: ``"$1,234.50"``, ``"12%"``, ``"-3"``, ``"3/10"``; else None."""
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip().replace("$", "").rstrip("%").strip()
    if WHOLE_NUMBER.fullmatch(value):
        return float(value.replace(",", ""))
    fraction = WHOLE_FRACTION.fullmatch(value)
    if fraction and int(fraction.group(2)):
        return int(fraction.group(1)) / int(fraction.group(2))
    return None


def numbers_in(text: str) -> list[str]:
    """The number tokens written in ``text`` (times of day such as 5:30 excluded), as written."""
    return NUMBER.findall(TIME.sub(" ", text))


def token_value(token: str) -> float:
    return float(token.replace(",", ""))


def table_cells(table: str) -> list[list[str]]:
    """The table's lines split into stripped cells."""
    return [[cell.strip() for cell in line.split("|")] for line in table.split("\n") if line.strip()]


# --- problem features --------------------------------------------------------------------

# keyword flag -> pattern searched in the lower-cased question
KEYWORDS: dict[str, str] = {
    "kw_how_many": r"\bhow many\b",
    "kw_how_much": r"\bhow much\b",
    "kw_mean": r"\b(?:mean|average)\b",
    "kw_median": r"\bmedian\b",
    "kw_mode": r"\bmode\b",
    "kw_range": r"\brange\b",
    "kw_rate_of_change": r"\brate of change\b",
    "kw_probability": r"\bprobability\b",
    "kw_fraction": r"\bfraction\b|\bsimplify\b",
    "kw_comparative": r"\b(?:more|fewer|less|greater|higher|lower)\b.*\bthan\b",
    "kw_superlative": r"\b(?:most|least|fewest|highest|lowest|greatest|largest|smallest|longest|shortest)\b",
    "kw_total": r"\b(?:total|in all|altogether|combined)\b",
}

KEYWORD_PATTERNS = {name: re.compile(pattern) for name, pattern in KEYWORDS.items()}

# Definitions of the features of the solved-<solver> tasks (the problem features) ...
PROBLEM_FEATURES = {
    "table_kind": "table layout (categorical), first rule that applies: `stem_leaf` (header Stem, Leaf); "
    "`function_xy` (header x, y); `schedule` (a cell holds a time of day h:mm); `price_list` (no header: "
    "the first line already has a $ amount); `frequency` (last header cell mentions frequency); `grid` (any other)",
    "table_lines": "number of non-empty lines of the text table (header included when there is one)",
    "table_columns": "largest number of `|`-separated cells on a line",
    "table_chars": "length of the table text in characters",
    "table_has_money": "1 if the table text contains `$`, else 0",
    "table_time_cells": "number of cells holding a time of day (h:mm)",
    "table_numeric_cell_fraction": "share of cells whose whole text is one number "
    "(after removing `$`, `%` and thousands commas)",
    "table_n_numbers": "count of number tokens written anywhere in the table (thousands commas understood; "
    "stem-and-leaf leaves count one each; times of day not counted)",
    "table_n_distinct_numbers": "count of distinct values among those number tokens",
    "table_num_min": "smallest of the table's numbers (missing when the table has none)",
    "table_num_max": "largest of the table's numbers (missing when none)",
    "table_num_mean": "mean of the table's numbers (missing when none)",
    "table_num_median": "median of the table's numbers (missing when none)",
    "table_num_std": "population standard deviation of the table's numbers (missing when none)",
    "table_max_decimals": "most digits after the decimal point among the table's numbers (0 when none)",
    "question_words": "number of whitespace-separated words in the question",
    "question_numbers": "count of number tokens in the question (same rule as the table's)",
    "question_has_money": "1 if the question contains `$`, else 0",
    **{
        name: f"1 if the lower-cased question matches the regular expression `{pattern}`, else 0"
        for name, pattern in KEYWORDS.items()
    },
    "n_choices": "number of answer choices (0 for a free-text question)",
    "answer_form": "form of the gold answer (categorical): `integer` or `decimal` when it reads as a number "
    "(fractions such as 3/10 by value), else `text`. Only the form, never the value",
}
PROBLEM_CATEGORICAL = ("table_kind", "answer_form")

# ... and the extra full-schema features of the grade task.
RICH_FEATURES = {
    "has_unit": "1 if the problem states a unit for the answer (`unit` field), else 0",
    "unit_is_money": "1 if that unit contains `$`, else 0",
    "has_title": "1 if the table has a title (`table_title` field), else 0",
    "title_words": "number of words in the table title (0 without one)",
    "ans_type": "upstream answer type (categorical): integer_number, decimal_number, extractive_text, "
    "boolean_text, other_text",
}
RICH_CATEGORICAL = ("ans_type",)


def problem_features(problem: Problem) -> dict[str, Any]:
    """The features of :data:`PROBLEM_FEATURES`, from question, table text, choices and answer only."""
    return {
        **table_features(problem.table),
        **question_features(problem.question),
        "n_choices": len(problem.choices) if problem.choices else 0,
        "answer_form": answer_form(problem.answer),
    }


def table_features(table: str) -> dict[str, Any]:
    cells = table_cells(table)
    flat = [cell for line in cells for cell in line]
    tokens = numbers_in(table)
    values = [token_value(t) for t in tokens]
    return {
        "table_kind": table_kind(cells),
        "table_lines": len(cells),
        "table_columns": max(len(line) for line in cells),
        "table_chars": len(table),
        "table_has_money": int("$" in table),
        "table_time_cells": sum(bool(TIME.search(cell)) for cell in flat),
        "table_numeric_cell_fraction": sum(parse_number(c) is not None for c in flat) / len(flat),
        "table_n_numbers": len(values),
        "table_n_distinct_numbers": len(set(values)),
        **number_stats(values),
        "table_max_decimals": max((len(t.split(".")[1]) for t in tokens if "." in t), default=0),
    }


def number_stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {
            name: math.nan
            for name in ("table_num_min", "table_num_max", "table_num_mean", "table_num_median", "table_num_std")
        }
    mean = math.fsum(values) / len(values)
    return {
        "table_num_min": min(values),
        "table_num_max": max(values),
        "table_num_mean": mean,
        "table_num_median": statistics.median(values),
        "table_num_std": math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)),
    }


def table_kind(cells: list[list[str]]) -> str:
    header = [cell.lower() for cell in cells[0]]
    if len(header) >= 2 and header[0] == "stem" and header[1] == "leaf":
        return "stem_leaf"
    if header == ["x", "y"]:
        return "function_xy"
    if any(TIME.search(cell) for line in cells for cell in line):
        return "schedule"
    if any("$" in cell and numbers_in(cell) for cell in cells[0]):
        return "price_list"
    if "frequency" in header[-1]:
        return "frequency"
    return "grid"


def question_features(question: str) -> dict[str, Any]:
    lower = question.lower()
    return {
        "question_words": len(question.split()),
        "question_numbers": len(numbers_in(question)),
        "question_has_money": int("$" in question),
        **{name: int(bool(pattern.search(lower))) for name, pattern in KEYWORD_PATTERNS.items()},
    }


def answer_form(answer: str | float) -> str:
    value = parse_number(answer)
    if value is None:
        return "text"
    return "integer" if float(value).is_integer() else "decimal"


def rich_features(problem: Problem) -> dict[str, Any]:
    """The features of :data:`RICH_FEATURES` (full-schema problems only)."""
    rich = problem.rich or {}
    unit = rich.get("unit") or ""
    title = rich.get("table_title") or ""
    return {
        "has_unit": int(bool(unit.strip())),
        "unit_is_money": int("$" in unit),
        "has_title": int(bool(title.strip())),
        "title_words": len(title.split()),
        "ans_type": str(rich.get("ans_type")),
    }


# --- tasks -------------------------------------------------------------------------------


@dataclass
class TaskTable:
    """A built task: its rows, what was dropped and why, and notes for the build report."""

    name: str
    frame: pd.DataFrame  # problem_id, upstream_split, features..., target
    categorical: list[str]
    considered: int  # problems the task looked at: rows + dropped
    dropped: dict[str, int]
    dropped_ids: dict[str, list[str]]  # reason -> problem ids, for reasons with few problems
    notes: dict = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c not in ID_COLUMNS and c != TARGET]


class Rows:
    """Collects a task's rows and its dropped problems by reason."""

    LIST_IDS_UP_TO = 10  # the report lists the dropped problem ids of a reason with at most this many

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.dropped: dict[str, list[str]] = {}

    def add(self, problem: Problem, features: Mapping[str, Any], label: str) -> None:
        self.rows.append({"problem_id": problem.pid, "upstream_split": problem.split, **features, TARGET: label})

    def drop(self, reason: str, pid: str) -> None:
        self.dropped.setdefault(reason, []).append(pid)

    def table(
        self, name: str, columns: Iterable[str], categorical: Iterable[str], notes: dict | None = None
    ) -> TaskTable:
        order = [*ID_COLUMNS, *columns, TARGET]
        frame = pd.DataFrame(self.rows, columns=order)
        frame = frame.sort_values("problem_id", key=lambda ids: ids.map(_id_order), kind="stable").reset_index(
            drop=True
        )
        dropped = {reason: len(ids) for reason, ids in sorted(self.dropped.items())}
        listed = {
            reason: sorted(ids, key=_id_order)
            for reason, ids in sorted(self.dropped.items())
            if len(ids) <= self.LIST_IDS_UP_TO
        }
        considered = len(frame) + sum(dropped.values())
        return TaskTable(name, frame, list(categorical), considered, dropped, listed, notes or {})


def _id_order(pid: str) -> tuple[int, str]:
    return (int(pid), pid) if pid.isdigit() else (sys.maxsize, pid)


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
            rows.add(problem, found.features(problem), "correct" if result["true_false"] else "incorrect")
    notes = {
        "solver": SOLVER_NAMES[solver],
        "results_file": _input_entry(path, src, len(results)),
        "universe": "problems in the results file (the official test split)",
    }
    return rows.table(f"solved-{solver}", PROBLEM_FEATURES, PROBLEM_CATEGORICAL, notes)


def _read_results(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TabmwpError(f"results file {path} not found")
    data = _read_json(path)
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
            features = {**found.features(problem), **rich_features(problem)}
            rows.add(problem, features, GRADE_BANDS[problem.rich["grade"]])
    for pid, reason in found.malformed.items():
        rows.drop(f"problem_record_malformed:{reason}", pid)
    notes = {"bands": GRADE_BANDS, "universe": "every problem read (malformed records counted as dropped)"}
    return rows.table("grade", {**PROBLEM_FEATURES, **RICH_FEATURES}, PROBLEM_CATEGORICAL + RICH_CATEGORICAL, notes)


# - probes -


class ParseFailure(Exception):
    """A probe problem whose numbers cannot be read; the message is the drop reason."""


@dataclass(frozen=True)
class Probe:
    """A question template whose gold answer is determined by a few numbers in the table."""

    name: str
    detect: str  # lower-cased substring that marks a problem as an instance of the template
    labels: tuple[str, ...]  # the gold answers the template allows
    features: dict[str, str]  # feature name -> definition
    parse: Callable[[Problem], dict[str, float]]
    rule: Callable[[dict[str, float]], str]  # the label the numbers imply
    rule_text: str


def parse_shortage(problem: Problem) -> dict[str, float]:
    """'At a price of $X, is there a shortage or a surplus?' over Price | Quantity demanded | Quantity supplied."""
    match = re.search(r"at a price of (\$[\d,.]*\d)", problem.question, re.IGNORECASE)
    if not match:
        raise ParseFailure("question_unparsed")
    cells = table_cells(problem.table)
    if [c.lower() for c in cells[0]] != ["price", "quantity demanded", "quantity supplied"]:
        raise ParseFailure("table_header_unexpected")
    price = parse_number(match.group(1))
    body = [[parse_number(c) for c in line] for line in cells[1:]]
    if any(len(line) != 3 or None in line for line in body):
        raise ParseFailure("table_number_unparsed")
    rows = [line for line in body if line[0] == price]
    if len(rows) != 1:
        raise ParseFailure("price_row_not_found")
    _, demanded, supplied = rows[0]
    return {"price": price, "quantity_demanded": demanded, "quantity_supplied": supplied}


def rule_shortage(x: dict[str, float]) -> str:
    if x["quantity_demanded"] == x["quantity_supplied"]:
        return "neither"
    return "shortage" if x["quantity_demanded"] > x["quantity_supplied"] else "surplus"


ENOUGH = re.compile(r"^.+ has (\$[\d,.]*\d)\. Does (?:he|she|they) have enough to buy (.+)\?$")


def parse_enough_money(problem: Problem) -> dict[str, float]:
    """'<Name> has $B. Does she have enough to buy a A and a C?' over a price list 'item | $price'."""
    match = ENOUGH.match(problem.question.strip())
    if not match:
        raise ParseFailure("question_unparsed")
    prices = {}
    for line in table_cells(problem.table):
        value = parse_number(line[-1]) if len(line) == 2 else None
        if value is None:
            raise ParseFailure("table_not_a_price_list")
        if _item(line[0]) in prices:
            raise ParseFailure("table_item_repeated")
        prices[_item(line[0])] = value
    items = _two_items(match.group(2), prices)
    if items is None:
        raise ParseFailure("item_not_in_table")
    return {"budget": parse_number(match.group(1)), "price_a": prices[items[0]], "price_b": prices[items[1]]}


def _item(text: str) -> str:
    return re.sub(r"^(?:an?|some|the)\s+", "", text.strip().lower())


def _two_items(text: str, prices: Mapping[str, float]) -> tuple[str, str] | None:
    """Split 'a X and a Y' at the ' and ' that leaves two items of the price list."""
    parts = text.split(" and ")
    for cut in range(1, len(parts)):
        first, second = _item(" and ".join(parts[:cut])), _item(" and ".join(parts[cut:]))
        if first in prices and second in prices:
            return first, second
    return None


def rule_enough_money(x: dict[str, float]) -> str:
    return "yes" if round(x["budget"] - x["price_a"] - x["price_b"], 6) >= 0 else "no"


LINEAR_PAIRS = 3


def parse_linear(problem: Problem) -> dict[str, float]:
    """'Is the function linear or nonlinear?' over an 'x | y' table of three pairs."""
    cells = table_cells(problem.table)
    if [c.lower() for c in cells[0]] != ["x", "y"]:
        raise ParseFailure("table_header_unexpected")
    pairs = [[parse_number(c) for c in line] for line in cells[1:]]
    if any(len(pair) != 2 or None in pair for pair in pairs):
        raise ParseFailure("table_number_unparsed")
    if len(pairs) != LINEAR_PAIRS:
        raise ParseFailure(f"not_{LINEAR_PAIRS}_pairs")
    out = {}
    for i, (x, y) in enumerate(pairs, start=1):
        out[f"x{i}"], out[f"y{i}"] = x, y
    return out


def rule_linear(v: dict[str, float]) -> str:
    """Linear when the slope between consecutive points is constant (exact rational arithmetic)."""
    xs = [Fraction(str(v[f"x{i}"])) for i in range(1, LINEAR_PAIRS + 1)]
    ys = [Fraction(str(v[f"y{i}"])) for i in range(1, LINEAR_PAIRS + 1)]
    if len(set(xs)) != len(xs):
        return "not_a_function_of_distinct_x"
    slopes = {(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(LINEAR_PAIRS - 1)}
    return "linear" if len(slopes) == 1 else "nonlinear"


PROBES = {
    "probe-shortage": Probe(
        "probe-shortage",
        "shortage or a surplus",
        ("shortage", "surplus"),
        {
            "price": "the price asked about (the $ amount in the question)",
            "quantity_demanded": "quantity demanded in the table row of that price",
            "quantity_supplied": "quantity supplied in the table row of that price",
        },
        parse_shortage,
        rule_shortage,
        "shortage if quantity_demanded > quantity_supplied, surplus if smaller",
    ),
    "probe-enough-money": Probe(
        "probe-enough-money",
        "have enough to buy",
        ("yes", "no"),
        {
            "budget": "the money the person has (the $ amount in the question)",
            "price_a": "price in the table of the first item named in the question",
            "price_b": "price in the table of the second item named in the question",
        },
        parse_enough_money,
        rule_enough_money,
        "yes if budget >= price_a + price_b, else no",
    ),
    "probe-linear": Probe(
        "probe-linear",
        "linear or nonlinear",
        ("linear", "nonlinear"),
        {f"{axis}{i}": f"{axis} value of the table's row {i}" for i in range(1, LINEAR_PAIRS + 1) for axis in "xy"},
        parse_linear,
        rule_linear,
        "linear if (y2-y1)/(x2-x1) == (y3-y2)/(x3-x2), else nonlinear",
    ),
}


def label_rule_fidelity(meta: Mapping, rows: pd.DataFrame) -> dict:
    """For a probe task: how often rows (e.g. synthetic ones) obey the rule that makes the real label.

    Real rows agree by construction (the builder checks it), so on synthetic rows this measures
    whether a generator recovered the rule of a few numbers, not just their marginals. Empty for
    every other dataset.
    """
    source = str(meta.get("source", ""))
    task = source.removeprefix("tabmwp:").partition("@")[0]
    if not source.startswith("tabmwp:") or task not in PROBES:
        return {}
    probe = PROBES[task]
    features = list(probe.features)
    complete = rows[features].notna().all(axis=1)
    implied = [probe.rule(dict(zip(features, map(float, values))))
               for values in rows.loc[complete, features].itertuples(index=False)]
    labels = rows.loc[complete, "target"].astype(str).to_numpy()
    agreement = float(np.mean(np.asarray(implied) == labels)) if implied else float("nan")
    majority = float(pd.Series(labels).value_counts(normalize=True).iloc[0]) if len(labels) else float("nan")
    return {"label_rule": {"rule": probe.rule_text, "agreement": agreement, "majority_label_share": majority,
                           "rows": int(complete.sum())}}


def build_probe(found: ProblemSet, src: Path, probe: Probe) -> TaskTable:
    """One row per problem of the template: numbers read from the table, label the gold answer."""
    rows = Rows()
    disagree: list[str] = []
    for problem in found.problems.values():
        if probe.detect not in problem.question.lower():
            continue
        if str(problem.answer) not in probe.labels:
            rows.drop("gold_answer_not_a_template_label", problem.pid)
            continue
        try:
            numbers = probe.parse(problem)
        except ParseFailure as failure:
            rows.drop(str(failure), problem.pid)
            continue
        if probe.rule(numbers) != problem.answer:
            disagree.append(problem.pid)
        rows.add(problem, numbers, str(problem.answer))
    notes = {
        "template": probe.detect,
        "rule": probe.rule_text,
        "rule_agrees_with_gold": len(rows.rows) - len(disagree),
        "rule_disagrees_with_gold": sorted(disagree, key=_id_order),
        "universe": f"problems whose question contains {probe.detect!r}",
    }
    return rows.table(probe.name, probe.features, (), notes)


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


# --- writing and loading tables ----------------------------------------------------------


def table_bytes(frame: pd.DataFrame) -> bytes:
    """The table as gzip-compressed CSV with a fixed header (no name, no time), so equal tables give equal bytes."""
    text = frame.to_csv(index=False, lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), mtime=0)


def write_table(table: TaskTable, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(table_bytes(table.frame))
    return path


def write_tables(tables: Mapping[str, TaskTable], report: dict, out: str | os.PathLike) -> Path:
    """``<task>.csv.gz`` per task and ``build_report.json`` (with each table's sha256) in ``out``."""
    out = Path(out)
    for name, table in tables.items():
        path = write_table(table, out / f"{name}.csv.gz")
        report["tasks"][name]["sha256"] = sha256_file(path)
    write_json(out / REPORT_FILE, report)
    return out / REPORT_FILE


def read_table(path: str | os.PathLike, categorical: Iterable[str]) -> pd.DataFrame:
    """A written task table; bookkeeping, categorical and label columns as strings, empty cells as NaN."""
    text_columns = {name: str for name in (*ID_COLUMNS, *categorical, TARGET)}
    return pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""])


def task_categorical(task: str) -> list[str]:
    if task.startswith("solved-"):
        return list(PROBLEM_CATEGORICAL)
    if task == "grade":
        return list(PROBLEM_CATEGORICAL + RICH_CATEGORICAL)
    return []


def tables_dir() -> Path:
    """Folder of the shipped derived tables: ``$CAUSALMIXFT_TABMWP_TABLES`` or ``resources/tabmwp``."""
    return Path(os.environ.get(TABLES_ENV) or DEFAULT_TABLES_DIR)


def input_files(argument: str) -> list[Path]:
    """The local files a ``tabmwp:<argument>`` source reads (for a workflow rule's inputs); none for ``@upstream``."""
    task, _, raw = argument.partition("@")
    if not raw:
        return [tables_dir() / f"{task}.csv.gz"]
    if raw == "upstream":
        return []
    names = [name for name, _, _ in PROBLEM_FILES] + [SPLITS_FILE, *SOLVER_RESULTS.values()]
    return [Path(raw) / name for name in names if (Path(raw) / name).is_file()]


def load_task(source: Source) -> RawTable:
    """The ``tabmwp:`` source. ``argument`` is ``<task>``, ``<task>@<folder>`` or ``<task>@upstream``.

    - ``<task>``: the shipped derived table (``resources/tabmwp/<task>.csv.gz``); offline, fast.
    - ``<task>@<folder>``: rebuilt from the upstream files in a local folder (for example the
      full ``problems_*.json`` files) into ``<cache_dir>/tabmwp/derived/<dataset>/``.
    - ``<task>@upstream``: the full upstream files are downloaded (checked, cached under
      ``<cache_dir>/tabmwp/upstream``) and the table rebuilt from them. Needs network once.
    """
    task, _, raw = source.argument.partition("@")
    if task not in TASK_BUILDERS:
        raise source.fail(f"unknown TabMWP task {task!r}; known: {', '.join(TASKS)}")
    try:
        path = _shipped_table(source, task) if not raw else _rebuilt_table(source, task, raw)
        frame = read_table(path, task_categorical(task))
    except (TabmwpError, OSError, ValueError) as exc:
        raise source.fail(f"tabmwp:{source.argument}: {exc}") from exc
    features = frame.drop(columns=list(ID_COLUMNS))
    return RawTable(features, TARGET, task_categorical(task), path)


def _shipped_table(source: Source, task: str) -> Path:
    path = tables_dir() / f"{task}.csv.gz"
    if not path.is_file():
        raise TabmwpError(
            f"derived table {path} not found; build it with `python -m causalmixft.data.tabmwp build "
            f"--src <folder of TabMWP files> --out {path.parent}` or use the source tabmwp:{task}@<folder>"
        )
    return path


def _rebuilt_table(source: Source, task: str, raw: str) -> Path:
    if raw == "upstream":
        src = download_upstream(source.cache_dir / "tabmwp" / "upstream", fetch=fetch_url, files=UPSTREAM_FILES)
    else:
        src = Path(raw)
        if not src.is_dir():
            raise TabmwpError(f"source folder {src} does not exist")
    tables, report = build_tasks(src, [task])
    out = source.cache_dir / "tabmwp" / "derived" / source.dataset
    write_tables(tables, report, out)
    return out / f"{task}.csv.gz"


# --- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m causalmixft.data.tabmwp", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the derived task tables from a folder of upstream files")
    build.add_argument("--src", required=True, help="folder with problems_*.json / tabmwp_test_pot.jsonl / results/")
    build.add_argument("--out", required=True, help="folder for <task>.csv.gz and build_report.json")
    build.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    download = commands.add_parser("download", help="download the full upstream files (network)")
    download.add_argument("--dest", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "download":
            print(download_upstream(args.dest))
            return 0
        tables, report = build_tasks(args.src, args.tasks)
        print(write_tables(tables, report, args.out))
    except TabmwpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
