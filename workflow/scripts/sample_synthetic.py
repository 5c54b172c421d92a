"""Snakemake script of rule sample_synthetic: scm.pkl -> n{size}.parquet + n{size}.fidelity.json, all sizes."""

from causalmixft.causal.stages import run_sample, script_logging

sizes = [int(n) for n in snakemake.params.sizes]  # noqa: F821 (snakemake is injected by Snakemake)
with script_logging(snakemake.log[0]):  # noqa: F821
    run_sample(
        fitted=snakemake.input.scm,  # noqa: F821
        train=snakemake.input.train,  # noqa: F821
        val=snakemake.input.val,  # noqa: F821
        meta=snakemake.input.meta,  # noqa: F821
        # expand() keeps the order of params.sizes, so the i-th output files belong to the i-th size
        outputs=dict(zip(sizes, zip(snakemake.output.synth, snakemake.output.fidelity))),  # noqa: F821
        synthetic=snakemake.params.synthetic,  # noqa: F821
        dataset=snakemake.wildcards.dataset,  # noqa: F821
        fold=int(snakemake.wildcards.fold),  # noqa: F821
        seed=int(snakemake.params.seed),  # noqa: F821
    )
