# Pretraining of the built-in backbone, only for a config whose `backbone:` has a `pretrain:` block
# (otherwise fine-tuning reads the shipped weights and this rule is never needed).
# Resumable: the training state lives in results/models/{backbone}/pretrain/, which is not an
# output, so a killed or timed-out job continues from its last checkpoint when rerun.

MODEL = layout.MODEL


rule pretrain_backbone:
    input:
        modules=script_code("pretrain_backbone.py"),
    output:
        weights=f"{MODEL}/model.safetensors",
        config=f"{MODEL}/config.json",
        summary=f"{MODEL}/summary.json",
    log:
        layout.job_file(layout.LOGS, "pretrain_backbone", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "pretrain_backbone", ".tsv")
    conda:
        "../../envs/model.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        options=dict(sorted((PRETRAIN or {}).items())),
        workdir=lambda wildcards: layout.fill(
            f"{MODEL}/pretrain", backbone=wildcards.backbone
        ),
    script:
        "../scripts/pretrain_backbone.py"
