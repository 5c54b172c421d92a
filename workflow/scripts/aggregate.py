"""Snakemake script of rule aggregate: pass inputs and params to the package, log what was written."""

from causalmixft.analysis.report import aggregate_results
from causalmixft.experiment.run_files import check_runs
from causalmixft.io import write_manifest
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    check_runs(smk.input.metrics)  # a damaged run is removed whole and fails the job, naming it
    tables = aggregate_results(
        expected=smk.params.expected,
        metrics_files=smk.input.metrics,
        methods_with_real=smk.params.methods_with_real,
        size_dependent=smk.params.size_dependent,
        outputs={name: path for name, path in smk.output.items() if name != "manifest"},
        dataset_groups=smk.params.dataset_groups,
        fidelity_files=smk.input.fidelity,
        benchmarks_root=smk.params.benchmarks_root,
        benchmark_exclude=smk.params.benchmark_exclude,
        benchmark_files=smk.params.benchmark_files,
        config=smk.params.config,
        failed=getattr(smk.params, "failed", []),
        meta_root=smk.params.meta_root,
        projection=smk.params.projection,
        split_metas=smk.input.split_metas,
    )
    print(f"aggregated {len(smk.input.metrics)} runs; {len(tables['missing'])} expected files missing")
    # Last: the mark of a whole aggregate (rule aggregate keeps the other outputs of the previous
    # one when this job fails; without a manifest the next run redoes it).
    write_manifest(smk.output.manifest, {name: path for name, path in smk.output.items() if name != "manifest"})
