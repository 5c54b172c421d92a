"""Adapter for TabICL (the ``tabicl`` package) behind the :class:`Backbone` interface.

Install with ``make venv-tabicl`` (docs/backbones.md). A checkpoint is a LOCAL directory holding
``config.json`` (``{"backbone": "tabicl", "max_classes": n, "config": <TabICL constructor arguments>}``) and
``model.safetensors``. The published checkpoints (``tabicl-classifier-v2-*.ckpt``) are torch files
holding ``{"config", "state_dict"}``; convert one once with

    python -m causalmixft.model.tabicl convert tabicl-classifier-v2-20260212.ckpt weights/tabicl-v2

which reads it with ``torch.load(weights_only=True)`` (tensors and plain values only). Nothing is
downloaded: the network is built from the config and the weights are read from safetensors.

Preprocessing is TabICL's own, one ensemble member of it: mean imputation (``TransformToNumerical``),
features constant in the context dropped (``UniqueFeatureFilter``), then its ``PreprocessingPipeline``
without a normalizer (standard scaling with clipping, outliers beyond 4 sd squashed), fitted on the
context rows. Logits come from TabICL's training forward pass (the one its own fine-tuning uses), in
training and at prediction alike, so fine-tuning optimises what evaluation measures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from causalmixft.io import atomic_path, write_json
from causalmixft.io import sha256_file
from causalmixft.model.adapters import AdapterBackbone, checkpoint_dir, convert_command, import_package
from causalmixft.model.backbone import autocast, resolve_device

EXPECTED = ("a local directory with config.json ({'backbone': 'tabicl', 'max_classes': ..., 'config': {...}}) and model.safetensors "
            "(convert a published .ckpt with `python -m causalmixft.model.tabicl convert`)")
OUTLIER_THRESHOLD = 4.0  # TabICLClassifier's default


def tabicl_class():
    return import_package("tabicl", "tabicl._model.tabicl").TabICL


class TabICLBackbone(AdapterBackbone):
    """A TabICL network with the project's backbone interface."""

    name = "tabicl"

    def __init__(self, module: torch.nn.Module, config: dict, checkpoint: str | Path | None = None,
                 checkpoint_sha256: str | None = None):
        if int(config.get("max_classes", 10)) < 2:
            raise ValueError("only TabICL classification checkpoints are supported (config max_classes >= 2)")
        # Rotary feature positions: no hard limit on the number of features.
        super().__init__(module, int(module.max_classes), None, checkpoint, checkpoint_sha256)
        self.config = dict(config)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "auto") -> "TabICLBackbone":
        directory = checkpoint_dir("TabICL", directory, EXPECTED)
        config = json.loads((directory / "config.json").read_text())["config"]
        module = tabicl_class()(**config)
        weights = directory / "model.safetensors"
        module.load_state_dict(load_file(str(weights)))
        return cls(module.to(resolve_device(str(device))).eval(), config, directory, sha256_file(weights))

    @classmethod
    def random(cls, seed: int = 0, device: str | torch.device = "cpu", **config) -> "TabICLBackbone":
        """Randomly initialised weights of the TabICL architecture; ``config``: TabICL constructor arguments."""
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the global RNG
            torch.manual_seed(seed)
            module = tabicl_class()(**config)
        return cls(module.to(resolve_device(str(device))).eval(), config)

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.module.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(state, str(tmp))
        # max_classes: the class limit the workflow's preflight check reads (causalmixft.preflight).
        config = {"backbone": "tabicl", "max_classes": self.max_classes, "config": self.config}
        if extra:
            config["metadata"] = extra
        write_json(directory / "config.json", config)

    @staticmethod
    def _prepare(x_context: np.ndarray, x_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TabICL's own preprocessing of one ensemble member, fitted on the context rows."""
        preprocessing = import_package("tabicl", "tabicl._sklearn.preprocessing")
        x_context, x_query = (np.where(np.isinf(a), np.nan, a).astype(np.float64) for a in (x_context, x_query))
        for step in (preprocessing.TransformToNumerical(), preprocessing.UniqueFeatureFilter(),
                     preprocessing.PreprocessingPipeline(normalization_method="none",
                                                         outlier_threshold=OUTLIER_THRESHOLD)):
            x_context = step.fit_transform(x_context)
            x_query = step.transform(x_query)
        return x_context.astype(np.float32), x_query.astype(np.float32)

    def logits(self, x_context, y_context, x_query, n_classes, categorical=None):
        device = x_context.device
        ctx, query = self._prepare(x_context.detach().cpu().numpy(), x_query.detach().cpu().numpy())
        x = torch.as_tensor(np.concatenate([ctx, query]), device=device)[None]
        with autocast(device):
            out = self.module._train_forward(x, y_context[None].float())
        return out[0, :, :n_classes].float()


def convert(ckpt: str | Path, directory: str | Path) -> Path:
    """Published ``.ckpt`` -> ``config.json`` + ``model.safetensors`` (only tensors and plain values read)."""
    checkpoint = torch.load(str(ckpt), map_location="cpu", weights_only=True)
    if not {"config", "state_dict"} <= set(checkpoint):
        raise ValueError(f"{ckpt} is not a TabICL checkpoint: it lacks 'config' or 'state_dict'")
    backbone = TabICLBackbone(tabicl_class()(**checkpoint["config"]), checkpoint["config"])
    backbone.module.load_state_dict(checkpoint["state_dict"])
    backbone.save(directory, extra={"converted_from": Path(ckpt).name, "source_sha256": sha256_file(ckpt)})
    return Path(directory)


def main(argv: list[str] | None = None) -> None:
    convert_command("TabICL", convert, argv)


if __name__ == "__main__":
    main()
