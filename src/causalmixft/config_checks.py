"""What a config can get wrong that the JSON schema lets through.

Snakemake reads the config files with a YAML loader on which a repeated key silently overwrites
the first; and ``.nan`` or ``.inf`` is a number to the schema (every bound compares false). Both
are checked before the workflow builds its jobs (``workflow/rules/common.smk``), each problem
naming the file or the key.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Mapping

import yaml


class _KeyRecordingLoader(yaml.SafeLoader):
    """A safe loader that records every mapping key that occurs twice in one mapping."""

    def __init__(self, stream):
        super().__init__(stream)
        self.repeated: list[str] = []

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                self.repeated.append(f"{key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep)


def repeated_keys(path: str | os.PathLike) -> list[str]:
    """Keys that occur twice in one mapping of the YAML file, with the line of the second."""
    with open(path) as handle:
        loader = _KeyRecordingLoader(handle)
        try:
            loader.get_single_data()
        finally:
            loader.dispose()
    return loader.repeated


def non_finite_numbers(config: Any, prefix: str = "") -> list[str]:
    """Dotted keys of the numbers in ``config`` that are NaN or infinite."""
    if isinstance(config, float):
        return [] if math.isfinite(config) else [f"{prefix} ({config})"]
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, (list, tuple)):
        items = enumerate(config)
    else:
        return []
    found = []
    for key, value in items:
        found += non_finite_numbers(value, f"{prefix}.{key}" if prefix else str(key))
    return found


def config_problems(config: Any, files: Iterable[str | os.PathLike]) -> list[str]:
    """Every problem of these kinds, as lines of an error message."""
    problems = []
    for path in files:
        repeated = repeated_keys(path)
        if repeated:
            problems.append(f"{os.fspath(path)}: keys given twice (the last would win unsaid): {', '.join(repeated)}")
    problems += [f"config: {key}: not a finite number" for key in non_finite_numbers(config)]
    return problems


def merged_config(paths: Iterable[str | os.PathLike]) -> dict:
    """Config files merged key by key in order, nested blocks included, as Snakemake merges each
    ``--configfile`` over the workflow's ``configfile: config.yaml``."""

    def merge(base: dict, update: Mapping) -> dict:
        for key, value in update.items():
            nested = isinstance(value, Mapping) and isinstance(base.get(key), Mapping)
            base[key] = merge(dict(base[key]), value) if nested else value
        return base

    merged: dict = {}
    for path in paths:
        with open(path) as handle:
            merge(merged, yaml.safe_load(handle) or {})
    return merged
