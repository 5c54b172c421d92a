# The causal stage (docs/causal.md): train rows -> discover_dag -> the fold's DAG, which the
# generators that need it (causalmixft and its controls, registry NEEDS "dag") are fitted on
# by fit_generator (generators.smk).
# Needs common.smk (WF, script_code, stage_targets) included first.

CAUSAL = layout.CAUSAL
SPLIT = layout.SPLIT
PREPARED = layout.PREPARED


# The reports no rule reads (dag.json, dag.png) of every cell whose DAG is used: as targets, one
# deleted by hand is rebuilt by a plain rerun.
stage_targets(
    "causal_reports",
    lambda: sorted(
        {
            f"{layout.fill(CAUSAL, dataset=s.dataset, fold=s.fold, budget=s.budget)}/{name}"
            for s in WF.grid.samples(
                [g for g in WF.generators if "dag" in registry.needs(g)]
            )
            for name in ("dag.json", "dag.png")
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
