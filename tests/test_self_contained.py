"""The repository refers to no file outside itself: a clone has everything its docs, code and tests name."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import REPO

CHECKED = ["README.md", "Makefile", "Snakefile", "config.yaml", "pyproject.toml", "docs", "src", "workflow", "tests", "config", "bench"]
TEXT = {".md", ".py", ".smk", ".yaml", ".yml", ".toml", ".txt", ".rst", ""}
RELATIVE = re.compile(r"(?<![\w./])((?:\.\./)+[\w.-]+)")  # ../x, ../../x: resolved from the file's folder


def outside(path: Path, line: str) -> list[str]:
    found = []
    for match in RELATIVE.finditer(line):
        # a path in a workflow file is relative to that file; in docs, code and tests either to the
        # file or to the repository root (README-style): outside only if it leaves both
        targets = [path.parent / match.group(1), REPO / match.group(1)]
        if not any(os.path.normpath(t).startswith(str(REPO) + os.sep) for t in targets):
            found.append(match.group(1))
    return found


def test_no_file_names_a_path_outside_the_repository():
    offending = []
    for name in CHECKED:
        root = REPO / name
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix not in TEXT or "egg-info" in str(path) or "__pycache__" in path.parts or path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(errors="ignore").splitlines(), start=1):
                if outside(path, line) or "/shared/" in line.replace(" ", ""):
                    offending.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offending, "\n".join(offending)
