# The causal stage of the CausalMixFT generator (docs/causal.md):
# train rows -> discover_dag -> fit_scm -> sample_synthetic (one job per size, nested draws) + fidelity.
# Needs common.smk (WF, script_code, stage_targets) included first.

CAUSAL = layout.CAUSAL
CAUSAL_SAMPLE = layout.fill(layout.SAMPLE, generator="causalmixft")
SPLIT = layout.SPLIT
PREPARED = layout.PREPARED


stage_targets("causal", WF.causal_targets)
# The reports no rule reads (dag.json, dag.png, scm_report.json) of every cell whose DAG or SCM is
# used: as targets, one deleted by hand is rebuilt by a plain rerun.
stage_targets(
    "causal_reports",
    lambda: sorted(
        {
            f"{layout.fill(CAUSAL, dataset=s.dataset, fold=s.fold, budget=s.budget)}/{name}"
            for generator, names in [
                (registry.CAUSALMIXFT, ("dag.json", "dag.png", "scm_report.json")),
                *[
                    (g, ("dag.json", "dag.png"))
                    for g in WF.baseline_generators
                    if "dag" in registry.needs(g)
                ],
            ]
            for s in WF.grid.samples([generator])
            for name in names
        }
    ),
)


rule discover_dag:
    input:
        train=f"{SPLIT}/train.parquet",
        meta=f"{PREPARED}.meta.json",
        modules=script_code("discover_dag.py"),
    output:
        dag=f"{CAUSAL}/dag.pkl",
        checksum=f"{CAUSAL}/dag.pkl.sha256",
        json=f"{CAUSAL}/dag.json",
        png=f"{CAUSAL}/dag.png",
    log:
        layout.job_file(layout.LOGS, "discover_dag", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "discover_dag", ".tsv")
    conda:
        "../../envs/causal.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        discovery=dict(sorted(config["discovery"].items())),
        seed=WF.seed,
    script:
        "../scripts/discover_dag.py"


rule fit_scm:
    input:
        train=f"{SPLIT}/train.parquet",
        meta=f"{PREPARED}.meta.json",
        dag=f"{CAUSAL}/dag.pkl",
        checksum=f"{CAUSAL}/dag.pkl.sha256",
        modules=script_code("fit_scm.py"),
    output:
        scm=f"{CAUSAL}/scm.pkl",
        checksum=f"{CAUSAL}/scm.pkl.sha256",
        report=f"{CAUSAL}/scm_report.json",
    log:
        layout.job_file(layout.LOGS, "fit_scm", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "fit_scm", ".tsv")
    conda:
        "../../envs/causal.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        quality=config["scm"].get("quality", "fast"),
        seed=WF.seed,
    script:
        "../scripts/fit_scm.py"


if WF.causal_targets():

    # One job per size: size n is the first n rows of a draw that does not depend on the other
    # sizes (causal/sample.py), so adding a size runs only the new size's jobs.
    rule sample_synthetic:
        input:
            scm=f"{CAUSAL}/scm.pkl",
            checksum=f"{CAUSAL}/scm.pkl.sha256",
            train=f"{SPLIT}/train.parquet",
            val=f"{SPLIT}/val.parquet",
            meta=f"{PREPARED}.meta.json",
            modules=script_code("sample_synthetic.py"),
        output:
            synth=f"{CAUSAL_SAMPLE}.parquet",
            fidelity=f"{CAUSAL_SAMPLE}.fidelity.json",
        log:
            layout.job_file(layout.LOGS, "sample_synthetic", ".log"),
        benchmark:
            layout.job_file(layout.BENCHMARKS, "sample_synthetic", ".tsv")
        conda:
            "../../envs/causal.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            synthetic=WF.sampling,
            seed=WF.seed,
        script:
            "../scripts/sample_synthetic.py"
