"""A built task's table, and the collector of its rows and dropped problems."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd

from causalmixft.data.schema import TARGET
from causalmixft.data.tabmwp.problems import Problem

ID_COLUMNS = ("problem_id", "upstream_split")  # bookkeeping columns, never features


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
        frame = frame.sort_values("problem_id", key=lambda ids: ids.map(id_order), kind="stable").reset_index(
            drop=True
        )
        dropped = {reason: len(ids) for reason, ids in sorted(self.dropped.items())}
        listed = {
            reason: sorted(ids, key=id_order)
            for reason, ids in sorted(self.dropped.items())
            if len(ids) <= self.LIST_IDS_UP_TO
        }
        considered = len(frame) + sum(dropped.values())
        return TaskTable(name, frame, list(categorical), considered, dropped, listed, notes or {})


def id_order(pid: str) -> tuple[int, str]:
    return (int(pid), pid) if pid.isdigit() else (sys.maxsize, pid)
