"""Snakemake script of rule sample_generator: generator.pkl -> n{size}.parquet + n{size}.fidelity.json.

A StageError (e.g. too few valid rows) fails the job and leaves
results/failed/sample_generator/{generator}/{dataset}/fold{fold}/n{size}.json (causalmixft.failures).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", str(snakemake.threads))  # noqa: F821 (injected by Snakemake)

from causalmixft.baselines.stage import run_sample_generator  # noqa: E402
from causalmixft.causal.stages import script_logging  # noqa: E402
from causalmixft.failures import marker_path, recorded_failure  # noqa: E402

smk = snakemake  # noqa: F821
generator, dataset = smk.wildcards.generator, smk.wildcards.dataset
fold, size = int(smk.wildcards.fold), int(smk.wildcards.size)
settings = dict(smk.params.settings)
marker = marker_path("sample_generator", generator, dataset, f"fold{fold}", f"n{size}")
ident = {"rule": "sample_generator", "generator": generator, "dataset": dataset, "fold": fold, "size": size}
with script_logging(smk.log[0]), recorded_failure(marker, list(smk.input), settings, **ident):
    run_sample_generator(
        name=generator,
        fitted=smk.input.fitted,
        fit_report=smk.input.report,
        train=smk.input.train,
        val=smk.input.val,
        meta=smk.input.meta,
        size=size,
        parquet=smk.output.synth,
        fidelity=smk.output.fidelity,
        synthetic=settings["sampling"],
        dataset=dataset,
        fold=fold,
        seed=int(settings["seed"]),
    )
