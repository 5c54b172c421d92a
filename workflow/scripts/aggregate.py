"""Snakemake script of rule aggregate: pass inputs and params to the package, log what was written."""

from causalmixft.analysis.report import AggregateJob, aggregate_results
from causalmixft.experiment.run_files import check_runs
from causalmixft.io import write_manifest
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
outputs = {name: path for name, path in smk.output.items() if name != "manifest"}
with script_logging(smk.log[0]):
    check_runs(smk.input.metrics, smk.params.keep_weights)  # a damaged run is removed whole and fails the job, naming it
    job = AggregateJob(
        expected=smk.params.expected,
        metrics_files=smk.input.metrics,
        methods_with_real=smk.params.methods_with_real,
        size_dependent=smk.params.size_dependent,
        outputs=outputs,
        config=smk.params.config,
        dataset_groups=smk.params.dataset_groups,
        failed=getattr(smk.params, "failed", []),
        fidelity_files=smk.input.fidelity,
        split_metas=smk.input.split_metas,
        benchmarks_root=smk.params.benchmarks_root,
        benchmark_exclude=smk.params.benchmark_exclude,
        benchmark_files=smk.params.benchmark_files,
    )
    tables = aggregate_results(job)
    print(f"aggregated {len(smk.input.metrics)} runs; {len(tables['missing'])} expected files missing")
    # Last: the mark of a whole aggregate (rule aggregate keeps the other outputs of the previous
    # one when this job fails; without a manifest the next run redoes it).
    write_manifest(smk.output.manifest, outputs)
