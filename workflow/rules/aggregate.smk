# The aggregate stage (docs/metrics.md): every run's metrics.json and the synthetic samples'
# fidelity reports -> results/tables/*.csv, results/plots/*.png, results/report/summary.md.
# Needs common.smk (DATASETS, FOLDS, BACKBONE, configured_methods, script_code,
# stage_targets) included first; which files to read is decided in causalmixft.analysis.collect,
# which files to write (and their place and caption in the HTML report) in causalmixft.analysis.outputs.


from causalmixft.analysis import collect
from causalmixft.analysis import outputs as aggregate_outputs

# [method, dataset, fold, budget, size] of every run the config asks for (causalmixft.grid).
AGGREGATE_GRID = [list(run.key()) for run in WF.runs()]
# Runs and fidelity reports that a recorded generator failure rules out (a fit_generator or
# sample_generator job failed with a StageError: WorkflowConfig.generator_failures). They are not
# inputs, so the aggregate runs without them, and missing.csv lists them with the error.
AGGREGATE_FAILURES = WF.generator_failures()
AGGREGATE_FAILED = collect.failure_rows(WF.grid, AGGREGATE_FAILURES, BACKBONE)
# Lambdas, not defs: Snakemake's lint wants functions in common.smk, and these are one-liners.
run_metrics_files = lambda: collect.without_failed(WF.metrics_files(), AGGREGATE_FAILED)
aggregate_targets = lambda: list(rules.aggregate.output)
stage_targets("aggregate", aggregate_targets)
# The report's captions, written from the outputs table (snakemake's report() reads a caption file).
AGGREGATE_CAPTIONS = aggregate_outputs.write_captions(
    Path(".snakemake", "captions").resolve()
)
# A failed aggregate (a damaged run found, a bug) keeps the last good tables, plots and summary:
# Snakemake leaves update() outputs in place and restores them when the job fails. Per-run and
# per-dataset detail (no subcategory) is too large for the HTML report and kept as files only.
in_report = lambda output: report(
    f"results/{output.path}",
    caption=str(AGGREGATE_CAPTIONS[output.name]),
    category=aggregate_outputs.CATEGORY,
    subcategory=output.subcategory,
)
kept = lambda output: update(
    in_report(output) if output.subcategory else f"results/{output.path}"
)


localrules:
    aggregate,


rule aggregate:
    input:
        metrics=run_metrics_files(),
        # The runs' other files: a truncated model.safetensors (read by no job) is newer than the
        # report, so the aggregate runs and finds it (experiment/run_files.py).
        run_files=[
            str(Path(path).with_name(name))
            for path in run_metrics_files()
            for name in WF.run_file_names()[:-1]  # all but metrics.json
        ],
        fidelity=collect.without_failed(WF.fidelity_files(), AGGREGATE_FAILED),
        failures=sorted({marker["path"] for marker in AGGREGATE_FAILURES}),
        # test class counts per (dataset, fold), for the chance test (fitted.chance_table)
        split_metas=WF.split_metas(),
        modules=script_code("aggregate.py"),
    output:
        # Every table, figure and the summary (causalmixft.analysis.outputs.OUTPUTS), by name.
        **{output.name: kept(output) for output in aggregate_outputs.OUTPUTS},
        # Written last, not kept: after a failed aggregate it is missing, so the next run redoes
        # the aggregate instead of taking the restored outputs as current.
        manifest="results/report/manifest.json",
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../../envs/aggregate.yaml"
    params:
        expected=AGGREGATE_GRID,
        failed=AGGREGATE_FAILED,
        methods_with_real=sorted(m.name for m in configured_methods() if m.uses_real),
        size_dependent=sorted(m.name for m in configured_methods() if m.size_dependent),
        # Mixed source kinds (e.g. openml and tabmwp) are also reported per kind.
        dataset_groups=collect.source_kind_groups(config["datasets"]),
        # Benchmarks are read at run time, not declared inputs: the cost table reports what
        # has run so far. The rule's own benchmark would be the previous run's, so it is left out.
        benchmarks_root="results/benchmarks",
        benchmark_exclude=["results/benchmarks/aggregate.tsv"],
        # Only this config's jobs count: what earlier configs left in the folder is not its cost.
        benchmark_files=WF.benchmark_files(),
        keep_weights=WF.keep_weights,
        config=config,
    script:
        "../scripts/aggregate.py"
