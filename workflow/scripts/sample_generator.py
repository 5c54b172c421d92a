"""Snakemake script of rule sample_generator: generator.pkl -> n{size}.parquet + n{size}.fidelity.json.

A StageError (e.g. too few valid rows) fails the job and leaves the marker the rule names
(params.marker, results/failed/sample_generator/...; causalmixft.failures).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", str(snakemake.threads))  # noqa: F821 (injected by Snakemake)

from causalmixft.failures import recorded_failure  # noqa: E402
from causalmixft.generators.job import Job, SplitFiles  # noqa: E402
from causalmixft.generators.sampling import SampleTarget, SamplingSettings  # noqa: E402
from causalmixft.generators.steps import load_fitted_generator, run_sample  # noqa: E402
from causalmixft.logs import script_logging  # noqa: E402

smk = snakemake  # noqa: F821
generator, dataset = smk.wildcards.generator, smk.wildcards.dataset
fold, budget, size = int(smk.wildcards.fold), int(smk.wildcards.budget), int(smk.wildcards.size)
settings = dict(smk.params.settings)
ident = {"rule": "sample_generator", "generator": generator, "dataset": dataset, "fold": fold, "budget": budget, "size": size}
with script_logging(smk.log[0]), recorded_failure(smk.params.marker, list(smk.input), settings, **ident):
    run_sample(
        Job(dataset, fold, int(settings["seed"])),
        SplitFiles(train=smk.input.train, meta=smk.input.meta, val=smk.input.val),
        load_fitted_generator(smk.input.fitted, dataset, generator),
        target=SampleTarget(size, smk.output.synth, smk.output.fidelity),
        sampling=SamplingSettings.from_config(settings["sampling"]),
        fit_report=smk.input.report,
    )
