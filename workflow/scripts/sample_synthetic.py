"""Snakemake script of rule sample_synthetic: scm.pkl -> n{size}.parquet + n{size}.fidelity.json, one size."""

from causalmixft.causal.stages import run_sample, script_logging

size = int(snakemake.wildcards.size)  # noqa: F821 (snakemake is injected by Snakemake)
with script_logging(snakemake.log[0]):  # noqa: F821
    run_sample(
        fitted=snakemake.input.scm,  # noqa: F821
        train=snakemake.input.train,  # noqa: F821
        val=snakemake.input.val,  # noqa: F821
        meta=snakemake.input.meta,  # noqa: F821
        outputs={size: (snakemake.output.synth, snakemake.output.fidelity)},  # noqa: F821
        synthetic=snakemake.params.synthetic,  # noqa: F821
        dataset=snakemake.wildcards.dataset,  # noqa: F821
        fold=int(snakemake.wildcards.fold),  # noqa: F821
        seed=int(snakemake.params.seed),  # noqa: F821
    )
