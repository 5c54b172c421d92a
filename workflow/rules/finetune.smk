RUN = layout.RUN


# Every output of a run, not only metrics.json: one deleted by hand is then missing to `rule all`
# and a plain rerun restores it (otherwise nothing asks for it).
stage_targets(
    "finetune",
    lambda: [
        f"{run}/{name}"
        for run in WF.run_dirs()
        for name in ("metrics.json", "model.safetensors", "config.json")
    ],
)


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        weights=f"{RUN}/model.safetensors",
        config=f"{RUN}/config.json",
        metrics=f"{RUN}/metrics.json",
    log:
        layout.job_file(layout.LOGS, "finetune", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "finetune", ".tsv")
    conda:
        FINETUNE_ENV
    threads: 1
    resources:
        gpu=FINETUNE_GPUS,
        mem_mb=3000,
        runtime=60,
    params:
        finetune=WF.finetune_params(),
        weights=BACKBONE_WEIGHTS,
        replicates=WF.replicate_params(),
    script:
        "../scripts/finetune.py"
