"""Writing the derived task tables, and loading one as the ``tabmwp:`` dataset source."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from causalmixft.data.schema import TARGET
from causalmixft.data.tabmwp.errors import TabmwpError
from causalmixft.data.tabmwp.features import PROBLEM_CATEGORICAL, RICH_CATEGORICAL
from causalmixft.data.tabmwp.problems import PROBLEM_FILES, SPLITS_FILE
from causalmixft.data.tabmwp.rows import ID_COLUMNS, TaskTable
from causalmixft.data.tabmwp.tasks import SOLVER_RESULTS, TASK_BUILDERS, TASKS, build_tasks
from causalmixft.data.tabmwp.upstream import UPSTREAM_FILES, download_upstream, fetch_url
from causalmixft.io import atomic_path, sha256_file, write_json

DEFAULT_TABLES_DIR = Path(__file__).resolve().parents[4] / "resources" / "tabmwp"
TABLES_ENV = "CAUSALMIXFT_TABMWP_TABLES"  # overrides the folder of shipped derived tables
REPORT_FILE = "build_report.json"


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


def load_task(dataset: str, argument: str, cache_dir: str | os.PathLike = ".cache") -> tuple[pd.DataFrame, list[str], Path]:
    """The rows of a ``tabmwp:<argument>`` source: ``<task>``, ``<task>@<folder>`` or ``<task>@upstream``.

    - ``<task>``: the shipped derived table (``resources/tabmwp/<task>.csv.gz``); offline, fast.
    - ``<task>@<folder>``: rebuilt from the upstream files in a local folder (for example the
      full ``problems_*.json`` files) into ``<cache_dir>/tabmwp/derived/<dataset>/``.
    - ``<task>@upstream``: the full upstream files are downloaded (checked, cached under
      ``<cache_dir>/tabmwp/upstream``) and the table rebuilt from them. Needs network once.

    Returns the features and the label (bookkeeping columns dropped), the categorical columns,
    and the file read. Raises :class:`TabmwpError` (or OSError) for anything missing or unreadable.
    """
    task, _, raw = argument.partition("@")
    if task not in TASK_BUILDERS:
        raise TabmwpError(f"unknown TabMWP task {task!r}; known: {', '.join(TASKS)}")
    path = _shipped_table(task) if not raw else _rebuilt_table(dataset, task, raw, Path(cache_dir))
    frame = read_table(path, task_categorical(task))
    return frame.drop(columns=list(ID_COLUMNS)), task_categorical(task), path


def _shipped_table(task: str) -> Path:
    path = tables_dir() / f"{task}.csv.gz"
    if not path.is_file():
        raise TabmwpError(
            f"derived table {path} not found; build it with `python -m causalmixft.data.tabmwp build "
            f"--src <folder of TabMWP files> --out {path.parent}` or use the source tabmwp:{task}@<folder>"
        )
    return path


def _rebuilt_table(dataset: str, task: str, raw: str, cache_dir: Path) -> Path:
    if raw == "upstream":
        src = download_upstream(cache_dir / "tabmwp" / "upstream", fetch=fetch_url, files=UPSTREAM_FILES)
    else:
        src = Path(raw)
        if not src.is_dir():
            raise TabmwpError(f"source folder {src} does not exist")
    tables, report = build_tasks(src, [task])
    out = cache_dir / "tabmwp" / "derived" / dataset
    write_tables(tables, report, out)
    return out / f"{task}.csv.gz"
