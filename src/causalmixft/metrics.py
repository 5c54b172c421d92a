"""Classification metrics with the definitions of DESIGN.md, robust to classes absent from a split."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "balanced_accuracy": True, "log_loss": False}


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary ROC-AUC, or one-vs-rest macro ROC-AUC over the classes present in ``y_true``."""
    y_true = np.asarray(y_true)
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    # One-vs-rest per present class, so a class missing from a small test split neither
    # crashes nor counts as a perfect score.
    return float(np.mean([roc_auc_score(y_true == c, proba[:, c]) for c in present]))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true)
    n_classes = proba.shape[1]
    clipped = np.clip(proba, 1e-7, 1.0)
    clipped = clipped / clipped.sum(1, keepdims=True)
    prediction = proba.argmax(1)
    return {
        "roc_auc": roc_auc(y_true, proba),
        "accuracy": float(accuracy_score(y_true, prediction)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, prediction)),
        "log_loss": float(log_loss(y_true, clipped, labels=np.arange(n_classes))),
    }
