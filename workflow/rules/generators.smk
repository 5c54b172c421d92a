# Every synthetic-data generator listed in synthetic.generators (docs/baselines.md, docs/causal.md):
# causalmixft (generators/causalmixft.py) and one module of causalmixft.baselines each.
# train rows (+ dag.pkl, backbone weights, as the generator's NEEDS say) -> fit_generator ->
# sample_generator (one job per size, nested draws) + fidelity. A StageError (the generator
# cannot fit these rows) fails the job and leaves a marker under results/failed/ that the
# aggregate stage reports (causalmixft.failures).
# Needs common.smk (WF, generator_* functions, stage_targets) included first.

GENERATOR_FIT = layout.GENERATOR_FIT
SAMPLE = layout.SAMPLE


stage_targets("generators", WF.sample_targets)
# Each fit's report.json (the fit's costs; causalmixft's SCM report) as a target: one deleted by
# hand is rebuilt by a plain rerun, as the DAG's reports are (causal.smk).
stage_targets(
    "generator_reports",
    lambda: sorted(
        {
            f"{layout.fill(GENERATOR_FIT, generator=s.generator, dataset=s.dataset, fold=s.fold, budget=s.budget)}/report.json"
            for s in WF.grid.samples(WF.generators)
        }
    ),
)


rule fit_generator:
    input:
        unpack(generator_fit_inputs),
    output:
        fitted=f"{GENERATOR_FIT}/generator.pkl",
        checksum=f"{GENERATOR_FIT}/generator.pkl.sha256",
        report=f"{GENERATOR_FIT}/report.json",
    log:
        layout.job_file(layout.LOGS, "fit_generator", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "fit_generator", ".tsv")
    wildcard_constraints:
        generator=GENERATOR_PATTERN,
    conda:
        "../../envs/baselines.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        settings=fit_generator_params,
        marker=fit_failure_marker,
    script:
        "../scripts/fit_generator.py"


rule sample_generator:
    input:
        unpack(generator_sample_inputs),
    output:
        synth=f"{SAMPLE}.parquet",
        fidelity=f"{SAMPLE}.fidelity.json",
    log:
        layout.job_file(layout.LOGS, "sample_generator", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "sample_generator", ".tsv")
    wildcard_constraints:
        generator=GENERATOR_PATTERN,
    conda:
        "../../envs/baselines.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        settings=WF.generator_sample_settings(),
        marker=sample_failure_marker,
    script:
        "../scripts/sample_generator.py"
