"""Rule finetune: one (method, dataset, fold, budget, size) run -> best weights + metrics.json."""

from pathlib import Path

import torch

from causalmixft.data.schema import TableSchema
from causalmixft.methods import resolve_method
from causalmixft.experiment.runs import Replication, RunCell, RunRows, run_method, save_run
from causalmixft.gpu import job_device
from causalmixft.io import read_json, read_parquet
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    torch.set_num_threads(smk.threads)
    inputs, wildcards, params = smk.input, smk.wildcards, smk.params
    method = resolve_method(wildcards.method, params.finetune.get("custom_methods"))
    with job_device(params.finetune["device"]) as device:
        model, metrics = run_method(
            method,
            RunCell(
                wildcards.dataset,
                int(wildcards.fold),
                int(wildcards.budget),
                int(wildcards.size),
            ),
            RunRows(
                train=read_parquet(inputs.train),
                val=read_parquet(inputs.val),
                test=read_parquet(inputs.test),
                synthetic=(
                    read_parquet(inputs.synthetic)
                    if "synthetic" in inputs.keys()
                    else None
                ),
                schema=TableSchema.from_meta(read_json(inputs.meta)),
            ),
            weights=params.weights,
            params={**params.finetune, "device": device},
            backbone=wildcards.backbone,
            replication=Replication(
                seeds=params.replicates["seeds"],
                protocol_seed=params.replicates["seed"],
                selection_rows=params.replicates["selection_rows"],
            ),
        )
    save_run(model, metrics, Path(smk.output.metrics).parent, keep_weights=params.keep_weights)
    for replicate in metrics["replicates"]:
        print(
            f"replicate {replicate['replicate']}: selected step {replicate['selected_step']} "
            f"({replicate['stop_reason']}): {replicate['selected']}"
        )
