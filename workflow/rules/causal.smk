# The causal stage of the CausalMixFT generator (docs/causal.md):
# train rows -> discover_dag -> fit_scm -> sample_synthetic (one job per size, nested draws) + fidelity.
# Needs common.smk (DATASETS, FOLDS, script_code, stage_targets) included first.

CAUSAL = "results/causal/{dataset}/fold{fold}"
CAUSAL_SYNTH = "results/synth/causalmixft/{dataset}/fold{fold}"
# Size 0 means "real rows only": no file. Every other size is a prefix of one draw.
CAUSAL_SIZES = sorted({int(n) for n in config["synthetic"]["sizes"] if int(n) > 0})


CAUSAL_SEED = int(config["protocol"].get("seed", 0))
CAUSAL_SAMPLING = {
    "clip_to_observed": bool(config["synthetic"].get("clip_to_observed", True)),
    "fidelity_rows": int(config["synthetic"].get("fidelity_rows", 1024)),
    "match_label_distribution": bool(
        config["synthetic"].get("match_label_distribution", True)
    ),
}
# causal_targets(): the synthetic samples and their fidelity reports for every dataset, fold and
# size > 0 (none when the config's synthetic.generators leaves causalmixft out). A lambda, not a
# def: snakemake --lint wants functions in common.smk, which this stage does not own.
causal_targets = lambda: (
    expand(
        f"{CAUSAL_SYNTH}/n{{size}}.{{ext}}",
        dataset=DATASETS,
        fold=FOLDS,
        size=CAUSAL_SIZES,
        ext=["parquet", "fidelity.json"],
    )
    if "causalmixft" in config["synthetic"].get("generators", ["causalmixft"])
    else []
)


stage_targets("causal", causal_targets)


rule discover_dag:
    input:
        train="results/splits/{dataset}/fold{fold}/train.parquet",
        meta="results/data/{dataset}.meta.json",
        modules=script_code("discover_dag.py"),
    output:
        dag=f"{CAUSAL}/dag.pkl",
        checksum=f"{CAUSAL}/dag.pkl.sha256",
        json=f"{CAUSAL}/dag.json",
        png=f"{CAUSAL}/dag.png",
    log:
        "results/logs/discover_dag/{dataset}/fold{fold}.log",
    benchmark:
        "results/benchmarks/discover_dag/{dataset}/fold{fold}.tsv"
    conda:
        "../../envs/causal.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        discovery=dict(sorted(config["discovery"].items())),
        seed=CAUSAL_SEED,
    script:
        "../scripts/discover_dag.py"


rule fit_scm:
    input:
        train="results/splits/{dataset}/fold{fold}/train.parquet",
        meta="results/data/{dataset}.meta.json",
        dag=f"{CAUSAL}/dag.pkl",
        checksum=f"{CAUSAL}/dag.pkl.sha256",
        modules=script_code("fit_scm.py"),
    output:
        scm=f"{CAUSAL}/scm.pkl",
        checksum=f"{CAUSAL}/scm.pkl.sha256",
        report=f"{CAUSAL}/scm_report.json",
    log:
        "results/logs/fit_scm/{dataset}/fold{fold}.log",
    benchmark:
        "results/benchmarks/fit_scm/{dataset}/fold{fold}.tsv"
    conda:
        "../../envs/causal.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        quality=config["scm"].get("quality", "fast"),
        seed=CAUSAL_SEED,
    script:
        "../scripts/fit_scm.py"


if CAUSAL_SIZES:

    # One job per size: size n is the first n rows of a draw that does not depend on the other
    # sizes (causal/sample.py), so adding a size runs only the new size's jobs.
    rule sample_synthetic:
        input:
            scm=f"{CAUSAL}/scm.pkl",
            checksum=f"{CAUSAL}/scm.pkl.sha256",
            train="results/splits/{dataset}/fold{fold}/train.parquet",
            val="results/splits/{dataset}/fold{fold}/val.parquet",
            meta="results/data/{dataset}.meta.json",
            modules=script_code("sample_synthetic.py"),
        output:
            synth=f"{CAUSAL_SYNTH}/n{{size}}.parquet",
            fidelity=f"{CAUSAL_SYNTH}/n{{size}}.fidelity.json",
        log:
            "results/logs/sample_synthetic/causalmixft/{dataset}/fold{fold}/n{size}.log",
        benchmark:
            "results/benchmarks/sample_synthetic/causalmixft/{dataset}/fold{fold}/n{size}.tsv"
        conda:
            "../../envs/causal.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            synthetic=CAUSAL_SAMPLING,
            seed=CAUSAL_SEED,
        script:
            "../scripts/sample_synthetic.py"
