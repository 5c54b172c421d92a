"""This installation's key for signing pickles, kept outside ``results/``.

A pickle can run code when it is loaded, so :func:`causalmixft.io.read_pickle` loads only a file
whose HMAC-SHA256 under this key matches its sidecar. A checksum alone guards against damage,
not against a results folder copied from someone else: without the key nobody else can forge the
signature, so a foreign pickle is refitted, never executed.

The key file is ``$CAUSALMIXFT_KEY_FILE`` if set, else ``$XDG_CONFIG_HOME/causalmixft/pickle.key``
(``~/.config/causalmixft/pickle.key``). It is created on first use, readable by its owner only
(0600). Cluster jobs must see the same file (a shared home does; else set the variable).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

KEY_ENV = "CAUSALMIXFT_KEY_FILE"
KEY_BYTES = 32


def key_path() -> Path:
    override = os.environ.get(KEY_ENV)
    if override:
        return Path(override).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "causalmixft" / "pickle.key"


def installation_key() -> bytes:
    """The key's bytes, creating the file (0600) if there is none yet."""
    path = key_path()
    if not path.exists():
        _create_key(path)
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < KEY_BYTES:
        raise ValueError(f"the pickle signing key {path} holds {len(key)} bytes, not {KEY_BYTES}; delete it to make a new one")
    return key


def _create_key(path: Path) -> None:
    # Written whole to a private temporary file, then linked into place: two jobs starting at once
    # both see one complete key (the second link fails and that job reads the first one's key).
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pickle.key.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def file_signature(path: str | os.PathLike) -> str:
    """HMAC-SHA256 of the file's bytes under this installation's key, as hex."""
    mac = hmac.new(installation_key(), digestmod=hashlib.sha256)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            mac.update(block)
    return mac.hexdigest()


def signature_matches(path: str | os.PathLike, signature: str) -> bool:
    return hmac.compare_digest(file_signature(path), signature)
