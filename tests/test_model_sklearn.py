"""The scikit-learn wrapper: estimator contract, table encoding, fine-tuning, save/load."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from causalmixft.model.backbone import predict_proba, save_model
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.finetune import FinetuneConfig
from causalmixft.model.interface import DEFAULT_ENSEMBLE
from causalmixft.model.sklearn import ENSEMBLE_PARAMS, TabularFMClassifier
from model_helpers import tiny_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny")
    save_model(tiny_model(seed=2), directory)
    return directory


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 80
    data = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "member": rng.choice([True, False], n),
        "income": rng.lognormal(3, 1, n),
    })
    data.loc[::7, "income"] = np.nan
    data.loc[::11, "colour"] = None
    labels = np.where(data["age"] > 40, "old", "young")
    return data, labels


def test_clone_and_params_round_trip(weights):
    estimator = TabularFMClassifier(weights=weights, device="cpu", random_state=3,
                                    finetune=FinetuneConfig(steps=5))
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy is not estimator
    copy.set_params(random_state=4, finetune=None)
    assert copy.random_state == 4 and copy.finetune is None and estimator.random_state == 3
    # The ensemble settings are flat parameters; fit gathers them into the backbone's Ensemble.
    copy.set_params(n_estimators=2, preprocessing=["none"])
    assert clone(copy).get_params()["n_estimators"] == 2
    fitted = copy.fit(*load_iris(return_X_y=True))
    assert fitted.backbone_.ensemble == Ensemble(n_estimators=2, n_class_shifts=None, preprocessing=("none",))


def test_fit_predict_on_iris(weights):
    X, y = load_iris(return_X_y=True)
    estimator = TabularFMClassifier(weights=weights, device="cpu").fit(X, y)
    proba = estimator.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(estimator.classes_, [0, 1, 2])
    np.testing.assert_array_equal(estimator.predict(X), estimator.classes_[proba.argmax(1)])
    assert estimator.n_features_in_ == 4 and estimator.finetune_result_ is None
    with pytest.raises(ValueError, match="features"):
        estimator.predict(X[:, :3])
    with pytest.raises(NotFittedError):
        TabularFMClassifier(weights=weights).predict(X)


def test_dataframes_with_categoricals_missing_values_and_string_labels(weights, frame):
    data, labels = frame
    estimator = TabularFMClassifier(weights=weights, device="cpu").fit(data, labels)
    np.testing.assert_array_equal(estimator.categorical_mask_, [False, True, True, False])
    assert estimator.categories_[1] == ["blue", "green", "red"]
    np.testing.assert_array_equal(estimator.feature_names_in_, data.columns)
    assert set(estimator.predict(data)) <= {"old", "young"}
    unseen = data.head(3).assign(colour=["purple", "red", None])
    assert np.isfinite(estimator.predict_proba(unseen)).all()
    # Categorical codes are positions in the fitted levels, whatever the frame's row index.
    shuffled = data.sample(frac=1.0, random_state=0)
    expected = estimator.predict_proba(data)[shuffled.index]
    np.testing.assert_allclose(estimator.predict_proba(shuffled), expected, atol=1e-5)
    with pytest.raises(ValueError, match="inf"):
        estimator.predict(data.assign(age=np.inf))


def test_explicit_categorical_columns_on_arrays(weights):
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[:, 3] = np.round(X[:, 3])
    estimator = TabularFMClassifier(weights=weights, device="cpu", categorical_features=[3]).fit(X, y)
    np.testing.assert_array_equal(estimator.categorical_mask_, [False, False, False, True])
    assert estimator.categories_[3] == [0.0, 1.0, 2.0]  # petal width 0.1..2.5 rounds half to even


def test_finetuning_and_save_load_give_bit_identical_predictions(weights, frame, tmp_path):
    data, labels = frame
    cfg = FinetuneConfig(steps=4, eval_every=2, lr=1e-2, batch_rows=64)
    estimator = TabularFMClassifier(weights=weights, device="cpu", finetune=cfg, random_state=1).fit(data, labels)
    result = estimator.finetune_result_
    assert result["steps_run"] == 4 and [p["step"] for p in result["curve"]] == [0, 2, 4]
    assert result["curve"][0]["test"] == {}  # the wrapper has no test rows; selection is on validation
    estimator.save(tmp_path / "fitted")
    reloaded = TabularFMClassifier.load(tmp_path / "fitted")
    np.testing.assert_array_equal(reloaded.predict_proba(data), estimator.predict_proba(data))
    np.testing.assert_array_equal(reloaded.predict(data), estimator.predict(data))
    assert reloaded.get_params()["finetune"] == cfg and reloaded.finetune_result_ == result
    again = TabularFMClassifier(weights=weights, device="cpu", finetune=cfg, random_state=1).fit(data, labels)
    np.testing.assert_array_equal(again.predict_proba(data), estimator.predict_proba(data))


def test_a_finetuning_ensemble_chooses_the_step_and_the_estimators_own_ensemble_predicts(weights, frame, tmp_path):
    data, labels = frame
    cfg = FinetuneConfig(steps=2, eval_every=2, lr=1e-2, batch_rows=64, n_estimators=3)
    estimator = TabularFMClassifier(weights=weights, device="cpu", finetune=cfg, n_estimators=2,
                                    random_state=1).fit(data, labels)
    assert estimator.backbone_.ensemble.n_estimators == 2
    estimator.save(tmp_path / "fitted")
    reloaded = TabularFMClassifier.load(tmp_path / "fitted")
    np.testing.assert_array_equal(reloaded.predict_proba(data), estimator.predict_proba(data))


def test_context_is_capped_stratified(weights):
    X, y = load_iris(return_X_y=True)
    estimator = TabularFMClassifier(weights=weights, device="cpu", max_context_rows=30).fit(X, y)
    assert len(estimator.context_y_) == 30 and np.bincount(estimator.context_y_).tolist() == [10, 10, 10]


def test_ensemble_settings_reach_the_backbone_and_survive_save_load(weights, tmp_path):
    X, y = load_iris(return_X_y=True)
    single = TabularFMClassifier(weights=weights, device="cpu", n_estimators=1, n_class_shifts=1).fit(X, y)
    assert single.backbone_.ensemble.n_estimators == 1 and single.backbone_.ensemble.n_class_shifts == 1
    default = TabularFMClassifier(weights=weights, device="cpu").fit(X, y)
    assert default.backbone_.ensemble == DEFAULT_ENSEMBLE
    assert {name: default.get_params()[name] for name in ENSEMBLE_PARAMS} == {
        name: getattr(DEFAULT_ENSEMBLE, name) for name in ENSEMBLE_PARAMS}
    assert not np.allclose(default.predict_proba(X), single.predict_proba(X))
    shifted = TabularFMClassifier(weights=weights, device="cpu", n_estimators=None, n_class_shifts=3).fit(X, y)
    np.testing.assert_allclose(shifted.predict_proba(X), predict_proba(shifted.backbone_.module, shifted.context_x_,
                                                                      shifted.context_y_, X, 3,
                                                                      ensemble=Ensemble(n_class_shifts=3)))
    for estimator in (default, shifted):
        estimator.save(tmp_path / "saved")
        reloaded = TabularFMClassifier.load(tmp_path / "saved")
        for name in ENSEMBLE_PARAMS:
            assert reloaded.get_params()[name] == estimator.get_params()[name]
        assert reloaded.backbone_.ensemble == estimator.backbone_.ensemble
        np.testing.assert_array_equal(reloaded.predict_proba(X), estimator.predict_proba(X))


def test_too_many_classes_is_a_clear_error(weights):
    X = np.random.default_rng(0).normal(size=(60, 3))
    with pytest.raises(ValueError, match="exceed"):
        TabularFMClassifier(weights=weights, device="cpu").fit(X, np.arange(60) % 12)


def test_scikit_learn_estimator_checks(weights):
    # Randomly initialised tiny weights cannot reach the accuracy check_classifiers_train asks for;
    # every other check (API, input validation, NaN, pickling, fit idempotence, ...) must pass.
    expected = {"check_classifiers_train": "randomly initialised tiny backbone: accuracy, not API"}
    results = check_estimator(TabularFMClassifier(weights=str(weights), device="cpu"), on_fail=None,
                              expected_failed_checks=expected)
    failed = [(r["check_name"], r["exception"]) for r in results if r["status"] == "failed"]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) > 30
