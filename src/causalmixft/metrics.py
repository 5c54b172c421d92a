"""Classification metrics with the definitions of DESIGN.md, robust to classes absent from a split.

Plain numpy on purpose: every fine-tuning job computes these, and importing ``sklearn.metrics``
costs about a second of start-up per job (scipy.stats included), which the default workflow
would pay a hundred times. ``tests/test_metrics.py`` checks each against scikit-learn.
"""

from __future__ import annotations

import numpy as np

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "balanced_accuracy": True, "log_loss": False}


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (as scipy's rankdata)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.concatenate([[0], np.cumsum(counts)[:-1]]) + 1
    return (first_rank + (counts - 1) / 2.0)[inverse.ravel()]


def binary_roc_auc(is_positive: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney form of the ROC-AUC: ties between a positive and a negative count half."""
    is_positive = np.asarray(is_positive, bool)
    n_pos = int(is_positive.sum())
    n_neg = len(is_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, np.float64))
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary ROC-AUC, or one-vs-rest macro ROC-AUC over the classes present in ``y_true``."""
    y_true = np.asarray(y_true)
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return binary_roc_auc(y_true == 1, proba[:, 1])
    # One-vs-rest per present class, so a class missing from a small test split neither
    # crashes nor counts as a perfect score.
    return float(np.mean([binary_roc_auc(y_true == c, proba[:, c]) for c in present]))


def balanced_accuracy(y_true: np.ndarray, prediction: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    y_true, prediction = np.asarray(y_true), np.asarray(prediction)
    return float(np.mean([np.mean(prediction[y_true == c] == c) for c in np.unique(y_true)]))


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (rows of ``proba`` sum to one)."""
    y_true = np.asarray(y_true, np.int64)
    return float(-np.mean(np.log(proba[np.arange(len(y_true)), y_true])))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, np.float64)
    clipped = np.clip(proba, 1e-7, 1.0)
    clipped = clipped / clipped.sum(1, keepdims=True)
    prediction = proba.argmax(1)
    return {
        "roc_auc": roc_auc(y_true, proba),
        "accuracy": float(np.mean(prediction == y_true)),
        "balanced_accuracy": balanced_accuracy(y_true, prediction),
        "log_loss": log_loss(y_true, clipped),
    }
