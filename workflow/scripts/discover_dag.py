"""Snakemake script of rule discover_dag: train rows -> dag.pkl (+ .sha256), dag.json, dag.png."""

from causalmixft.generators.job import Job, SplitFiles
from causalmixft.generators.steps import run_discover
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    run_discover(
        Job(smk.wildcards.dataset, int(smk.wildcards.fold), int(smk.params.seed)),
        SplitFiles(train=smk.input.train, meta=smk.input.meta),
        dag_pkl=smk.output.dag,
        dag_json=smk.output.json,
        dag_png=smk.output.png,
        discovery=smk.params.discovery,
    )
