"""Rule pretrain_backbone: train the built-in backbone on the synthetic prior (resumable)."""

import shutil
from pathlib import Path

import torch

from causalmixft.io import write_json
from causalmixft.logs import script_logging
from causalmixft.model.pretrain import pretrain_from_options

smk = snakemake  # noqa: F821 (injected by Snakemake)
# Appended to: a resumed job's log continues its earlier attempts'.
with script_logging(smk.log[0], append=True):
    torch.set_num_threads(smk.threads)
    workdir = Path(smk.params.workdir)
    summary = pretrain_from_options(workdir, dict(smk.params.options))
    shutil.copyfile(workdir / "final" / "model.safetensors", smk.output.weights)
    shutil.copyfile(workdir / "final" / "config.json", smk.output.config)
    write_json(smk.output.summary, summary)
