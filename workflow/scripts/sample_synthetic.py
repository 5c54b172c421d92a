"""Snakemake script of rule sample_synthetic: scm.pkl -> n{size}.parquet + n{size}.fidelity.json, one size."""

from causalmixft.generators.job import Job, SplitFiles
from causalmixft.generators.sampling import SampleTarget, SamplingSettings
from causalmixft.generators.steps import load_fitted_scm, run_sample
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
job = Job(smk.wildcards.dataset, int(smk.wildcards.fold), int(smk.params.seed))
with script_logging(smk.log[0]):
    run_sample(
        job,
        SplitFiles(train=smk.input.train, meta=smk.input.meta, val=smk.input.val),
        load_fitted_scm(smk.input.scm, job.dataset),
        target=SampleTarget(int(smk.wildcards.size), smk.output.synth, smk.output.fidelity),
        sampling=SamplingSettings.from_config(smk.params.synthetic),
    )
