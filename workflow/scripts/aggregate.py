"""Snakemake script of rule aggregate: pass inputs and params to the package, log what was written."""

import contextlib

from causalmixft.experiment.report import aggregate_results

with open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
    tables = aggregate_results(
        expected=snakemake.params.expected,
        metrics_files=snakemake.input.metrics,
        methods_with_real=snakemake.params.methods_with_real,
        size_dependent=snakemake.params.size_dependent,
        outputs=dict(snakemake.output.items()),
        dataset_groups=snakemake.params.dataset_groups,
        fidelity_files=snakemake.input.fidelity,
        benchmarks_root=snakemake.params.benchmarks_root,
        benchmark_exclude=snakemake.params.benchmark_exclude,
        config=snakemake.params.config,
        failed=getattr(snakemake.params, "failed", []),
        meta_root=snakemake.params.meta_root,
        projection=snakemake.params.projection,
    )
    print(f"aggregated {len(snakemake.input.metrics)} runs; {len(tables['missing'])} expected files missing")
