"""The one interface every backbone offers: load, predict probabilities, and differentiable logits.

The fine-tuning loop (:mod:`causalmixft.model.finetune`) and the scikit-learn wrapper only use
this interface, so the built-in transformer and adapters for published checkpoints (Mitra, see
:mod:`causalmixft.model.mitra`) are interchangeable. Labels are always global class indices
``0 .. n_classes-1``; features are float arrays with NaN for missing values and categorical
features as integer codes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from causalmixft.model import backbone as builtin
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.transformer import TabularTransformer


# The shipped prediction settings of the built-in backbone (TabularFMClassifier's defaults), chosen on
# validation rows with bench/bench_ensemble.py (docs/backbone.md): 16 members over every class shift, all
# three preprocessings, permuted category orders. BuiltinBackbone itself defaults to a single pass
# (Ensemble()) so that a bare network predicts as it is.
DEFAULT_ENSEMBLE = Ensemble(n_estimators=16, n_class_shifts=None)


@runtime_checkable
class Backbone(Protocol):
    module: torch.nn.Module  # the trainable network: parameters, state_dict, train()/eval()
    max_classes: int
    max_features: int | None  # None: no limit on the number of features the network sees at once

    @property
    def device(self) -> torch.device: ...

    def to(self, device: str | torch.device) -> "Backbone": ...

    def logits(self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor, n_classes: int,
               categorical: torch.Tensor) -> torch.Tensor:
        """Differentiable float32 logits (n_query, n_classes); tensors already on ``device``."""
        ...

    def predict_proba(self, x_context: np.ndarray, y_context: np.ndarray, x_query: np.ndarray, n_classes: int,
                      categorical: np.ndarray | None = None, random_state: int = 0) -> np.ndarray:
        """Class probabilities (n_query, n_classes), no gradients.

        Each query row is predicted from the context alone, never from the other query rows:
        fine-tuning evaluates validation and test rows in one call and relies on it.
        """
        ...

    def save(self, directory: str | Path) -> None:
        """Weights as ``model.safetensors`` plus ``config.json``; :func:`load_backbone` reads them back."""
        ...


class BuiltinBackbone:
    """The project's own :class:`TabularTransformer` behind the :class:`Backbone` interface."""

    def __init__(self, module: TabularTransformer, ensemble: Ensemble = Ensemble()):
        self.module = module
        self.max_classes = module.cfg.max_classes
        self.max_features = module.cfg.max_features
        # Prediction settings, see backbone.predict_proba: the default is one plain pass;
        # Ensemble(n_estimators=k) runs the k-member inference ensemble.
        self.ensemble = ensemble

    @classmethod
    def load(cls, directory: str | Path = builtin.DEFAULT_WEIGHTS,
             device: str | torch.device = "cpu") -> "BuiltinBackbone":
        return cls(builtin.load_model(directory, builtin.resolve_device(str(device))))

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> "BuiltinBackbone":
        self.module.to(device)
        return self

    def logits(self, x_context, y_context, x_query, n_classes, categorical):
        x = torch.cat([x_context, x_query])[None]
        with builtin.autocast(self.device):
            out = self.module(x, y_context[None], categorical[None], n_classes)
        return out[0, :, :n_classes].float()

    def predict_proba(self, x_context, y_context, x_query, n_classes, categorical=None, random_state=0):
        return builtin.predict_proba(self.module, x_context, y_context, x_query, n_classes, categorical,
                                     ensemble=self.ensemble, random_state=random_state)

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        builtin.save_model(self.module, directory, extra)


def as_backbone(model: TabularTransformer | Backbone) -> Backbone:
    if isinstance(model, TabularTransformer):
        return BuiltinBackbone(model)
    if isinstance(model, Backbone):
        return model
    raise TypeError(f"not a backbone: {type(model).__name__}")


def load_backbone(directory: str | Path = builtin.DEFAULT_WEIGHTS, device: str | torch.device = "auto") -> Backbone:
    """Load whichever backbone a weights directory holds, told apart by its ``config.json``.

    The built-in transformer's config has ``d_model``; a Mitra (Tab2D) checkpoint's has ``dim``.
    """
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"no backbone at {directory}: expected config.json and model.safetensors")
    config = json.loads(config_path.read_text())
    if "d_model" in config:
        return BuiltinBackbone.load(directory, builtin.resolve_device(str(device)))
    from causalmixft.model.adapters import load_adapter  # published models: Mitra, TabPFN, TabICL

    return load_adapter(directory, device)
