"""The generator rules' file-to-file steps, what each script under workflow/scripts calls.

Paths in, paths out, testable without Snakemake:

- :func:`run_discover` writes a fold's DAG (train rows -> DAG), for the generators that need it
  (CausalMixFT and its controls);
- every generator is built by name (:mod:`causalmixft.generators.registry`), fitted once per
  (dataset, fold, budget) by :func:`run_fit_generator` and pickled, with its fit's wall and CPU
  seconds and peak memory in ``report.json``;
- :func:`run_sample` samples a fitted generator (loaded by :func:`load_fitted_generator`), one
  size per job (:func:`causalmixft.generators.sampling.sample_size`).

Each step imports only its own stage's modules: dowhy alone takes seconds to import, and a
discovery job does not need it; nor does it run (or rerun after an edit of) the sampling step.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Mapping

from causalmixft.errors import StageError
from causalmixft.generators.job import Job, SplitFiles, load_checked_pickle, load_split, peak_rss_mib
from causalmixft.generators.protocol import Generator
from causalmixft.io import read_json, write_json, write_pickle

if TYPE_CHECKING:
    from causalmixft.generators.sampling import SampleTarget, SamplingSettings

Path = str | os.PathLike
log = logging.getLogger(__name__)


def run_discover(
    job: Job, split: SplitFiles, dag_pkl: Path, dag_json: Path, dag_png: Path | None, discovery: Mapping
) -> None:
    """Discover the fold's DAG: ``dag.pkl`` (+ .sha256), ``dag.json`` and, unless None, ``dag.png``."""
    from causalmixft.causal.discover import discover_dag
    from causalmixft.causal.plot import plot_dag

    rows = load_split(split, "discover", job.dataset)
    result = discover_dag(rows.train, rows.schema, discovery, job.stage_seed("discover"), job.dataset)
    write_pickle(dag_pkl, result.dag)
    write_json(dag_json, {"dataset": job.dataset, "fold": job.fold, **result.to_json()})
    if dag_png is not None:
        plot_dag(result.dag, dag_png, title=f"{job.dataset} fold {job.fold}")


def build_generator(name: str, settings: Mapping, dataset: str, dag: Path | None = None) -> Generator:
    """Generator ``name`` with its config options and what its module's ``NEEDS`` asks for.

    ``settings`` is the fit_generator rule's: ``options`` (the config's ``synthetic.<name>``),
    and as the generator needs them ``weights`` (the backbone's directory) and ``quality``
    (scm.quality); ``dag`` is the fold's discovered DAG (``dag.pkl``), for a generator that needs it.
    """
    from causalmixft.generators.registry import make_generator, needs

    extra = {}
    for need in needs(name):
        if need == "dag":
            if dag is None:
                raise StageError("fit", dataset, f"{name} needs the discovered DAG (dag.pkl)")
            extra["dag"] = load_checked_pickle(dag, "fit", dataset)
        elif need == "backbone":
            weights = settings.get("weights")
            extra["weights"] = None if weights is None else os.fspath(weights)
        elif need == "scm_quality":
            extra["quality"] = settings.get("quality") or "fast"
    try:
        return make_generator(name, dataset=dataset, **dict(settings.get("options") or {}), **extra)
    except (TypeError, ValueError) as exc:
        raise StageError("fit", dataset, f"cannot build generator {name}: {exc}") from exc


def run_fit_generator(
    name: str, job: Job, split: SplitFiles, fitted: Path, report_path: Path, settings: Mapping, dag: Path | None = None
) -> dict:
    """Fit generator ``name`` on the train rows; write the pickled generator and ``report.json``."""
    rows = load_split(split, "fit", job.dataset)
    generator = build_generator(name, settings, job.dataset, dag)
    start, cpu_start = time.perf_counter(), time.process_time()
    generator.fit(rows.train, rows.schema, job.stage_seed("fit", name))
    fit_time, fit_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    log.info("%s fitted on %s fold %s (%d rows) in %.2f s", name, job.dataset, job.fold, len(rows.train), fit_time)
    write_pickle(fitted, generator)
    report = {
        "generator": name,
        "dataset": job.dataset,
        "fold": job.fold,
        "train_rows": len(rows.train),
        "fit_time_s": round(fit_time, 3),
        "fit_cpu_s": round(fit_cpu, 3),
        "peak_rss_mib": peak_rss_mib(),
        "report": generator.report(),
    }
    write_json(report_path, report)
    return report


def load_fitted_generator(path: Path, dataset: str, name: str) -> Generator:
    """The generator ``name`` pickled at ``path`` by fit_generator (another generator is refused)."""
    generator = load_checked_pickle(path, "sample", dataset)
    found = generator.name if isinstance(generator, Generator) else type(generator).__name__
    if found != name:
        raise StageError("sample", dataset, f"{os.fspath(path)} holds {found!r}, not a fitted {name} generator")
    return generator


def run_sample(
    job: Job,
    split: SplitFiles,
    generator: Generator,
    target: SampleTarget,
    sampling: SamplingSettings,
    fit_report: Path | None = None,
) -> dict:
    """Write ``target``: the first ``target.size`` rows of the fitted ``generator``'s draw and its fidelity report.

    With ``fit_report`` (a fit_generator job's ``report.json``) the fidelity report also holds the
    fit's seconds (``fit_time_s``) and the draw's seconds and memory: the generators' cost
    comparison (CausalMixFT's DAG discovery is its own job, in the workflow's benchmarks).
    """
    from causalmixft.generators.sampling import sample_size

    rows = load_split(split, "sample", job.dataset)
    if fit_report is None:
        return sample_size(generator, rows, job, target, sampling)
    extra = {"fit_time_s": read_json(fit_report).get("fit_time_s")}
    return sample_size(generator, rows, job, target, sampling, extra, timed=True)
