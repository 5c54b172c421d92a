"""File I/O shared by every stage: atomic writes, JSON, parquet, safetensors and signed pickles.

Every writer goes through a temporary file in the destination folder followed by an
``os.replace``, so an interrupted job never leaves a half-written output that a later run
could mistake for a finished one.

Every reader is for files the workflow wrote. One that finds its file damaged (truncated, not
parseable, a pickle not signed by this installation) removes it and raises :class:`DamagedFile`
naming it: Snakemake then sees an output missing and a plain rerun rebuilds it, where a damaged
file left in place would look up to date forever.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import math
import pickle
import struct
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from causalmixft.signing import file_signature, signature_matches


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
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        # mkstemp creates owner-only files, and so does a writer that replaces the file (safetensors'
        # save_file): outputs get the usual permissions (0666 less umask).
        os.chmod(tmp, 0o666 & ~umask)
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
        return _finite(value.tolist())
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None: JSON has no NaN or Infinity (numpy's floats alike)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def write_json(path: str | os.PathLike, data: Any) -> None:
    text = json.dumps(_finite(data), indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


class DamagedFile(ValueError):
    """A file the workflow wrote that can no longer be read as written; it has been removed."""


def damaged(message: str, path: str | os.PathLike, *also: Path) -> DamagedFile:
    """Remove ``path`` (and the files ``also``); return the error to raise: ``message``, then what was done."""
    path = Path(path)
    for gone in (path, *also):
        gone.unlink(missing_ok=True)
    names = " and ".join(gone.name for gone in (path, *also))
    them = "them" if also else "it"
    return DamagedFile(f"{message}. Removed {names}: a plain rerun of the workflow (the same command) rebuilds {them}")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise damaged(f"{path} is not valid JSON ({error})", path) from None


def write_manifest(path: str | os.PathLike, files: dict[str, str | os.PathLike]) -> None:
    """``{name: {"path", "sha256"}}`` of ``files`` as JSON: what a stage wrote, written last."""
    write_json(path, {name: {"path": os.fspath(file), "sha256": sha256_file(file)} for name, file in files.items()})


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError) as error:
        raise damaged(f"{path} is not a readable parquet table ({type(error).__name__}: {error})", path) from None


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a whole safetensors file (None if it is); reads only its header.

    The header (8-byte length, then JSON) gives every tensor's byte range; a truncated or padded
    file does not end where the last range does.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return f"{size} bytes, shorter than a safetensors header"
        (n_header,) = struct.unpack("<Q", prefix)
        if 8 + n_header > size:
            return f"{size} bytes, shorter than its {n_header}-byte header says"
        try:
            header = json.loads(handle.read(n_header))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "its safetensors header is not valid JSON"
    try:
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError):
        return "its safetensors header does not list tensor offsets"
    if 8 + n_header + end != size:
        return f"{size} bytes where its header says {8 + n_header + end}"
    return None


# A pickle sidecar's first word: the signature's kind, then its hex digest.
SIGNATURE_PREFIX = "hmac-sha256:"


def write_pickle(path: str | os.PathLike, obj: Any) -> None:
    """Pickle ``obj`` with a sidecar holding its signature (:mod:`causalmixft.signing`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        signature = file_signature(tmp)
    with atomic_path(_sidecar(path)) as tmp:
        tmp.write_text(f"{SIGNATURE_PREFIX}{signature}  {path.name}\n")


def read_pickle(path: str | os.PathLike) -> Any:
    """Unpickle only a file this installation signed, unchanged since (pickles can execute code).

    A pickle whose sidecar is missing, unsigned (an older sha256 sidecar) or does not match was
    changed after it was written or written elsewhere: it and its sidecar are removed, unread,
    before :class:`DamagedFile` is raised, so a plain rerun refits it here.
    """
    path = Path(path)
    sidecar = _sidecar(path)
    if not path.exists():
        raise FileNotFoundError(f"refusing to unpickle {path}: no such file")
    words = sidecar.read_text().split() if sidecar.exists() else []
    signature = words[0].removeprefix(SIGNATURE_PREFIX) if words else ""
    if not sidecar.exists():
        problem = f"its signature file {sidecar.name} is missing"
    elif not words or not words[0].startswith(SIGNATURE_PREFIX):
        problem = f"{sidecar.name} holds no {SIGNATURE_PREFIX[:-1]} signature (written by an older version?)"
    elif not signature_matches(path, signature):
        problem = (
            f"its signature does not match {sidecar.name}: the file changed after it was written, "
            "or another installation (another key) wrote it"
        )
    else:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    raise damaged(f"refusing to unpickle {path}: {problem}", path, sidecar)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
