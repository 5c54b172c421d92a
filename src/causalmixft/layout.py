"""Where every result lives: the path patterns of the workflow's files, in one place.

The rules declare their inputs and outputs with these patterns (Snakemake wildcards in braces),
the aggregate stage (:mod:`causalmixft.analysis.collect`) lists and parses the files it reads
with them, and the failure scan looks for the markers they name. A pattern is formatted with
:func:`fill`, which leaves the wildcards it is not given in place.

Synthetic size 0 stands for "real rows only": it has no sample file. ``real{budget}`` is the real
data budget of a run (train + validation rows, :mod:`causalmixft.grid`).
"""

from __future__ import annotations

import re
from typing import Iterable

RESULTS = "results"

PREPARED = "results/data/{dataset}"  # .parquet: the prepared table; .meta.json: its schema
SPLIT = "results/splits/{dataset}/fold{fold}/real{budget}"  # train/val/test.parquet, meta.json
CAUSAL = "results/causal/{dataset}/fold{fold}/real{budget}"  # the discovered DAG: dag.pkl, dag.json, dag.png
GENERATOR_FIT = "results/generators/{generator}/{dataset}/fold{fold}/real{budget}"  # generator.pkl, report.json
SAMPLE = "results/synth/{generator}/{dataset}/fold{fold}/real{budget}/n{size}"  # .parquet, .fidelity.json
MODEL = "results/models/{backbone}"  # a pretrained backbone: model.safetensors, config.json
RUN = "results/runs/{backbone}/{method}/{dataset}/fold{fold}/real{budget}/n{size}"  # metrics.json, weights
FAILED = "results/failed"  # markers of jobs that failed for a reason of the data (causalmixft.failures)
FAILED_FIT = "results/failed/fit_generator/{generator}/{dataset}/fold{fold}/real{budget}.json"
FAILED_SAMPLE = "results/failed/sample_generator/{generator}/{dataset}/fold{fold}/real{budget}/n{size}.json"
LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"

# Wildcards that are numbers; every other one is a name without "/".
NUMERIC = frozenset({"fold", "budget", "size"})
WILDCARD = re.compile(r"\{(\w+)\}")


def fill(pattern: str, **values: object) -> str:
    """``pattern`` with the wildcards in ``values`` replaced; the others stay wildcards."""
    return WILDCARD.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], pattern)


def tail(pattern: str, start: str) -> str:
    """``pattern`` from wildcard ``start`` on: ``tail(RUN, "method")`` is ``{method}/.../n{size}``."""
    return pattern[pattern.index("{" + start + "}") :]


def regex(pattern: str, start: str | None = None) -> re.Pattern:
    """A regex with a named group per wildcard, matching the end of a path.

    With ``start`` (a wildcard name), only the pattern's :func:`tail` is matched, so a path
    under another results folder or backbone matches too.
    """
    if start is not None:
        pattern = tail(pattern, start)
    parts, last = [], 0
    for match in WILDCARD.finditer(pattern):
        parts.append(re.escape(pattern[last : match.start()]))
        parts.append(rf"(?P<{match[1]}>\d+)" if match[1] in NUMERIC else rf"(?P<{match[1]}>[^/]+)")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts) + "$")


def under(results: str, pattern: str) -> str:
    """``pattern`` under another results folder than ``results/`` (tests, copies)."""
    return results + pattern[len(RESULTS) :] if results != RESULTS else pattern


def sample_file(
    generator: str, dataset: str, fold: int, budget: int, size: int, ext: str, results: str = RESULTS
) -> str:
    """``results/synth/{generator}/{dataset}/fold{fold}/real{budget}/n{size}.{ext}`` (parquet, fidelity.json)."""
    values = dict(generator=generator, dataset=dataset, fold=fold, budget=budget, size=size)
    return fill(under(results, SAMPLE), **values) + f".{ext}"


def metrics_file(
    backbone: str, method: str, dataset: str, fold: int, budget: int, size: int, results: str = RESULTS
) -> str:
    """``results/runs/{backbone}/{method}/{dataset}/fold{fold}/real{budget}/n{size}/metrics.json``."""
    values = dict(backbone=backbone, method=method, dataset=dataset, fold=fold, budget=budget, size=size)
    return fill(under(results, RUN), **values) + "/metrics.json"


def failure_marker(
    rule: str, generator: str, dataset: str, fold: int, budget: int, size: int | None = None
) -> str:
    """The marker a failed fit_generator (no size) or sample_generator job leaves."""
    if rule == "fit_generator":
        return fill(FAILED_FIT, generator=generator, dataset=dataset, fold=fold, budget=budget)
    if rule == "sample_generator":
        return fill(FAILED_SAMPLE, generator=generator, dataset=dataset, fold=fold, budget=budget, size=size)
    raise ValueError(f"no failure marker for rule {rule!r}")


# Each job rule's log and benchmark files: results/{logs,benchmarks}/{rule}/ + its main output's pattern
# from the wildcard named here on (``job_file``).
JOB_FILES = {
    "prepare_dataset": (PREPARED, "dataset"),
    "split": (SPLIT, "dataset"),
    "discover_dag": (CAUSAL, "dataset"),
    "fit_generator": (GENERATOR_FIT, "generator"),
    "sample_generator": (SAMPLE, "generator"),
    "pretrain_backbone": (MODEL, "backbone"),
    "finetune": (RUN, "backbone"),
}


def job_file(root: str, rule: str, ext: str, **values: object) -> str:
    """A rule's log (``root=LOGS``, ".log") or benchmark (``BENCHMARKS``, ".tsv") file, its wildcards
    filled from ``values``: ``job_file(LOGS, "split", ".log")`` is
    ``results/logs/split/{dataset}/fold{fold}/real{budget}.log``."""
    pattern, start = JOB_FILES[rule]
    return fill(f"{root}/{rule}/{tail(pattern, start)}{ext}", **values)


# The files the aggregate stage parses, matched by their path (under any results folder, backbone).
RUN_METRICS = regex(RUN + "/metrics.json", start="method")
FIDELITY = regex(SAMPLE + ".fidelity.json", start="generator")
