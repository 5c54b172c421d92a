"""causalmixft.metrics (numpy only, for start-up time) against scikit-learn's definitions."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from causalmixft.metrics import binary_roc_auc, classification_metrics, roc_auc


def random_case(n_classes, n_rows, seed, tied=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_rows)
    y[:n_classes] = np.arange(n_classes)  # every class present
    proba = rng.dirichlet(np.ones(n_classes), n_rows)
    if tied:  # coarse probabilities: many ties within and across classes
        proba = np.round(proba, 1) + 1e-3
        proba /= proba.sum(1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_scikit_learn(n_classes, tied, seed):
    y, proba = random_case(n_classes, 97, seed, tied)
    ours = classification_metrics(y, proba)
    prediction = proba.argmax(1)
    if n_classes == 2:
        expected_auc = roc_auc_score(y, proba[:, 1])
    else:
        expected_auc = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    # No probability is near the clip, so scikit-learn's plain log-loss is the reference here;
    # test_log_loss_clips_at_1e7_and_renormalizes covers the clip.
    assert proba.min() > 1e-6
    assert ours["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y, prediction))
    assert ours["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, prediction))
    assert ours["log_loss"] == pytest.approx(sk_log_loss(y, proba, labels=np.arange(n_classes)), rel=1e-9)


def test_log_loss_clips_at_1e7_and_renormalizes():
    # Row 0: true class 0 has probability 0 -> clipped to 1e-7, the row [1e-7, 1] renormalized to
    # sum 1: p = 1e-7 / (1 + 1e-7), loss 7 ln 10 + ln(1 + 1e-7) = 16.1180957510. Row 1: 0.5 is
    # untouched: ln 2. Row 2: true class 1 at 1 - 1e-9 with class 0 at 1e-9 -> [1e-7, 1 - 1e-9],
    # sum 1 + 1e-7 - 1e-9: loss ln((1 + 1e-7 - 1e-9) / (1 - 1e-9)). Mean of the three.
    y = np.array([0, 1, 1])
    proba = np.array([[0.0, 1.0], [0.5, 0.5], [1e-9, 1 - 1e-9]])
    rows = [7 * math.log(10) + math.log1p(1e-7), math.log(2), math.log((1 + 1e-7 - 1e-9) / (1 - 1e-9))]
    assert classification_metrics(y, proba)["log_loss"] == pytest.approx(sum(rows) / 3, rel=1e-12)


def test_hand_computed_auc_with_ties():
    # positives score 0.8, 0.5; negatives 0.5, 0.2: pairs (0.8>0.5, 0.8>0.2, 0.5=0.5, 0.5>0.2) -> 3.5/4
    assert binary_roc_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.5, 0.5, 0.2])) == 0.875


def test_absent_classes_do_not_count():
    # Class 2 has no row in y: one-vs-rest over classes 0 and 1 only, and balanced accuracy too.
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    expected = np.mean([roc_auc_score(y == c, proba[:, c]) for c in (0, 1)])
    assert roc_auc(y, proba) == pytest.approx(expected)
    assert classification_metrics(y, proba)["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y, proba.argmax(1))
    )


def test_single_class_auc_is_nan():
    assert np.isnan(roc_auc(np.zeros(4, int), np.full((4, 2), 0.5)))
