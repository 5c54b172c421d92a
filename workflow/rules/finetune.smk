stage_targets("finetune", lambda: [f"{run}/metrics.json" for run in run_dirs()])


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        weights="results/runs/{backbone}/{method}/{dataset}/fold{fold}/n{size}/model.safetensors",
        config="results/runs/{backbone}/{method}/{dataset}/fold{fold}/n{size}/config.json",
        metrics="results/runs/{backbone}/{method}/{dataset}/fold{fold}/n{size}/metrics.json",
    log:
        "results/logs/finetune/{backbone}/{method}/{dataset}/fold{fold}/n{size}.log",
    benchmark:
        "results/benchmarks/finetune/{backbone}/{method}/{dataset}/fold{fold}/n{size}.tsv"
    conda:
        "../../envs/model.yaml"
    threads: 1
    resources:
        gpu=FINETUNE_GPUS,
        mem_mb=3000,
        runtime=60,
    params:
        finetune=finetune_params(),
        weights=BACKBONE_WEIGHTS,
        replicates=replicate_params(),
    script:
        "../scripts/finetune.py"
