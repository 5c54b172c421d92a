"""Failure markers: an expected failure of one job, recorded so the aggregate stage can report it.

A job that cannot do its work for a reason of the data (a :class:`StageError`, e.g. SMOTE on a
class with a single train row) still fails: Snakemake marks it failed, shows its log, and
removes its outputs. Before it exits, :func:`recorded_failure` writes a marker JSON next to the
results (``results/failed/{rule}/...json``, not a declared output, so Snakemake leaves it):
the error message, plus the job's input files and settings. Any other exception is a bug and
leaves no marker.

When the workflow is parsed again, :func:`current_marker` accepts a marker only while it still
describes the job that would run: the same input files, none modified after the marker was
written, and the same settings. The aggregate stage then leaves the affected runs out of its
inputs (so it can run) and lists them in ``missing.csv`` with the message. A marker goes stale
as soon as the code, data or settings change, and a job that runs removes its marker first.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from causalmixft import layout
from causalmixft.errors import StageError
from causalmixft.io import read_json, write_json

ROOT = layout.FAILED


def marker_path(rule: str, *parts: object, root: str | os.PathLike = ROOT) -> str:
    """``{root}/{rule}/{part}/.../{last}.json``; e.g. ``results/failed/sample_generator/smote/d/fold0.json``."""
    if not parts:
        raise ValueError("a marker needs at least one key part")
    *folders, last = (str(p) for p in parts)
    return str(Path(root, rule, *folders, f"{last}.json"))


def plain(value: Any) -> Any:
    """JSON-normal form (Snakemake's config and params containers become dicts, lists, numbers)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def write_marker(
    path: str | os.PathLike,
    error: StageError,
    inputs: Iterable[str | os.PathLike],
    settings: Mapping,
    **ident: Any,
) -> None:
    write_json(
        path,
        {
            **plain(ident),
            "message": str(error),
            "stage": error.stage,
            "dataset": error.dataset,
            "problem": error.problem,
            "inputs": sorted({os.fspath(p) for p in inputs}),
            "settings": plain(dict(settings)),
        },
    )


@contextlib.contextmanager
def recorded_failure(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    settings: Mapping,
    **ident: Any,
) -> Iterator[None]:
    """Remove an old marker, run the block, and write a marker if it raises a :class:`StageError`.

    The error is re-raised either way: the job fails, with the error's message in its log.
    """
    inputs = list(inputs)
    Path(path).unlink(missing_ok=True)
    try:
        yield
    except StageError as error:
        write_marker(path, error, inputs, settings, **ident)
        raise


def current_marker(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    settings: Mapping,
) -> dict | None:
    """The marker at ``path`` if it still describes the job (same inputs and settings, none newer)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        marker = read_json(path)
    except (OSError, ValueError):
        return None
    expected = sorted({os.fspath(p) for p in inputs})
    if marker.get("inputs") != expected or marker.get("settings") != plain(dict(settings)):
        return None
    written = path.stat().st_mtime
    for name in expected:
        if not os.path.exists(name) or os.path.getmtime(name) > written:
            return None
    return {**marker, "path": str(path)}
