"""The fit_generator and sample_generator rules as file-to-file steps, testable without Snakemake.

The same shape as the CausalMixFT generator's stage (``causal/stages.py``): a generator is fitted
once per (dataset, fold) on the real train rows and pickled (with a sha256 sidecar); each size is
then sampled in its own job with :func:`causalmixft.causal.sample.sample_synthetic`, whose seeded
chunks do not depend on the sizes, so size n is the first n rows of the same draw in every job
(nested samples), and scored with :func:`causalmixft.causal.fidelity.fidelity_report`.

Fitting and sampling are timed: ``report.json`` of the fit holds ``fit_time_s`` (wall),
``fit_cpu_s`` (CPU time of the process during the fit) and ``peak_rss_mib`` (peak memory of the
fitting process); every ``n{size}.fidelity.json`` holds ``fit_time_s`` (copied from the fit
report), ``sample_time_s``, ``sample_cpu_s`` and ``sample_peak_rss_mib``. Seeds:
``derive_seed(dataset, fold, generator, stage, protocol.seed)`` for stage in ``fit``, ``sample``,
``fidelity``.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from typing import Mapping

from causalmixft import baselines
from causalmixft.causal.stages import (
    draw_samples,
    load_checked_pickle,
    load_schema,
    load_table,
    stage_seed,
    write_samples,
)
from causalmixft.errors import StageError
from causalmixft.io import read_json, write_json, write_pickle

Path = str | os.PathLike
log = logging.getLogger(__name__)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def build_generator(
    name: str,
    options: Mapping | None,
    dataset: str,
    dag: Path | None = None,
    weights: Path | None = None,
    quality: str | None = None,
):
    """The generator ``name`` with its config options and what its module's ``NEEDS`` asks for."""
    from causalmixft.causal.generators import make_generator

    extra = {}
    for need in baselines.needs(name):
        if need == "dag":
            if dag is None:
                raise StageError("fit", dataset, f"{name} needs the discovered DAG (dag.pkl)")
            extra["dag"] = load_checked_pickle(dag, "fit", dataset)
        elif need == "backbone":
            extra["weights"] = None if weights is None else os.fspath(weights)
        elif need == "scm_quality":
            extra["quality"] = quality or "fast"
    try:
        return make_generator(name, dataset=dataset, **dict(options or {}), **extra)
    except (TypeError, ValueError) as exc:
        raise StageError("fit", dataset, f"cannot build generator {name}: {exc}") from exc


def run_fit_generator(
    name: str,
    train: Path,
    meta: Path,
    fitted: Path,
    report_path: Path,
    options: Mapping | None,
    dataset: str,
    fold: int,
    seed: int,
    dag: Path | None = None,
    weights: Path | None = None,
    quality: str | None = None,
) -> dict:
    """Fit generator ``name`` on the train rows; write the pickled generator and ``report.json``."""
    schema = load_schema(meta)
    rows = load_table(train, schema, "fit", dataset)
    generator = build_generator(name, options, dataset, dag, weights, quality)
    start, cpu_start = time.perf_counter(), time.process_time()
    generator.fit(rows, schema, stage_seed(seed, dataset, fold, "fit", name))
    fit_time, fit_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    log.info("%s fitted on %s fold %s (%d rows) in %.2f s", name, dataset, fold, len(rows), fit_time)
    write_pickle(fitted, generator)
    report = {
        "generator": name,
        "dataset": dataset,
        "fold": fold,
        "train_rows": len(rows),
        "fit_time_s": round(fit_time, 3),
        "fit_cpu_s": round(fit_cpu, 3),
        "peak_rss_mib": peak_rss_mib(),
        "report": generator.report(),
    }
    write_json(report_path, report)
    return report


def load_fitted_generator(path: Path, name: str, dataset: str):
    from causalmixft.causal.generators import Generator

    generator = load_checked_pickle(path, "sample", dataset)
    if not isinstance(generator, Generator) or getattr(generator, "name", None) != name:
        found = getattr(generator, "name", type(generator).__name__)
        raise StageError("sample", dataset, f"{os.fspath(path)} holds {found!r}, not a fitted {name} generator")
    return generator


def run_sample_generator(
    name: str,
    fitted: Path,
    fit_report: Path,
    train: Path,
    val: Path,
    meta: Path,
    size: int,
    parquet: Path,
    fidelity: Path,
    synthetic: Mapping,
    dataset: str,
    fold: int,
    seed: int,
) -> dict:
    """Write ``n{size}.parquet`` (the first ``size`` rows of the generator's draw) and its fidelity report."""
    schema = load_schema(meta)
    train_rows = load_table(train, schema, "sample", dataset)
    val_rows = load_table(val, schema, "sample", dataset)
    generator = load_fitted_generator(fitted, name, dataset)
    start, cpu_start = time.perf_counter(), time.process_time()
    draw = draw_samples(generator, train_rows, schema, [int(size)], synthetic, dataset, fold, seed)
    sample_time, sample_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    costs = {
        "fit_time_s": read_json(fit_report).get("fit_time_s"),
        "sample_time_s": round(sample_time, 3),
        "sample_cpu_s": round(sample_cpu, 3),
        "sample_peak_rss_mib": peak_rss_mib(),
    }
    outputs = {int(size): (parquet, fidelity)}
    report = write_samples(draw, name, train_rows, val_rows, schema, meta, outputs, synthetic, dataset, fold, seed,
                           costs)[int(size)]
    log.info("%s %s fold %s n=%d: drew %d rows in %.2f s", name, dataset, fold, size, draw.info.get("drawn", 0),
             sample_time)
    return report
