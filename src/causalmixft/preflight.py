"""What a config asks of the backbone and the machine, checked when the workflow starts.

Both checks run at parse time, before any job, so that a config that cannot finish fails in
seconds instead of after hours of data, causal and sampling jobs:

- :func:`backbone_class_limit`: the most classes the configured backbone tells apart; the
  prepare stage fails a dataset with more (``causalmixft.data.prepare``).
- :func:`missing_gpu`: a ``cuda`` device asked for where no CUDA device is visible.
- :func:`backbone_weights_problem`: ``backbone.weights`` without its two files, or with a
  truncated ``model.safetensors``. Checked at parse time because Snakemake takes a finished
  run whose weights input is missing as up to date (it reran nothing and reported old metrics
  under the new weights' name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping


def backbone_class_limit(backbone: Mapping) -> int | None:
    """The class limit of the config's ``backbone:`` entry; None where it cannot be known yet.

    Shipped or given weights: ``max_classes`` of the built-in transformer's config.json, or
    ``dim_output`` of a Mitra checkpoint's. A backbone the workflow pretrains: its
    ``pretrain.model.max_classes``, else the built-in transformer's default.
    """
    pretrain = backbone.get("pretrain")
    if pretrain is not None:
        limit = (pretrain.get("model") or {}).get("max_classes")
        if limit is None:
            from causalmixft.model.transformer import ModelConfig  # imports torch: only for pretraining configs

            limit = ModelConfig().max_classes
        return int(limit)
    path = Path(backbone["weights"]) / "config.json"
    if not path.is_file():
        return None  # backbone_weights_problem reports the missing weights with their path
    config = json.loads(path.read_text())
    for key in ("max_classes", "dim_output"):
        if key in config:
            return int(config[key])
    return None


def backbone_weights_problem(weights: str | os.PathLike) -> str | None:
    """Why the folder ``weights`` cannot be fine-tuned from (None if it can): a missing file or a
    ``model.safetensors`` shorter or longer than its header says."""
    from causalmixft.io import safetensors_problem

    folder = Path(weights)
    missing = [name for name in ("model.safetensors", "config.json") if not (folder / name).is_file()]
    if missing:
        where = "does not exist" if not folder.exists() else f"has no {' and no '.join(missing)}"
        return f"{folder} {where}; it must hold model.safetensors and config.json (docs/backbones.md)"
    try:
        json.loads((folder / "config.json").read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{folder / 'config.json'} is not valid JSON ({error}); restore it or point backbone.weights elsewhere"
    problem = safetensors_problem(folder / "model.safetensors")
    if problem:
        return f"{folder / 'model.safetensors'} is damaged ({problem}); restore it or point backbone.weights elsewhere"
    return None


def missing_gpu(device: str, local: bool) -> str | None:
    """Why ``device`` cannot run here, or None. Jobs that run elsewhere (``local`` False: a
    cluster executor) are not checked: the submitting machine needs no GPU."""
    if not local or not str(device).startswith("cuda"):
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return f"device {device!r} asks for a GPU but CUDA_VISIBLE_DEVICES is empty"
    import torch  # only for a config that asks for cuda

    count = torch.cuda.device_count()
    if count == 0:
        return f"device {device!r} asks for a GPU but no CUDA device is visible on this machine"
    index = str(device).partition(":")[2]
    if index and int(index) >= count:
        return f"device {device!r} asks for GPU {index} but only {count} CUDA device(s) are visible"
    return None
