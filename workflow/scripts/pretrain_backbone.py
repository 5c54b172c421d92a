"""Rule pretrain_backbone: train the built-in backbone on the synthetic prior (resumable)."""

import shutil
import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "a", buffering=1)  # noqa: F821 (snakemake)

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from causalmixft.io import write_json  # noqa: E402
from causalmixft.model.pretrain import pretrain_from_options  # noqa: E402

torch.set_num_threads(snakemake.threads)  # noqa: F821
workdir = Path(snakemake.params.workdir)  # noqa: F821
summary = pretrain_from_options(workdir, dict(snakemake.params.options))  # noqa: F821
shutil.copyfile(workdir / "final" / "model.safetensors", snakemake.output.weights)  # noqa: F821
shutil.copyfile(workdir / "final" / "config.json", snakemake.output.config)  # noqa: F821
write_json(snakemake.output.summary, summary)  # noqa: F821
