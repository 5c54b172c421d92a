"""Seeds derived from names, so that a result depends only on what it is, not on job order."""

import hashlib


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that is a pure function of ``parts`` (e.g. dataset, fold, method, size).

    Python's ``hash`` is salted per process, so a cryptographic digest of the joined string
    representation is used instead: identical on every machine and every run.
    """
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF
