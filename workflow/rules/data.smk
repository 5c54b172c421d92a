SPLIT = layout.SPLIT
PREPARED = layout.PREPARED


stage_targets(
    "data",
    lambda: [
        f"{split}/{file}"
        for split in WF.split_dirs()
        for file in ["train.parquet", "val.parquet", "test.parquet", "meta.json"]
    ],
)


rule prepare_dataset:
    input:
        source=source_files,
        modules=script_code("prepare_dataset.py"),
    output:
        table=f"{PREPARED}.parquet",
        meta=f"{PREPARED}.meta.json",
    log:
        layout.job_file(layout.LOGS, "prepare_dataset", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "prepare_dataset", ".tsv")
    conda:
        "../../envs/data.yaml"
    params:
        spec=dataset_spec,
        cache_dir=config["cache_dir"],
        max_classes=BACKBONE_MAX_CLASSES,
    script:
        "../scripts/prepare_dataset.py"


rule split:
    input:
        table=f"{PREPARED}.parquet",
        meta=f"{PREPARED}.meta.json",
        modules=script_code("split.py"),
    output:
        train=f"{SPLIT}/train.parquet",
        val=f"{SPLIT}/val.parquet",
        test=f"{SPLIT}/test.parquet",
        meta=f"{SPLIT}/meta.json",
    log:
        layout.job_file(layout.LOGS, "split", ".log"),
    benchmark:
        layout.job_file(layout.BENCHMARKS, "split", ".tsv")
    conda:
        "../../envs/data.yaml"
    params:
        protocol=WF.protocol_params(),
    script:
        "../scripts/split.py"
