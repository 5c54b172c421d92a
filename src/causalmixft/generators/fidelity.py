"""How close synthetic rows are to the real train rows, and how useful they are for the task.

Metrics (all on the schema's encoding: numeric values, categorical level codes, NaN kept for the
classifiers, which handle it natively):
- ``two_sample_auc``: a classifier tries to tell real train rows from synthetic rows (label included
  as a column); cross-validated ROC-AUC of its out-of-fold scores. 0.5 = indistinguishable.
- ``tstr``: the same classifier trained on synthetic rows, then on the real train rows, each scored
  by ROC-AUC on the real validation rows (train-on-synthetic-test-on-real vs train-on-real).
- ``marginal_distance``: per feature, Kolmogorov-Smirnov statistic (numeric) or total variation
  distance (categorical) between real and synthetic values, missing values left out; and the mean.
- ``correlation_distance``: mean absolute difference (off-diagonal) and Frobenius norm of the
  difference of the Pearson correlation matrices of the encoded columns, label included.
- ``label_distribution``: class shares in real train and synthetic rows, and their total variation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from causalmixft.data.schema import TableSchema

CV_FOLDS = 5


def fidelity_classifier(seed: int) -> RandomForestClassifier:
    """One fixed classifier for every fidelity score. A random forest works from a few dozen rows
    upward without tuning (boosting with default leaf sizes cannot split tiny tables)."""
    return RandomForestClassifier(n_estimators=100, random_state=seed % (2**32), n_jobs=1)


def fidelity_report(
    real_train: pd.DataFrame,
    synthetic: pd.DataFrame,
    real_val: pd.DataFrame | None,
    schema: TableSchema,
    seed: int = 0,
    max_rows: int = 1024,
) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "rows": {
            "real_train": len(real_train),
            "synthetic": len(synthetic),
            "real_val": None if real_val is None else len(real_val),
        },
        "two_sample_auc": two_sample_auc(real_train, synthetic, schema, seed, max_rows, rng),
        "tstr": train_synthetic_test_real(real_train, synthetic, real_val, schema, seed),
        "marginal_distance": marginal_distances(real_train, synthetic, schema),
        "correlation_distance": correlation_distance(real_train, synthetic, schema),
        "label_distribution": label_distribution(real_train, synthetic, schema),
    }


def _encode(frame: pd.DataFrame, schema: TableSchema, with_label: bool) -> np.ndarray:
    features = schema.encode_features(frame).astype(np.float64)
    if not with_label:
        return features
    labels = pd.Categorical(frame[schema.target].astype(str), categories=list(schema.classes)).codes
    return np.column_stack([features, np.where(labels < 0, np.nan, labels)])


def two_sample_auc(real, synthetic, schema, seed, max_rows, rng) -> float | None:
    """Balanced classifier two-sample test: m rows of each, m = min(real, synthetic, max_rows)."""
    m = min(len(real), len(synthetic), max_rows)
    if m < 2:
        return None
    real_rows = _encode(real, schema, True)[rng.choice(len(real), m, replace=False)]
    synthetic_rows = _encode(synthetic, schema, True)[rng.choice(len(synthetic), m, replace=False)]
    X = np.vstack([real_rows, synthetic_rows])
    y = np.repeat([0, 1], m)
    folds = StratifiedKFold(n_splits=min(CV_FOLDS, m), shuffle=True, random_state=seed % (2**32))
    scores = cross_val_predict(fidelity_classifier(seed), X, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def macro_auc(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """One-vs-rest ROC-AUC averaged over the classes present (binary: the usual AUC)."""
    aucs = []
    for k in range(probabilities.shape[1]):
        positive = labels == k
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, probabilities[:, k]))
    if not aucs:
        return None
    return float(np.mean(aucs)) if probabilities.shape[1] > 2 else float(aucs[-1])


def _score_on(train: pd.DataFrame, test: pd.DataFrame, schema: TableSchema, seed: int) -> float | None:
    y_train = schema.encode_labels(train)
    if len(np.unique(y_train)) < 2:
        return None
    model = fidelity_classifier(seed).fit(_encode(train, schema, False), y_train)
    probabilities = np.zeros((len(test), len(schema.classes)))
    probabilities[:, model.classes_] = model.predict_proba(_encode(test, schema, False))
    return macro_auc(schema.encode_labels(test), probabilities)


def train_synthetic_test_real(real_train, synthetic, real_val, schema, seed) -> dict:
    if real_val is None or len(real_val) == 0:
        return {"train_on_synthetic_auc": None, "train_on_real_auc": None, "difference": None}
    on_synthetic = _score_on(synthetic, real_val, schema, seed)
    on_real = _score_on(real_train, real_val, schema, seed)
    difference = None if on_synthetic is None or on_real is None else on_synthetic - on_real
    return {"train_on_synthetic_auc": on_synthetic, "train_on_real_auc": on_real, "difference": difference}


def total_variation(a: pd.Series, b: pd.Series) -> float | None:
    a, b = a.dropna().astype(str), b.dropna().astype(str)
    if len(a) == 0 or len(b) == 0:
        return None
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    levels = pa.index.union(pb.index)
    return float(0.5 * np.abs(pa.reindex(levels, fill_value=0) - pb.reindex(levels, fill_value=0)).sum())


def marginal_distances(real, synthetic, schema) -> dict:
    per_feature = {}
    for feature in schema.features:
        if feature.kind == "numeric":
            a = pd.to_numeric(real[feature.name], errors="coerce").dropna()
            b = pd.to_numeric(synthetic[feature.name], errors="coerce").dropna()
            value = float(ks_2samp(a, b).statistic) if len(a) and len(b) else None
            per_feature[feature.name] = {"metric": "ks", "value": value}
        else:
            per_feature[feature.name] = {
                "metric": "tv",
                "value": total_variation(real[feature.name], synthetic[feature.name]),
            }
    values = [v["value"] for v in per_feature.values() if v["value"] is not None]
    return {"mean": float(np.mean(values)) if values else None, "per_feature": per_feature}


def _correlations(frame: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    matrix = _encode(frame, schema, True)
    if len(matrix) < 2:
        return np.eye(matrix.shape[1])
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing and constant columns
        medians = np.nan_to_num(np.nanmedian(matrix, axis=0))
        matrix = np.where(np.isnan(matrix), medians[None, :], matrix)
        corr = np.atleast_2d(np.corrcoef(matrix, rowvar=False))
    corr = np.nan_to_num(corr)  # a constant column correlates with nothing
    np.fill_diagonal(corr, 1.0)
    return corr


def correlation_distance(real, synthetic, schema) -> dict:
    difference = _correlations(real, schema) - _correlations(synthetic, schema)
    upper = np.triu_indices(difference.shape[0], k=1)
    return {
        "mean_abs_diff": float(np.abs(difference[upper]).mean()) if len(upper[0]) else 0.0,
        "frobenius": float(np.linalg.norm(difference)),
    }


def label_distribution(real, synthetic, schema) -> dict:
    def shares(frame):
        counts = frame[schema.target].astype(str).value_counts()
        return {c: float(counts.get(c, 0) / max(len(frame), 1)) for c in schema.classes}

    return {
        "real_train": shares(real),
        "synthetic": shares(synthetic),
        "total_variation": total_variation(real[schema.target], synthetic[schema.target]),
    }
