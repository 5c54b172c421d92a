"""A scikit-learn classifier around any backbone: in-context prediction, optional fine-tuning.

``fit`` encodes the table (categorical columns as codes, labels via LabelEncoder), keeps it as
the inference context and, when a :class:`FinetuneConfig` is given, fine-tunes a copy of the
backbone on it with an internal stratified validation split for early stopping. The context
used for prediction is then all fitted rows (capped at ``max_context_rows``).

Example::

    clf = TabularFMClassifier(finetune=FinetuneConfig(steps=100), random_state=0).fit(X_train, y_train)
    proba = clf.predict_proba(X_test)
    clf.save("my-model")
    same = TabularFMClassifier.load("my-model")
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.numpy import load_file, save_file
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from causalmixft.io import atomic_path
from causalmixft.model.backbone import DEFAULT_WEIGHTS, resolve_device
from causalmixft.model.finetune import FinetuneConfig, FinetuneData, finetune
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.interface import DEFAULT_ENSEMBLE, Backbone, BuiltinBackbone, as_backbone, load_backbone
from causalmixft.model.transformer import TabularTransformer


# The estimator parameters that make up the built-in backbone's Ensemble (n_feature_subsets keeps
# DEFAULT_ENSEMBLE's: with n_estimators set, each member of a wide table has its own subset).
ENSEMBLE_PARAMS = ("n_estimators", "n_class_shifts", "preprocessing", "category_orders")


def _plain(value):
    """numpy scalars -> Python scalars, so labels and levels survive JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _stratify_or_none(y: np.ndarray) -> np.ndarray | None:
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 else None


