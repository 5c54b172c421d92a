"""The one sampling step of every generator: one size per job, written with its fidelity report.

Size n is the first n rows of the generator's nested draw
(:func:`causalmixft.generators.draw.sample_synthetic`), whose seeded chunks do not depend on the
sizes asked for: every job of one (dataset, fold, generator) draws the same rows, so a larger
sample holds every smaller one and adding a size runs only the new size's job. The draw is
seeded with ``stage_seed(..., "sample", generator)`` and scored with
:func:`causalmixft.generators.fidelity.fidelity_report` (seed ``stage_seed(..., "fidelity", generator)``).
On a TabMWP probe the report also says how often the synthetic rows obey the label rule.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Mapping

from causalmixft.errors import StageError
from causalmixft.generators.draw import SamplingSettings, sample_synthetic
from causalmixft.generators.job import Job, Split, peak_rss_mib
from causalmixft.generators.protocol import Generator
from causalmixft.io import write_json, write_parquet

Path = str | os.PathLike
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleTarget:
    """One size of one generator and the two files it is written to."""

    size: int
    parquet: Path
    fidelity: Path


def sample_size(
    generator: Generator,
    split: Split,
    job: Job,
    target: SampleTarget,
    sampling: SamplingSettings,
    extra: Mapping | None = None,
    timed: bool = False,
) -> dict:
    """Draw ``target.size`` rows of ``generator``, write them and their fidelity report; the report.

    ``extra`` fields are added to the report; ``timed`` adds the draw's wall and CPU seconds and
    the process's peak memory (``sample_time_s``, ``sample_cpu_s``, ``sample_peak_rss_mib``).
    """
    from causalmixft.data.tabmwp.probes import label_rule_fidelity
    from causalmixft.generators.fidelity import fidelity_report

    if target.size <= 0:
        raise StageError("sample", job.dataset, f"a sample needs a size above 0, got {target.size}")
    start, cpu_start = time.perf_counter(), time.process_time()
    draw = sample_synthetic(
        generator,
        split.train,
        split.schema,
        [target.size],
        job.stage_seed("sample", generator.name),
        sampling,
        job.dataset,
    )
    rows = draw.prefix(target.size)
    costs = {}
    if timed:
        costs = {
            "sample_time_s": round(time.perf_counter() - start, 3),
            "sample_cpu_s": round(time.process_time() - cpu_start, 3),
            "sample_peak_rss_mib": peak_rss_mib(),
        }
    write_parquet(target.parquet, rows)
    report = fidelity_report(
        split.train,
        rows,
        split.val,
        split.schema,
        job.stage_seed("fidelity", generator.name),
        sampling.fidelity_rows,
    )
    report.update(
        generator=generator.name,
        dataset=job.dataset,
        fold=job.fold,
        size=target.size,
        sampling=draw.info,
        **dict(extra or {}),
        **costs,
    )
    report.update(label_rule_fidelity(split.meta, rows))
    write_json(target.fidelity, report)
    log.info(
        "%s %s fold %s n=%d: two-sample AUC %s (%d rows drawn)",
        generator.name,
        job.dataset,
        job.fold,
        target.size,
        report["two_sample_auc"],
        draw.info.get("drawn", 0),
    )
    return report
