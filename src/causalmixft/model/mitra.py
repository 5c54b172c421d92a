"""Adapter for AutoGluon's Mitra (``Tab2D``) checkpoints behind the :class:`Backbone` interface.

Install with ``make venv-mitra`` (its own environment, docs/backbones.md). A checkpoint is a LOCAL directory holding
``config.json`` (``dim``, ``dim_output``, ``n_layers``, ``n_heads``, ``task``) and
``model.safetensors``, the layout of the published ``autogluon/mitra-classifier`` repository
and of ``Tab2D.save_pretrained``. Nothing is downloaded at run time: the network is built with
``use_pretrained_weights=False`` and the safetensors file is loaded here, so neither
``hf_hub_download`` nor ``torch.load`` is ever reached.

Preprocessing follows AutoGluon's Mitra preprocessor: missing values are imputed with the
context mean and features constant in the context are dropped; the network's own quantile
embedding does the scaling. Categorical codes enter as ordinal values, as in AutoGluon.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from causalmixft.io import atomic_path, write_json
from causalmixft.io import sha256_file
from causalmixft.model.adapters import AdapterBackbone, checkpoint_dir, import_package
from causalmixft.model.backbone import autocast, resolve_device

TAB2D_MODULE = "autogluon.tabular.models.mitra._internal.models.tab2d"
EXPECTED = "a local directory with config.json and model.safetensors (e.g. a copy of the autogluon/mitra-classifier repository)"


def tab2d_class():
    """AutoGluon's ``Tab2D`` class, or an ImportError that says how to install it."""
    return import_package("mitra", TAB2D_MODULE).Tab2D


def _build(config: dict, device: torch.device) -> torch.nn.Module:
    if str(config.get("task", "CLASSIFICATION")).upper() != "CLASSIFICATION":
        raise ValueError(f"only Mitra classification checkpoints are supported, not task={config.get('task')!r}")
    return tab2d_class()(
        dim=int(config["dim"]), dim_output=int(config["dim_output"]), n_layers=int(config["n_layers"]),
        n_heads=int(config["n_heads"]), task="CLASSIFICATION",
        # False: never let Tab2D load weights itself (its path would go through torch.load).
        use_pretrained_weights=False, path_to_weights="", device=device.type,
    )


class MitraBackbone(AdapterBackbone):
    """A Mitra ``Tab2D`` network with the project's backbone interface."""

    name = "mitra"

    def __init__(self, module: torch.nn.Module, checkpoint: str | Path | None = None,
                 checkpoint_sha256: str | None = None):
        # Tab2D has no positional feature embedding, hence no hard feature limit.
        super().__init__(module, int(module.dim_output), None, checkpoint, checkpoint_sha256)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "auto") -> "MitraBackbone":
        directory = checkpoint_dir("Mitra", directory, EXPECTED)
        device = resolve_device(str(device))
        module = _build(json.loads((directory / "config.json").read_text()), device)
        weights = directory / "model.safetensors"
        module.load_state_dict(load_file(str(weights)))
        return cls(module.to(device).eval(), directory, sha256_file(weights))

    @classmethod
    def random(cls, dim: int = 512, n_layers: int = 12, n_heads: int = 4, dim_output: int = 10, seed: int = 0,
               device: str | torch.device = "cpu") -> "MitraBackbone":
        """Randomly initialised weights of the Mitra architecture (Mitra's defaults: 512/12/4/10)."""
        config = {"dim": dim, "dim_output": dim_output, "n_layers": n_layers, "n_heads": n_heads}
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the global RNG
            torch.manual_seed(seed)
            module = _build(config, resolve_device(str(device)))
        return cls(module.to(resolve_device(str(device))).eval())

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        """``model.safetensors`` + ``config.json`` in Tab2D's own format, so AutoGluon can load it too."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.module.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(state, str(tmp))
        m = self.module
        config = {"dim": m.dim, "dim_output": m.dim_output, "n_layers": m.n_layers, "n_heads": m.n_heads,
                  "task": "CLASSIFICATION"}
        if extra:
            config["metadata"] = extra
        write_json(directory / "config.json", config)

    @staticmethod
    def _prepare(x_context: torch.Tensor, x_query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Impute with context means, zero infinities, drop features constant in the context."""
        mean = torch.nan_to_num(torch.nanmean(x_context, 0), nan=0.0, posinf=0.0, neginf=0.0)
        x_context = torch.nan_to_num(torch.where(torch.isnan(x_context), mean, x_context), posinf=0.0, neginf=0.0)
        x_query = torch.nan_to_num(torch.where(torch.isnan(x_query), mean, x_query), posinf=0.0, neginf=0.0)
        varying = (x_context != x_context[:1]).any(0)
        if varying.any():
            x_context, x_query = x_context[:, varying], x_query[:, varying]
        return x_context, x_query

    def logits(self, x_context, y_context, x_query, n_classes, categorical=None):
        x_context, x_query = self._prepare(x_context.float(), x_query.float())
        n_context, n_features = x_context.shape
        no_padding = torch.zeros(1, n_features, dtype=torch.bool, device=x_context.device)
        with autocast(x_context.device):
            out = self.module(
                x_context[None], y_context[None], x_query[None], no_padding,
                torch.zeros(1, n_context, dtype=torch.bool, device=x_context.device),
                torch.zeros(1, len(x_query), dtype=torch.bool, device=x_context.device),
            )
        return out[0, :, :n_classes].float()
