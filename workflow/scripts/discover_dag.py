"""Snakemake script of rule discover_dag: train rows -> dag.pkl (+ .sha256), dag.json, dag.png."""

from causalmixft.causal.stages import run_discover, script_logging

with script_logging(snakemake.log[0]):  # noqa: F821 (snakemake is injected by Snakemake)
    run_discover(
        train=snakemake.input.train,  # noqa: F821
        meta=snakemake.input.meta,  # noqa: F821
        dag_pkl=snakemake.output.dag,  # noqa: F821
        dag_json=snakemake.output.json,  # noqa: F821
        dag_png=snakemake.output.png,  # noqa: F821
        discovery=snakemake.params.discovery,  # noqa: F821
        dataset=snakemake.wildcards.dataset,  # noqa: F821
        fold=int(snakemake.wildcards.fold),  # noqa: F821
        seed=int(snakemake.params.seed),  # noqa: F821
    )
