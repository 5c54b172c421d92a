"""The upstream TabMWP files: where they live, their checksums, and downloading them (network, once)."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from causalmixft.data.tabmwp.errors import TabmwpError
from causalmixft.io import atomic_path

log = logging.getLogger(__name__)

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
