"""Run assembly: which rows each method trains on, the metrics record, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from model_helpers import tiny_model

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.experiment.methods import BUILTIN_METHODS, Method, method_sizes, resolve_method
from causalmixft.experiment.runs import run_method, save_run, training_pool
from causalmixft.model.backbone import save_model

META = {
    "dataset": "toy",
    "classes": ["no", "yes"],
    "features": [
        {"name": "x1", "type": "numeric", "integer": False},
        {"name": "x2", "type": "numeric", "integer": False},
        {"name": "colour", "type": "categorical", "integer": False, "levels": ["blue", "red"]},
    ],
}
SCHEMA = TableSchema.from_meta(META)


def toy_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = np.where(rng.random(n) < 0.5, "red", "blue")
    label = np.where(x1 + 0.5 * (colour == "red") > 0.2, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "target": label})


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    directory = tmp_path_factory.mktemp("weights")
    save_model(tiny_model(seed=3), directory)
    return directory


SPLITS = {"train": toy_frame(60, 0), "val": toy_frame(30, 1), "test": toy_frame(50, 2)}
SYNTHETIC = toy_frame(40, 3)
PARAMS = {"steps": 6, "eval_every": 2, "batch_rows": 32, "lr": 1e-3, "warmup_steps": 1, "patience": 5, "device": "cpu"}


def test_pools_follow_the_method():
    train = SPLITS["train"]
    assert len(training_pool(BUILTIN_METHODS["zeroshot"], train, None, 0)) == 0
    assert len(training_pool(BUILTIN_METHODS["finetune"], train, None, 0)) == 60
    mixed = training_pool(BUILTIN_METHODS["causalmixft"], train, SYNTHETIC, 16)
    assert len(mixed) == 76
    pd.testing.assert_frame_equal(mixed.iloc[60:].reset_index(drop=True), SYNTHETIC.iloc[:16])
    only = training_pool(BUILTIN_METHODS["scm_only"], train, SYNTHETIC, 16)
    pd.testing.assert_frame_equal(only, SYNTHETIC.iloc[:16])


def test_a_pool_larger_than_the_draw_is_refused():
    with pytest.raises(ValueError, match="needs 64 synthetic rows, got 40"):
        training_pool(BUILTIN_METHODS["causalmixft"], SPLITS["train"], SYNTHETIC, 64)


def test_sizes_and_methods():
    assert method_sizes(BUILTIN_METHODS["finetune"], [0, 64, 16]) == [0]
    assert method_sizes(BUILTIN_METHODS["scm_only"], [0, 64, 16]) == [16, 64]
    custom = resolve_method("mine", {"mine": {"pool": "synthetic", "generator": "ctgan"}})
    assert custom == Method("mine", "synthetic", "ctgan") and custom.size_dependent and not custom.uses_real
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        resolve_method("nope")
    with pytest.raises(ValueError, match="do not fit"):
        Method("bad", "real", "ctgan")


def run(method: str, size: int, weights, synthetic=SYNTHETIC):
    return run_method(BUILTIN_METHODS[method], size, "toy", 0, SPLITS["train"], SPLITS["val"], SPLITS["test"],
                      synthetic, SCHEMA, weights, PARAMS, "tiny")


def test_zeroshot_is_one_evaluation_of_the_pretrained_model(weights):
    _, metrics = run("zeroshot", 0, weights, None)
    assert metrics["steps_run"] == 0 and metrics["selected_step"] == 0
    assert [point["step"] for point in metrics["curve"]] == [0]
    assert metrics["n_real_rows"] == 0 and metrics["n_context_rows"] == 60


def test_metrics_record_and_determinism(weights, tmp_path):
    model, first = run("causalmixft", 16, weights)
    _, second = run("causalmixft", 16, weights)
    drop = ("wall_time_s", "steps_per_second")
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    assert first["n_real_rows"] == 60 and first["n_synthetic_rows"] == 16
    steps = [point["step"] for point in first["curve"]]
    assert steps[0] == 0 and first["selected_step"] in steps
    selected = first["curve"][steps.index(first["selected_step"])]
    assert first["selected"]["val"] == selected["val"] and first["selected"]["test"] == selected["test"]
    # Validation selects: no evaluated step has a strictly better validation ROC-AUC than the selected one.
    assert max(p["val"]["roc_auc"] for p in first["curve"]) == first["selected"]["val"]["roc_auc"]
    for split in ("val", "test"):
        assert set(selected[split]) == {"roc_auc", "accuracy", "balanced_accuracy", "log_loss"}

    save_run(model, first, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["seed"] == first["seed"]
    assert (tmp_path / "run" / "model.safetensors").stat().st_size > 0


def test_seeds_differ_between_methods_and_sizes(weights):
    seeds = {run(m, s, weights)[1]["seed"] for m, s in [("causalmixft", 16), ("causalmixft", 32), ("scm_only", 16)]}
    assert len(seeds) == 3


def test_missing_synthetic_rows_name_the_dataset_and_stage(weights):
    with pytest.raises(StageError, match=r"\[finetune\] toy: method causalmixft at n=64 needs 64"):
        run("causalmixft", 64, weights)
