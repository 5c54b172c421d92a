"""Zero-shot benchmark on real tables: the backbone next to scikit-learn baselines on the same rows.

The protocol mirrors the workflow's data scarcity: stratified K-fold; the held-out fold is the
test set (capped); from the rest a stratified real budget of rows is drawn, which is the
backbone's context and the baselines' training set.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from causalmixft.metrics import roc_auc
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.interface import BuiltinBackbone, as_backbone

TABARENA_DIR = Path(__file__).resolve().parents[3] / "resources" / "tabarena"


def load_tabarena_arrays(name: str, directory: Path = TABARENA_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (categoricals as codes, NaN missing), label indices and the categorical mask."""
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    entry = next(d for d in manifest["datasets"] if d["file"] == f"{name}.csv.gz")
    frame = pd.read_csv(directory / entry["file"])
    target = entry["target_column"]
    features = [c for c in frame.columns if c != target]
    categorical = np.array([c in set(entry["categorical_columns"]) for c in features])
    columns = [
        pd.factorize(frame[c], sort=True)[0].astype(float) if is_cat else pd.to_numeric(frame[c], errors="coerce")
        for c, is_cat in zip(features, categorical)
    ]
    x = np.stack(columns, 1).astype(np.float32)
    for j, is_cat in enumerate(categorical):
        if is_cat:
            x[frame[features[j]].isna().to_numpy(), j] = np.nan
    y = pd.factorize(frame[target].astype(str), sort=True)[0]
    return x, y, categorical


def budget_splits(y: np.ndarray, n_folds: int, budget: int, seed: int, test_max_rows: int = 1000):
    """(context indices, test indices) per fold; both stratified."""
    outer = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    for fold, (rest, test) in enumerate(outer.split(np.zeros(len(y)), y)):
        if len(test) > test_max_rows:
            test, _ = train_test_split(test, train_size=test_max_rows, stratify=y[test], random_state=seed + fold)
        if len(rest) > budget:
            rest, _ = train_test_split(rest, train_size=budget, stratify=y[rest], random_state=seed + fold)
        yield rest, test


def sklearn_baselines(seed: int) -> dict:
    return {
        "logistic_regression": make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(random_state=seed)),
        "random_forest": RandomForestClassifier(random_state=seed),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
    }


def evaluate_zero_shot(model, datasets: list[str], n_folds: int = 5, budget: int = 256, seed: int = 0,
                       baselines: bool = True, test_max_rows: int = 1000, ensemble: Ensemble | None = None,
                       directory: Path = TABARENA_DIR) -> pd.DataFrame:
    """Long table of test ROC-AUC and prediction seconds: dataset, fold, method, roc_auc, predict_s.

    ``model`` is a TabularTransformer (predicting in one plain pass) or any Backbone (None:
    baselines only); ``ensemble`` replaces a built-in backbone's prediction settings (None keeps
    them; other backbones take none).
    """
    backbone = None if model is None else copy.copy(as_backbone(model))  # settings change on the copy only
    if ensemble is not None and backbone is not None:
        if not isinstance(backbone, BuiltinBackbone):
            raise ValueError(f"an ensemble is for the built-in backbone only, not {type(backbone).__name__}")
        backbone.ensemble = ensemble
    rows = []
    for name in datasets:
        x, y, categorical = load_tabarena_arrays(name, directory)
        n_classes = int(y.max()) + 1
        for fold, (context, test) in enumerate(budget_splits(y, n_folds, budget, seed, test_max_rows)):
            if backbone is not None:
                tick = time.perf_counter()
                proba = backbone.predict_proba(x[context], y[context], x[test], n_classes, categorical)
                rows.append((name, fold, "tfm_zeroshot", roc_auc(y[test], proba), time.perf_counter() - tick))
            if baselines:
                # Columns with no observed context value carry nothing to learn; some estimators
                # (HistGradientBoosting) fail on them.
                observed = ~np.isnan(x[context]).all(0)
                for method, estimator in sklearn_baselines(seed).items():
                    tick = time.perf_counter()
                    estimator.fit(x[context][:, observed], y[context])
                    proba = np.zeros((len(test), n_classes))
                    proba[:, estimator.classes_] = estimator.predict_proba(x[test][:, observed])
                    rows.append((name, fold, method, roc_auc(y[test], proba), time.perf_counter() - tick))
    return pd.DataFrame(rows, columns=["dataset", "fold", "method", "roc_auc", "predict_s"])
