"""Run assembly: which rows each method trains on, the metrics record, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from model_helpers import tiny_model
from test_aggregate_fixtures import CONTRACT_KEYS, REPLICATE_KEYS

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.methods import BUILTIN_METHODS, Method, resolve_method
from causalmixft.experiment.runs import Replication, RunCell, RunRows, replicate_seed, run_method, save_run, training_pools
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
    real, synthetic, _ = training_pools(BUILTIN_METHODS["zeroshot"], train, None, 0)
    assert len(real) == 0 and synthetic is None
    real, synthetic, _ = training_pools(BUILTIN_METHODS["finetune"], train, None, 0)
    assert len(real) == 60 and synthetic is None
    real, synthetic, selection = training_pools(BUILTIN_METHODS["causalmixft"], train, SYNTHETIC, 16, 8)
    assert selection is None  # only a method that selects on synthetic rows reads past its size
    assert len(real) == 60
    pd.testing.assert_frame_equal(synthetic, SYNTHETIC.iloc[:16])  # nested: the first n rows
    real, synthetic, _ = training_pools(BUILTIN_METHODS["scm_only"], train, SYNTHETIC, 16)
    assert len(real) == 0 and len(synthetic) == 16


def test_a_pool_larger_than_the_draw_is_refused():
    with pytest.raises(ValueError, match="needs 64 synthetic rows, got 40"):
        training_pools(BUILTIN_METHODS["causalmixft"], SPLITS["train"], SYNTHETIC, 64)


def test_a_method_selecting_on_synthetic_rows_gets_the_rows_after_its_training_rows():
    real, synthetic, selection = training_pools(BUILTIN_METHODS["causalmixft_synthval"], SPLITS["train"], SYNTHETIC, 16, 8)
    assert len(real) == 60
    pd.testing.assert_frame_equal(synthetic, SYNTHETIC.iloc[:16])  # the same training rows as causalmixft
    pd.testing.assert_frame_equal(selection, SYNTHETIC.iloc[16:24].reset_index(drop=True))  # never trained on
    with pytest.raises(ValueError, match="needs 48 synthetic rows, got 40"):
        training_pools(BUILTIN_METHODS["causalmixft_synthval"], SPLITS["train"], SYNTHETIC, 40, 8)


def test_methods_resolve_by_name_or_from_the_config():
    custom = resolve_method("mine", {"mine": {"pool": "synthetic", "generator": "ctgan"}})
    assert custom == Method("mine", "synthetic", "ctgan") and custom.size_dependent and not custom.uses_real
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        resolve_method("nope")
    with pytest.raises(ValueError, match="do not fit"):
        Method("bad", "real", "ctgan")


def run(method: str, size: int, weights, synthetic=SYNTHETIC, replicates=2, params=PARAMS):
    rows = RunRows(SPLITS["train"], SPLITS["val"], SPLITS["test"], synthetic, SCHEMA)
    return run_method(BUILTIN_METHODS[method], RunCell("toy", 0, 48, size), rows, weights, params, "tiny",
                      Replication(seeds=replicates, protocol_seed=0, selection_rows=8))


def test_zeroshot_is_one_evaluation_of_the_pretrained_model_standing_for_every_replicate(weights):
    _, metrics = run("zeroshot", 0, weights, None)
    assert metrics["steps_run"] == 0 and metrics["n_replicates"] == 2
    first, second = metrics["replicates"]
    assert [point["step"] for point in first["curve"]] == [0] and first["stop_reason"] == "no_steps"
    assert first["curve"] == second["curve"] and first["seed"] != second["seed"]
    assert metrics["replicate_sd"]["test"]["roc_auc"] == 0.0
    assert metrics["n_real_rows"] == 0 and metrics["n_context_rows"] == 60


def test_metrics_record_and_determinism(weights, tmp_path):
    model, first = run("causalmixft", 16, weights)
    _, second = run("causalmixft", 16, weights)
    drop = ("wall_time_s", "steps_per_second")

    def stable(record):
        replicates = [{k: v for k, v in r.items() if k not in drop} for r in record["replicates"]]
        return {**{k: v for k, v in record.items() if k not in drop}, "replicates": replicates}

    assert stable(first) == stable(second)
    assert set(first) == CONTRACT_KEYS and all(set(r) == REPLICATE_KEYS for r in first["replicates"])
    assert first["n_real_rows"] == 60 and first["n_synthetic_rows"] == 16 and first["n_replicates"] == 2
    for replicate in first["replicates"]:
        steps = [point["step"] for point in replicate["curve"]]
        assert steps[0] == 0 and replicate["selected_step"] in steps
        selected = replicate["curve"][steps.index(replicate["selected_step"])]
        assert replicate["selected"]["val"] == selected["val"] and replicate["selected"]["test"] == selected["test"]
        # Validation selects: no evaluated step has a strictly better validation ROC-AUC.
        assert max(p["val"]["roc_auc"] for p in replicate["curve"]) == selected["val"]["roc_auc"]
        assert replicate["real_share"] == 0.5  # fixed_share with the default real_share
    # The run's scores are the replicate means; the spread is their standard deviation.
    for split in ("val", "test"):
        values = [r["selected"][split]["roc_auc"] for r in first["replicates"]]
        assert first["selected"][split]["roc_auc"] == pytest.approx(np.mean(values))
        assert first["replicate_sd"][split]["roc_auc"] == pytest.approx(np.std(values, ddof=1))
    save_run(model, first, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["replicates"][1]["seed"] == \
        first["replicates"][1]["seed"]
    assert (tmp_path / "run" / "model.safetensors").stat().st_size > 0
    save_run(model, first, tmp_path / "lean", keep_weights=False)  # finetune.keep_weights: false
    assert sorted(path.name for path in (tmp_path / "lean").iterdir()) == ["config.json", "metrics.json"]
    assert (tmp_path / "lean" / "config.json").read_text() == (tmp_path / "run" / "config.json").read_text()


def test_replicate_seeds_are_shared_by_methods_and_sizes_and_differ_by_replicate(weights):
    runs = [run(m, s, weights)[1] for m, s in [("finetune", 0), ("causalmixft", 16), ("causalmixft", 32),
                                                ("scm_only", 16)]]
    seeds = {tuple(r["seed"] for r in metrics["replicates"]) for metrics in runs}
    assert len(seeds) == 1  # common random numbers across methods and sizes
    (pair,) = seeds
    assert pair[0] != pair[1] and pair == (replicate_seed("toy", 0, 0, 0), replicate_seed("toy", 0, 1, 0))
    assert replicate_seed("toy", 0, 0, 1) != pair[0]  # protocol.seed moves every replicate


def test_missing_synthetic_rows_name_the_dataset_and_stage(weights):
    with pytest.raises(StageError, match=r"\[finetune\] toy: method causalmixft at n=64 needs 64"):
        run("causalmixft", 64, weights)


def test_a_synthval_run_selects_on_real_and_scm_rows_and_keeps_the_real_validation_apart(weights):
    from causalmixft.analysis.collect import chooser_as_val

    _, metrics = run("causalmixft_synthval", 16, weights, replicates=1)
    replicate = metrics["replicates"][0]
    assert set(replicate["selected"]) == {"step", "val", "test", "select"}
    assert metrics["n_selection_rows"] == metrics["n_val_rows"] + 8
    assert all("select" in point for point in replicate["curve"])
    # the step is the best of the selection set (ties: the earlier step), not of the real validation rows
    best = max(point["select"]["roc_auc"] for point in replicate["curve"])
    assert replicate["selected"]["select"]["roc_auc"] == best
    # as the tables read it: val is the set that chose, val_real the real validation rows
    read = chooser_as_val(metrics)["replicates"][0]
    assert read["selected"]["val"] == replicate["selected"]["select"]
    assert read["selected"]["val_real"] == replicate["selected"]["val"]
