"""What every generator job shares: which (dataset, fold) it works on, its seeds, and its inputs.

Every pickle goes through :func:`causalmixft.io.write_pickle` (a sidecar with this installation's
signature) and is read back with :func:`causalmixft.io.read_pickle`, which removes a file that
changed or was signed elsewhere; a refused or broken input is a :class:`StageError` naming the
dataset and the stage.
"""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass

import pandas as pd

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.io import read_json, read_parquet, read_pickle
from causalmixft.seeding import derive_seed

Path = str | os.PathLike


def stage_seed(base_seed: int, dataset: str, fold: int | str, stage: str, generator: str = "causalmixft") -> int:
    """The seed of one stage of one generator on one (dataset, fold); sizes share one draw."""
    return derive_seed(dataset, fold, generator, stage, base_seed)


@dataclass(frozen=True)
class Job:
    """One (dataset, fold) of the grid and the protocol seed (``protocol.seed``) its seeds derive from."""

    dataset: str
    fold: int
    seed: int = 0

    def stage_seed(self, stage: str, generator: str = "causalmixft") -> int:
        return stage_seed(self.seed, self.dataset, self.fold, stage, generator)


@dataclass(frozen=True)
class SplitFiles:
    """A fold's split as the rules hand it over: train rows, the dataset's meta, validation rows."""

    train: Path
    meta: Path
    val: Path | None = None


@dataclass
class Split:
    """The split loaded and cast to the schema (``val`` None when the job did not ask for it)."""

    schema: TableSchema
    meta: dict
    train: pd.DataFrame
    val: pd.DataFrame | None = None


def load_schema(meta_path: Path) -> TableSchema:
    return TableSchema.from_meta(read_json(meta_path))


def load_table(path: Path, schema: TableSchema, stage: str, dataset: str) -> pd.DataFrame:
    frame = read_parquet(path)
    missing = [c for c in schema.names + [schema.target] if c not in frame.columns]
    if missing:
        raise StageError(stage, dataset, f"{os.fspath(path)} lacks the schema's columns {missing[:5]}")
    return schema.cast(frame)


def load_split(files: SplitFiles, stage: str, dataset: str) -> Split:
    meta = read_json(files.meta)
    schema = TableSchema.from_meta(meta)
    train = load_table(files.train, schema, stage, dataset)
    val = None if files.val is None else load_table(files.val, schema, stage, dataset)
    return Split(schema, meta, train, val)


def load_checked_pickle(path: Path, stage: str, dataset: str):
    try:
        return read_pickle(path)
    except (OSError, ValueError) as exc:
        raise StageError(stage, dataset, str(exc)) from exc


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
