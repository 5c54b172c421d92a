"""File I/O shared by every stage: atomic writes, JSON, parquet and checksummed pickles.

Every writer goes through a temporary file in the destination folder followed by an
``os.replace``, so an interrupted job never leaves a half-written output that a later run
could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp creates owner-only files; outputs get the usual permissions (0666 less umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)


def write_pickle(path: str | os.PathLike, obj: Any) -> None:
    """Pickle ``obj`` with a ``.sha256`` sidecar that :func:`read_pickle` checks before loading."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        digest = sha256_file(tmp)
    with atomic_path(_sidecar(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")


class DamagedFile(ValueError):
    """A checksummed file that no longer matches its sidecar; both have been removed."""


def read_pickle(path: str | os.PathLike) -> Any:
    """Unpickle only a file whose sha256 matches its sidecar (pickles can execute code).

    A file that does not match was changed after it was written: it and its sidecar are removed
    before :class:`DamagedFile` is raised, so that the workflow sees an output missing and a plain
    rerun rebuilds it (otherwise the damaged file would look up to date forever).
    """
    path = Path(path)
    sidecar = _sidecar(path)
    if not sidecar.exists():
        raise ValueError(
            f"refusing to unpickle {path}: checksum file {sidecar.name} is missing; "
            f"a plain rerun of the workflow rebuilds both"
        )
    expected = sidecar.read_text().split()[0]
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise DamagedFile(
            f"refusing to unpickle {path}: sha256 {actual[:12]}... does not match "
            f"{sidecar.name} ({expected[:12]}...); the file was changed after it was written. "
            f"Removed it and {sidecar.name}: a plain rerun of the workflow (the same command) rebuilds them"
        )
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
