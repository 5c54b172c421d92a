"""Rule finetune: one (method, dataset, fold, size) run -> best weights + metrics.json."""

import logging
import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 (snakemake)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from causalmixft.data.schema import TableSchema  # noqa: E402
from causalmixft.experiment.methods import resolve_method  # noqa: E402
from causalmixft.experiment.runs import run_method, save_run  # noqa: E402
from causalmixft.gpu import job_device  # noqa: E402
from causalmixft.io import read_json  # noqa: E402

torch.set_num_threads(snakemake.threads)  # noqa: F821
inputs, wildcards, params = snakemake.input, snakemake.wildcards, snakemake.params  # noqa: F821
method = resolve_method(wildcards.method, params.finetune.get("custom_methods"))
with job_device(params.finetune["device"]) as device:
    model, metrics = run_method(
        method,
        size=int(wildcards.size),
        dataset=wildcards.dataset,
        fold=int(wildcards.fold),
        train=pd.read_parquet(inputs.train),
        val=pd.read_parquet(inputs.val),
        test=pd.read_parquet(inputs.test),
        synthetic=pd.read_parquet(inputs.synthetic) if "synthetic" in inputs.keys() else None,
        schema=TableSchema.from_meta(read_json(inputs.meta)),
        weights=params.weights,
        params={**params.finetune, "device": device},
        backbone=wildcards.backbone,
        replicates=params.replicates["seeds"],
        protocol_seed=params.replicates["seed"],
    )
save_run(model, metrics, Path(snakemake.output.metrics).parent)  # noqa: F821
for replicate in metrics["replicates"]:
    print(f"replicate {replicate['replicate']}: selected step {replicate['selected_step']} "
          f"({replicate['stop_reason']}): {replicate['selected']}")
