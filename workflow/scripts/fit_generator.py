"""Snakemake script of rule fit_generator: train rows (+ dag.pkl, backbone weights) -> generator.pkl, report.json.

A StageError (the generator cannot fit these rows, e.g. SMOTE on a class with one row) fails the
job with its message in the log and leaves the marker the rule names (params.marker,
results/failed/fit_generator/...) for the aggregate stage (causalmixft.failures); any other
error leaves no marker.
"""

import os

# One thread per job unless the rule asks for more: torch reads this when it is first imported.
os.environ.setdefault("OMP_NUM_THREADS", str(snakemake.threads))  # noqa: F821 (injected by Snakemake)

from causalmixft.failures import recorded_failure  # noqa: E402
from causalmixft.generators.job import Job, SplitFiles  # noqa: E402
from causalmixft.generators.steps import run_fit_generator  # noqa: E402
from causalmixft.logs import script_logging  # noqa: E402

smk = snakemake  # noqa: F821
generator, dataset, fold = smk.wildcards.generator, smk.wildcards.dataset, int(smk.wildcards.fold)
settings = dict(smk.params.settings)
budget = int(smk.wildcards.budget)
ident = {"rule": "fit_generator", "generator": generator, "dataset": dataset, "fold": fold, "budget": budget}
with script_logging(smk.log[0]), recorded_failure(smk.params.marker, list(smk.input), settings, **ident):
    run_fit_generator(
        generator,
        Job(dataset, fold, int(settings["seed"])),
        SplitFiles(train=smk.input.train, meta=smk.input.meta),
        fitted=smk.output.fitted,
        report_path=smk.output.report,
        settings=settings,
        dag=getattr(smk.input, "dag", None),
    )
