# The aggregate stage (docs/metrics.md): every run's metrics.json and the synthetic samples'
# fidelity reports -> results/tables/*.csv, results/plots/*.png, results/report/summary.md.
# Needs common.smk (DATASETS, FOLDS, BACKBONE, configured_methods, script_code,
# stage_targets) included first; which files to read is decided in causalmixft.analysis.collect.


from causalmixft.analysis import collect, cost

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
# The paper-scale grid the cost table projects to (absent from a copy without config/: no projection).
AGGREGATE_PROJECTION = cost.projection_spec(
    Path(workflow.basedir, "config", "tabarena.yaml"),
    Path(workflow.basedir, "resources", "tabarena", "tabarena_v0.1_classification.csv"),
)

stage_targets("aggregate", aggregate_targets)
# A failed aggregate (a damaged run found, a bug) keeps the last good tables, plots and summary:
# Snakemake leaves update() outputs in place and restores them when the job fails.
kept = lambda path, **caption: update(report(path, **caption) if caption else path)


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
            for name in ("model.safetensors", "config.json")
        ],
        fidelity=collect.without_failed(WF.fidelity_files(), AGGREGATE_FAILED),
        failures=sorted({marker["path"] for marker in AGGREGATE_FAILURES}),
        # test class counts per (dataset, fold), for the chance test (answer.chance_table)
        split_metas=WF.split_metas(),
        modules=script_code("aggregate.py"),
    output:
        summary=kept(
            "results/report/summary.md",
            caption="../report/summary.rst",
            category="Results",
            subcategory="Summary",
        ),
        plot_scaling=kept(
            "results/plots/scaling.png",
            caption="../report/scaling.rst",
            category="Results",
            subcategory="Plots",
        ),
        plot_scaling_improvement=kept(
            "results/plots/scaling_improvement.png",
            caption="../report/scaling_improvement.rst",
            category="Results",
            subcategory="Plots",
        ),
        plot_scaling_per_dataset_val_accuracy=kept(
            "results/plots/scaling_per_dataset_val_accuracy.png",
            caption="../report/scaling_per_dataset.rst",
            category="Results",
            subcategory="Plots",
        ),
        plot_scaling_per_dataset_test_accuracy=kept(
            "results/plots/scaling_per_dataset_test_accuracy.png",
            caption="../report/scaling_per_dataset.rst",
            category="Results",
            subcategory="Plots",
        ),
        plot_scaling_per_dataset_test_roc_auc=kept(
            "results/plots/scaling_per_dataset_test_roc_auc.png",
            caption="../report/scaling_per_dataset.rst",
            category="Results",
            subcategory="Plots",
        ),
        plot_critical_difference=kept(
            "results/plots/critical_difference.png",
            caption="../report/critical_difference.rst",
            category="Results",
            subcategory="Plots",
        ),
        plot_val_vs_test=kept(
            "results/plots/val_vs_test.png",
            caption="../report/val_vs_test.rst",
            category="Results",
            subcategory="Plots",
        ),
        improvement=kept(
            "results/tables/improvement.csv",
            caption="../report/improvement.rst",
            category="Results",
            subcategory="Tables",
        ),
        ranks=kept(
            "results/tables/ranks.csv",
            caption="../report/ranks.rst",
            category="Results",
            subcategory="Tables",
        ),
        rank_tests=kept(
            "results/tables/rank_tests.csv",
            caption="../report/rank_tests.rst",
            category="Results",
            subcategory="Tables",
        ),
        paired_tests=kept(
            "results/tables/paired_tests.csv",
            caption="../report/paired_tests.rst",
            category="Results",
            subcategory="Tables",
        ),
        replicate_spread=kept(
            "results/tables/replicate_spread.csv",
            caption="../report/replicate_spread.rst",
            category="Results",
            subcategory="Tables",
        ),
        scaling=kept(
            "results/tables/scaling.csv",
            caption="../report/scaling_table.rst",
            category="Results",
            subcategory="Tables",
        ),
        trend=kept(
            "results/tables/trend.csv",
            caption="../report/trend.rst",
            category="Results",
            subcategory="Tables",
        ),
        best_size=kept(
            "results/tables/best_size.csv",
            caption="../report/best_size.rst",
            category="Results",
            subcategory="Tables",
        ),
        gap_regret=kept(
            "results/tables/gap_regret.csv",
            caption="../report/gap_regret.rst",
            category="Results",
            subcategory="Tables",
        ),
        fidelity=kept(
            "results/tables/fidelity.csv",
            caption="../report/fidelity.rst",
            category="Results",
            subcategory="Tables",
        ),
        cost=kept(
            "results/tables/cost.csv",
            caption="../report/cost.rst",
            category="Results",
            subcategory="Tables",
        ),
        cost_scaling=kept(
            "results/tables/cost_scaling.csv",
            caption="../report/cost_scaling.rst",
            category="Results",
            subcategory="Tables",
        ),
        cost_projection=kept(
            "results/tables/cost_projection.csv",
            caption="../report/cost_projection.rst",
            category="Results",
            subcategory="Tables",
        ),
        missing=kept(
            "results/tables/missing.csv",
            caption="../report/missing.rst",
            category="Results",
            subcategory="Tables",
        ),
        # The tables and the plot of the summary's Answer section (analysis/answer.py).
        plot_effect_heatmap=kept(
            "results/plots/effect_heatmap.png",
            caption="../report/effect_heatmap.rst",
            category="Results",
            subcategory="Answer",
        ),
        plot_scaling_fit=kept(
            "results/plots/scaling_fit.png",
            caption="../report/scaling_fit.rst",
            category="Results",
            subcategory="Answer",
        ),
        scaling_fit=kept(
            "results/tables/scaling_fit.csv",
            caption="../report/scaling_fit_table.rst",
            category="Results",
            subcategory="Answer",
        ),
        scaling_peak=kept(
            "results/tables/scaling_peak.csv",
            caption="../report/scaling_peak.rst",
            category="Results",
            subcategory="Answer",
        ),
        size_selection=kept(
            "results/tables/size_selection.csv",
            caption="../report/size_selection.rst",
            category="Results",
            subcategory="Answer",
        ),
        val_test_by_size=kept(
            "results/tables/val_test_by_size.csv",
            caption="../report/val_test_by_size.rst",
            category="Results",
            subcategory="Answer",
        ),
        chance=kept(
            "results/tables/chance.csv",
            caption="../report/chance.rst",
            category="Results",
            subcategory="Answer",
        ),
        dag_controls=kept(
            "results/tables/dag_controls.csv",
            caption="../report/dag_controls.rst",
            category="Results",
            subcategory="Answer",
        ),
        effects=kept(
            "results/tables/effects.csv",
            caption="../report/effects.rst",
            category="Results",
            subcategory="Answer",
        ),
        size_selection_chance=kept(
            "results/tables/size_selection_chance.csv",
            caption="../report/size_selection_chance.rst",
            category="Results",
            subcategory="Answer",
        ),
        claims=kept(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Results",
            subcategory="Answer",
        ),
        # Per-run and per-dataset detail: too large for the HTML report, kept as files.
        runs_long=kept("results/tables/runs_long.csv"),
        improvement_per_dataset=kept("results/tables/improvement_per_dataset.csv"),
        gap_regret_runs=kept("results/tables/gap_regret_runs.csv"),
        size_choices=kept("results/tables/size_choices.csv"),
        scaling_per_dataset=kept("results/tables/scaling_per_dataset.csv"),
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
        # Feature counts of the measured datasets (read at run time, as the benchmarks are) and
        # the grid to project the measured cost to.
        meta_root="results/data",
        projection=AGGREGATE_PROJECTION,
        config=config,
    script:
        "../scripts/aggregate.py"
