"""Fixture generator for the aggregate tests: metrics.json files in the run contract's exact schema.

Other aggregate test modules import these helpers; the test here pins the schema itself, so a
change of the contract has to be made here on purpose.
"""

from __future__ import annotations

from pathlib import Path

from causalmixft.experiment.collect import metrics_path
from causalmixft.io import read_json, write_json

BACKBONE = "tfm-small"
CONTRACT_KEYS = {
    "backbone",
    "method",
    "dataset",
    "fold",
    "size",
    "n_real_rows",
    "n_synthetic_rows",
    "seed",
    "device",
    "wall_time_s",
    "steps_run",
    "selected_step",
    "curve",
    "selected",
    "finetune_config",
}
METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "log_loss")
FILLER = {"roc_auc": 0.75, "accuracy": 0.7, "balanced_accuracy": 0.65, "log_loss": 0.5}


def scores(**given: float) -> dict:
    """A full metric dict: the given values, the filler for the others."""
    return {metric: given.get(metric, FILLER[metric]) for metric in METRICS}


def write_run(
    runs_root: Path,
    method: str,
    dataset: str,
    fold: int,
    size: int,
    val: list[dict],
    test: list[dict],
    selected: int | None = None,
    eval_every: int = 10,
) -> Path:
    """Write one run whose curve has one point per entry of ``val``/``test`` (metric dicts).

    ``selected`` is the index of the validation-selected point (default: the last point).
    """
    assert len(val) == len(test) and val
    index = len(val) - 1 if selected is None else selected
    steps = [i * eval_every for i in range(len(val))]
    curve = [
        {"step": step, "train_loss": None if step == 0 else 0.5, "val": scores(**v), "test": scores(**t)}
        for step, v, t in zip(steps, val, test)
    ]
    record = {
        "backbone": BACKBONE,
        "method": method,
        "dataset": dataset,
        "fold": fold,
        "size": size,
        "n_real_rows": 0 if method == "scm_only" else 204,
        "n_synthetic_rows": size,
        "seed": 1000 + fold,
        "device": "cpu",
        "wall_time_s": 1.5 + fold,
        "steps_run": steps[-1],
        "selected_step": steps[index],
        "curve": curve,
        "selected": {"step": steps[index], "val": curve[index]["val"], "test": curve[index]["test"]},
        "finetune_config": {"steps": steps[-1], "lr": 1e-4, "eval_every": eval_every},
    }
    path = metrics_path(runs_root, method, dataset, fold, size)
    write_json(path, record)
    return path


def grid_files(runs_root: Path, expected) -> list[Path]:
    """The metrics.json path of every run of ``expected`` (written or not)."""
    return [metrics_path(runs_root, *key) for key in expected]


def write_point(runs_root: Path, method: str, dataset: str, fold: int, size: int, **score: float) -> Path:
    """A single-point run (like zero-shot) with the same scores on validation and test."""
    return write_run(runs_root, method, dataset, fold, size, [score], [score])


def test_fixture_writes_exactly_the_contract_schema(tmp_path):
    path = write_run(
        tmp_path, "causalmixft", "diabetes", 0, 256, [{"roc_auc": 0.8}] * 2, [{"roc_auc": 0.7}] * 2, selected=0
    )
    record = read_json(path)
    assert set(record) == CONTRACT_KEYS
    assert path == tmp_path / "causalmixft" / "diabetes" / "fold0" / "n256" / "metrics.json"
    assert [p["step"] for p in record["curve"]] == [0, 10]
    assert record["selected"] == {"step": 0, "val": record["curve"][0]["val"], "test": record["curve"][0]["test"]}
    assert set(record["selected"]["test"]) == set(METRICS)
