"""What the adapters for published tabular foundation models share (Mitra, TabPFN, TabICL).

Each adapter wraps the package's own network behind the :class:`~causalmixft.model.interface.Backbone`
interface, loads weights only from a local path (never from a hub) and reports where its weights came
from (:meth:`AdapterBackbone.provenance`: package version and checkpoint sha256, for ``metrics.json``).
The packages are optional: each lives in its own environment (``make venv-<model>``, docs/backbones.md),
so nothing here imports them at module level; nor torch, so that the workflow can ask :func:`adapter_name`
which environment a run needs without loading it.
"""

from __future__ import annotations

import argparse

import importlib
import importlib.metadata
import json
from pathlib import Path

# name -> (module of the adapter, its class, the pip distribution whose version is reported)
ADAPTERS = {
    "mitra": ("causalmixft.model.mitra", "MitraBackbone", "autogluon.tabular"),
    "tabpfn": ("causalmixft.model.tabpfn", "TabPFNBackbone", "tabpfn"),
    "tabicl": ("causalmixft.model.tabicl", "TabICLBackbone", "tabicl"),
}


def install_hint(name: str) -> str:
    return f"make venv-{name} (or pip install -r requirements-{name}.txt into an environment of its own)"


def import_package(name: str, module: str):
    """Import ``module`` of adapter ``name``'s package, or an ImportError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"the {name} backbone needs {ADAPTERS[name][2]}, which is not importable ({error}); "
                          f"install it with: {install_hint(name)}") from error


def package_version(name: str) -> str:
    return importlib.metadata.version(ADAPTERS[name][2])


def missing_checkpoint(name: str, path: Path, expected: str) -> FileNotFoundError:
    return FileNotFoundError(f"no {name} checkpoint at {path}: expected {expected}; the adapter never downloads "
                             f"weights, so copy them there first (docs/backbones.md)")


def checkpoint_dir(name: str, directory: str | Path, expected: str) -> Path:
    """``directory`` if it holds config.json and model.safetensors; else one error naming what is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        raise missing_checkpoint(name, directory, expected)
    missing = [file for file in ("config.json", "model.safetensors") if not (directory / file).is_file()]
    if missing:
        raise FileNotFoundError(f"{name} checkpoint {directory} lacks {', '.join(missing)}; expected {expected}")
    return directory


def convert_command(name: str, convert, argv: list[str] | None = None) -> None:
    """``python -m causalmixft.model.<name> convert CKPT DIRECTORY``: a published checkpoint -> safetensors."""
    parser = argparse.ArgumentParser(prog=f"python -m causalmixft.model.{name.lower()}",
                                     description=f"{name} checkpoints for the workflow")
    commands = parser.add_subparsers(dest="command", required=True)
    converting = commands.add_parser("convert", help=f"a published {name} .ckpt -> a safetensors checkpoint directory")
    converting.add_argument("ckpt")
    converting.add_argument("directory")
    args = parser.parse_args(argv)
    print(convert(args.ckpt, args.directory))


def adapter_class(name: str) -> type:
    if name not in ADAPTERS:
        raise ValueError(f"unknown backbone adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    module, cls, _ = ADAPTERS[name]
    return getattr(importlib.import_module(module), cls)


def adapter_name(path: str | Path) -> str:
    """Which adapter reads the checkpoint at ``path`` (a directory with config.json, or a weights file)."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".safetensors":
            return "tabpfn"  # TabPFN's published checkpoints are single safetensors files
        if path.suffix == ".ckpt":
            raise ValueError(f"{path} is a pickled torch checkpoint; convert it to safetensors first with "
                             f"`python -m causalmixft.model.tabicl convert` (TabICL) or "
                             f"`python -m causalmixft.model.tabpfn convert` (TabPFN)")
        raise ValueError(f"{path} is not a checkpoint the adapters read (a directory or a .safetensors file)")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no backbone at {path}: expected config.json and model.safetensors")
    config = json.loads(config_path.read_text())
    if config.get("backbone") in ADAPTERS:
        return config["backbone"]
    if "dim" in config:
        return "mitra"  # AutoGluon's own Tab2D config.json (autogluon/mitra-classifier) has no backbone key
    raise ValueError(f"{config_path} names no known backbone adapter ({', '.join(sorted(ADAPTERS))})")


def backbone_kind(path: str | Path) -> str:
    """``builtin`` for the project's own transformer (its config.json has ``d_model``), else the adapter's
    name: which environment (envs/model.yaml or envs/backbones/<name>.yaml) fine-tuning from ``path`` needs."""
    config_path = Path(path) / "config.json"
    if config_path.is_file() and "d_model" in json.loads(config_path.read_text()):
        return "builtin"
    return adapter_name(path)


def load_adapter(path: str | Path, device="auto"):
    """Load whichever published model's checkpoint lies at ``path``."""
    return adapter_class(adapter_name(path)).load(path, device)


class AdapterBackbone:
    """Device handling, provenance and chunked no-grad prediction from the subclass's ``logits``."""

    name: str  # key of ADAPTERS
    query_chunk = 1024  # query rows per forward pass at prediction time

    def __init__(self, module, max_classes: int, max_features: int | None,
                 checkpoint: str | Path | None = None, checkpoint_sha256: str | None = None):
        self.module = module
        self.max_classes = int(max_classes)
        self.max_features = max_features
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.checkpoint_sha256 = checkpoint_sha256

    @property
    def device(self):
        return next(self.module.parameters()).device

    def to(self, device):
        self.module.to(device)
        return self

    def provenance(self) -> dict:
        """Where the starting weights came from; ``metrics.json`` records it as ``backbone_provenance``."""
        return {"adapter": self.name, "package": ADAPTERS[self.name][2], "package_version": package_version(self.name),
                "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256}

    def predict_proba(self, x_context, y_context, x_query, n_classes, categorical=None, random_state=0):
        import numpy as np
        import torch

        if n_classes > self.max_classes:
            raise ValueError(f"{n_classes} classes exceed the {self.name} checkpoint's maximum of {self.max_classes}")
        device = self.device
        self.module.eval()
        ctx = torch.as_tensor(np.asarray(x_context, np.float32), device=device)
        y = torch.as_tensor(np.asarray(y_context, np.int64), device=device)
        cat = None if categorical is None else torch.as_tensor(np.asarray(categorical, bool), device=device)
        out = []
        with torch.no_grad():
            for start in range(0, len(x_query), self.query_chunk):
                query = torch.as_tensor(np.asarray(x_query[start : start + self.query_chunk], np.float32),
                                        device=device)
                out.append(torch.softmax(self.logits(ctx, y, query, n_classes, cat), -1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_classes))
