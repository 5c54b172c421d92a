"""Snakemake script of rule fit_scm: train rows + dag.pkl -> scm.pkl (+ .sha256), scm_report.json."""

from causalmixft.generators.job import Job, SplitFiles
from causalmixft.generators.steps import run_fit
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    run_fit(
        Job(smk.wildcards.dataset, int(smk.wildcards.fold), int(smk.params.seed)),
        SplitFiles(train=smk.input.train, meta=smk.input.meta),
        dag_pkl=smk.input.dag,
        scm_pkl=smk.output.scm,
        report_json=smk.output.report,
        quality=smk.params.quality,
    )
