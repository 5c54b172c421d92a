"""Snakemake script of rule fit_scm: train rows + dag.pkl -> scm.pkl (+ .sha256), scm_report.json."""

from causalmixft.causal.stages import run_fit, script_logging

with script_logging(snakemake.log[0]):  # noqa: F821 (snakemake is injected by Snakemake)
    run_fit(
        train=snakemake.input.train,  # noqa: F821
        meta=snakemake.input.meta,  # noqa: F821
        dag_pkl=snakemake.input.dag,  # noqa: F821
        scm_pkl=snakemake.output.scm,  # noqa: F821
        report_json=snakemake.output.report,  # noqa: F821
        quality=snakemake.params.quality,  # noqa: F821
        dataset=snakemake.wildcards.dataset,  # noqa: F821
        fold=int(snakemake.wildcards.fold),  # noqa: F821
        seed=int(snakemake.params.seed),  # noqa: F821
    )
