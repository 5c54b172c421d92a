"""Snakemake script of rule aggregate: pass inputs and params to the package, log what was written."""

from causalmixft.experiment.report import aggregate_results
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    tables = aggregate_results(
        expected=smk.params.expected,
        metrics_files=smk.input.metrics,
        methods_with_real=smk.params.methods_with_real,
        size_dependent=smk.params.size_dependent,
        outputs=dict(smk.output.items()),
        dataset_groups=smk.params.dataset_groups,
        fidelity_files=smk.input.fidelity,
        benchmarks_root=smk.params.benchmarks_root,
        benchmark_exclude=smk.params.benchmark_exclude,
        config=smk.params.config,
        failed=getattr(smk.params, "failed", []),
        meta_root=smk.params.meta_root,
        projection=smk.params.projection,
        split_metas=smk.input.split_metas,
    )
    print(f"aggregated {len(smk.input.metrics)} runs; {len(tables['missing'])} expected files missing")
