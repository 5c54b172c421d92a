"""The features of a TabMWP problem: its table, its question, its choices and the form of its answer."""

from __future__ import annotations

import math
import re
import statistics
from typing import Any

from causalmixft.data.tabmwp.numbers import TIME, numbers_in, parse_number, table_cells, token_value
from causalmixft.data.tabmwp.problems import Problem, ProblemSet

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


def shared_features(found: ProblemSet, problem: Problem) -> dict[str, Any]:
    """:func:`problem_features`, computed once per problem of ``found`` and shared by the tasks."""
    if problem.pid not in found.feature_cache:
        found.feature_cache[problem.pid] = problem_features(problem)
    return found.feature_cache[problem.pid]

