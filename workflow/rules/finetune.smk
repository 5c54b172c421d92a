RUN = layout.RUN
# A run's files: the weights only where finetune.keep_weights (a study keeps none).
RUN_FILE_NAMES = WF.run_file_names()


# Every output of a run, not only metrics.json: one deleted by hand is then missing to `rule all`
# and a plain rerun restores it (otherwise nothing asks for it).
stage_targets(
    "finetune",
    lambda: [f"{run}/{name}" for run in WF.run_dirs() for name in RUN_FILE_NAMES],
)


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        # model (the weights, if kept), config, metrics: named by their file's stem
        **{name.split(".")[0]: f"{RUN}/{name}" for name in RUN_FILE_NAMES},
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
        keep_weights=WF.keep_weights,
    script:
        "../scripts/finetune.py"
