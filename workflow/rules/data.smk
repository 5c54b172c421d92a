stage_targets(
    "data",
    lambda: expand(
        "results/splits/{dataset}/fold{fold}/{file}",
        dataset=DATASETS,
        fold=FOLDS,
        file=["train.parquet", "val.parquet", "test.parquet", "meta.json"],
    ),
)


rule prepare_dataset:
    input:
        source=source_files,
        modules=script_code("prepare_dataset.py"),
    output:
        table="results/data/{dataset}.parquet",
        meta="results/data/{dataset}.meta.json",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
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
        table="results/data/{dataset}.parquet",
        meta="results/data/{dataset}.meta.json",
        modules=script_code("split.py"),
    output:
        train="results/splits/{dataset}/fold{fold}/train.parquet",
        val="results/splits/{dataset}/fold{fold}/val.parquet",
        test="results/splits/{dataset}/fold{fold}/test.parquet",
        meta="results/splits/{dataset}/fold{fold}/meta.json",
    log:
        "results/logs/split/{dataset}/fold{fold}.log",
    benchmark:
        "results/benchmarks/split/{dataset}/fold{fold}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        protocol=protocol_params(),
    script:
        "../scripts/split.py"