class TabularFMClassifier(ClassifierMixin, BaseEstimator):
    """In-context tabular foundation-model classifier.

    Parameters
    ----------
    weights : directory of a backbone (built-in or Mitra, see ``load_backbone``), or a backbone
        object (copied at fit). None (default): the project's pre-trained weights (DEFAULT_WEIGHTS).
    device : "auto", "cpu", "cuda", ...
    random_state : int seed for the validation split, fine-tuning episodes, context capping and
        the feature subsets of wide tables.
    finetune : FinetuneConfig or None. None = no fine-tuning, prediction in context only.
    validation_fraction : share of the fitted rows held out for early stopping when fine-tuning.
    categorical_features : "auto" (DataFrame columns of object, string, category or bool dtype),
        or a list of column names or indices.
    max_context_rows : cap on the context rows used at prediction (stratified subsample).
    n_estimators : built-in backbone only: forward passes of the inference ensemble
        (:mod:`causalmixft.model.ensemble`); None = every class shift on raw features, one pass each.
    n_class_shifts : built-in backbone only: at most this many cyclic relabelings of the classes
        among the members (None: all of them; 1: labels as given).
    preprocessing : built-in backbone only: the feature preprocessings ensemble members cycle through.
    category_orders : built-in backbone only: members beyond the first round permute category codes.

    The four ensemble parameters stay flat (scikit-learn's get_params/set_params/clone); ``fit``
    gathers them into the built-in backbone's :class:`~causalmixft.model.ensemble.Ensemble`.
    """

    def __init__(self, weights=None, device="auto", random_state=0, finetune=None,
                 validation_fraction=0.2, categorical_features="auto", max_context_rows=4096,
                 n_estimators=DEFAULT_ENSEMBLE.n_estimators, n_class_shifts=DEFAULT_ENSEMBLE.n_class_shifts,
                 preprocessing=DEFAULT_ENSEMBLE.preprocessing, category_orders=DEFAULT_ENSEMBLE.category_orders):
        self.weights = weights
        self.device = device
        self.random_state = random_state
        self.finetune = finetune
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.max_context_rows = max_context_rows
        self.n_estimators = n_estimators
        self.n_class_shifts = n_class_shifts
        self.preprocessing = preprocessing
        self.category_orders = category_orders

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # ----- encoding -------------------------------------------------------------------------
    def _frame(self, X, reset: bool) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=None, ensure_all_finite="allow-nan")
        validate_data(self, X, reset=reset, skip_check_array=True)  # n_features_in_, feature_names_in_
        return X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X).infer_objects()

    def _fit_encoding(self, frame: pd.DataFrame) -> None:
        if isinstance(self.categorical_features, str) and self.categorical_features == "auto":
            mask = [not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
                    for c in frame.columns]
        else:
            chosen = set(self.categorical_features or [])
            mask = [c in chosen or i in chosen for i, c in enumerate(frame.columns)]
        self.categorical_mask_ = np.array(mask, dtype=bool)
        self.categories_ = {}
        for i, column in enumerate(frame.columns):
            if mask[i]:
                values = frame[column].dropna().unique()
                try:
                    values = sorted(values)
                except TypeError:  # mixed types: order by text, still deterministic
                    values = sorted(values, key=str)
                self.categories_[i] = [_plain(v) for v in values]

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for i, column in enumerate(frame.columns):
            values = frame[column]
            if self.categorical_mask_[i]:
                # Levels unseen at fit become missing values.
                codes = pd.Categorical(values, categories=self.categories_[i]).codes
                columns.append(np.where(codes < 0, np.nan, codes))
            else:
                columns.append(pd.to_numeric(values, errors="raise").to_numpy(np.float64))
        x = np.stack(columns, 1).astype(np.float32) if columns else np.zeros((len(frame), 0), np.float32)
        return check_array(x, dtype=np.float32, ensure_all_finite="allow-nan")

    # ----- estimator API --------------------------------------------------------------------
    def _load_backbone(self, weights=None) -> Backbone:
        weights = self.weights if weights is None else weights
        if isinstance(weights, (TabularTransformer, Backbone)):
            backbone = copy.deepcopy(as_backbone(weights)).to(self._device())
        else:
            backbone = load_backbone(DEFAULT_WEIGHTS if weights is None else weights, self._device())
        ensemble = self._ensemble()
        if isinstance(backbone, BuiltinBackbone):
            backbone.ensemble = ensemble
        elif ensemble != DEFAULT_ENSEMBLE:
            changed = [name for name in ENSEMBLE_PARAMS if getattr(ensemble, name) != getattr(DEFAULT_ENSEMBLE, name)]
            raise ValueError(f"{', '.join(changed)}: for the built-in backbone only, not {type(backbone).__name__}")
        return backbone

    def _ensemble(self) -> Ensemble:
        """The built-in backbone's prediction settings from this estimator's flat parameters."""
        return replace(DEFAULT_ENSEMBLE, **{name: getattr(self, name) for name in ENSEMBLE_PARAMS})

    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def fit(self, X, y):
        frame = self._frame(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
        check_classification_targets(y)
        self._fit_encoding(frame)
        x = self._encode(frame)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        labels = encoder.transform(y).astype(np.int64)
        backbone = self._load_backbone()
        if len(self.classes_) > backbone.max_classes:
            raise ValueError(f"{len(self.classes_)} classes exceed the backbone's maximum of {backbone.max_classes}")
        seed = 0 if self.random_state is None else int(self.random_state)
        self.finetune_result_ = None
        if self.finetune is not None and len(self.classes_) >= 2:
            backbone = self._finetune(backbone, x, labels, seed)
            if isinstance(backbone, BuiltinBackbone):
                # FinetuneConfig's n_estimators/n_class_shifts set the evaluations that choose the
                # step; predictions use this estimator's ensemble, as they do after save and load
                backbone.ensemble = self._ensemble()
        self.backbone_ = backbone
        self.context_x_, self.context_y_ = self._cap_context(x, labels, seed)
        return self

    def _finetune(self, backbone: Backbone, x: np.ndarray, labels: np.ndarray, seed: int) -> Backbone:
        cfg = self.finetune if isinstance(self.finetune, FinetuneConfig) else FinetuneConfig(**self.finetune)
        cfg = FinetuneConfig(**{**asdict(cfg), "device": str(self._device())})  # the estimator's device rules
        if len(labels) < 4:
            raise ValueError("fine-tuning needs at least 4 rows (2 to train on, 2 to validate)")
        train, val = train_test_split(np.arange(len(labels)), test_size=self.validation_fraction,
                                      stratify=_stratify_or_none(labels), random_state=seed)
        data = FinetuneData((x[train], labels[train]), (x[train], labels[train]), (x[val], labels[val]),
                            len(self.classes_), self.categorical_mask_)
        result = finetune(backbone, data, cfg, seed)
        self.finetune_result_ = {"selected_step": result.selected_step, "steps_run": result.steps_run,
                                 "curve": result.curve, "steps_per_second": result.steps_per_second}
        return result.model

    def _cap_context(self, x: np.ndarray, labels: np.ndarray, seed: int):
        if self.max_context_rows is None or len(labels) <= self.max_context_rows:
            return x, labels
        keep, _ = train_test_split(np.arange(len(labels)), train_size=self.max_context_rows,
                                   stratify=_stratify_or_none(labels), random_state=seed)
        keep = np.sort(keep)
        return x[keep], labels[keep]

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "backbone_")
        x = self._encode(self._frame(X, reset=False))
        seed = 0 if self.random_state is None else int(self.random_state)
        return self.backbone_.predict_proba(self.context_x_, self.context_y_, x, len(self.classes_),
                                            self.categorical_mask_, random_state=seed)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is looked up
        return self.classes_[proba.argmax(1)]

    # ----- persistence: safetensors + JSON, nothing pickled ---------------------------------
    def save(self, directory: str | Path) -> None:
        """Backbone weights (``backbone/``), the context rows and the encoding, to ``directory``."""
        check_is_fitted(self, "backbone_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backbone_.save(directory / "backbone")
        with atomic_path(directory / "context.safetensors") as tmp:
            save_file({"x": np.ascontiguousarray(self.context_x_), "y": np.ascontiguousarray(self.context_y_)},
                      str(tmp))
        params = self.get_params()
        params["weights"] = str(params["weights"]) if isinstance(params["weights"], (str, Path)) else None
        if isinstance(params["finetune"], FinetuneConfig):
            params["finetune"] = asdict(params["finetune"])
        state = {
            "params": params,
            "classes": [_plain(c) for c in self.classes_],
            "categorical_mask": self.categorical_mask_.tolist(),
            "categories": {str(k): v for k, v in self.categories_.items()},
            "n_features_in": self.n_features_in_,
            "feature_names_in": list(map(str, self.feature_names_in_)) if hasattr(self, "feature_names_in_") else None,
            "finetune_result": self.finetune_result_,
        }
        with atomic_path(directory / "estimator.json") as tmp:
            tmp.write_text(json.dumps(state, indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "TabularFMClassifier":
        directory = Path(directory)
        state = json.loads((directory / "estimator.json").read_text())
        params = dict(state["params"])
        if isinstance(params.get("finetune"), dict):
            params["finetune"] = FinetuneConfig(**params["finetune"])
        if isinstance(params.get("preprocessing"), list):
            params["preprocessing"] = tuple(params["preprocessing"])
        if device is not None:
            params["device"] = device
        estimator = cls(**params)
        estimator.backbone_ = estimator._load_backbone(directory / "backbone")
        context = load_file(str(directory / "context.safetensors"))
        estimator.context_x_, estimator.context_y_ = context["x"], context["y"]
        estimator.classes_ = np.asarray(state["classes"])
        estimator.categorical_mask_ = np.asarray(state["categorical_mask"], bool)
        estimator.categories_ = {int(k): v for k, v in state["categories"].items()}
        estimator.n_features_in_ = state["n_features_in"]
        if state["feature_names_in"] is not None:
            estimator.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        estimator.finetune_result_ = state["finetune_result"]
        return estimator
