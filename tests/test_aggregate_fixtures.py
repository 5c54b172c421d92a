"""Fixture generator for the aggregate tests: metrics.json files in the run contract's exact schema.

Other aggregate test modules import these helpers; the test here pins the schema itself, so a
change of the contract has to be made here on purpose.
"""

from __future__ import annotations

from pathlib import Path

from causalmixft import layout
from causalmixft.io import read_json, write_json

BACKBONE = "tfm-small"
CONTRACT_KEYS = {
    "backbone",
    "method",
    "pool",
    "generator",
    "dataset",
    "fold",
    "real_budget",
    "size",
    "n_real_rows",
    "n_synthetic_rows",
    "n_context_rows",
    "n_val_rows",
    "n_selection_rows",
    "n_test_rows",
    "n_replicates",
    "device",
    "peak_gpu_memory_mb",
    "wall_time_s",
    "steps_run",
    "real_share",
    "selected",
    "replicate_sd",
    "replicates",
    "finetune_config",
    "backbone_provenance",
}
REPLICATE_KEYS = {
    "replicate",
    "seed",
    "steps_run",
    "selected_step",
    "stop_reason",
    "real_share",
    "synthetic_rows_seen",
    "steps_per_second",
    "peak_gpu_memory_mb",
    "wall_time_s",
    "selected",
    "curve",
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
    replicates: list[tuple] | None = None,
    budget: int | None = None,
) -> Path:
    """Write one run whose curve has one point per entry of ``val``/``test`` (metric dicts).

    ``selected`` is the index of the validation-selected point (default: the last point).
    ``replicates``: one ``(val, test, selected)`` per fine-tuning replicate instead (default: one
    replicate with the curve above).
    """
    replicates = replicates or [(val, test, selected)]
    entries = [_replicate(r, *spec, eval_every, fold) for r, spec in enumerate(replicates)]
    record = {
        "backbone": BACKBONE,
        "method": method,
        "pool": "synthetic" if method == "scm_only" else "real",
        "generator": None,
        "dataset": dataset,
        "fold": fold,
        "real_budget": budget or BUDGET,
        "size": size,
        "n_real_rows": 0 if method == "scm_only" else 204,
        "n_synthetic_rows": size,
        "n_context_rows": 204,
        "n_val_rows": 52,
        "n_selection_rows": 52,
        "n_test_rows": 300,
        "n_replicates": len(entries),
        "device": "cpu",
        "peak_gpu_memory_mb": None,
        "wall_time_s": 1.5 + fold,
        "steps_run": sum(e["steps_run"] for e in entries),
        "real_share": 0.5,
        "selected": {split: _mean_of(entries, split) for split in ("val", "test")},
        "replicate_sd": {split: {m: 0.0 for m in METRICS} for split in ("val", "test")},
        "replicates": entries,
        "finetune_config": {"steps": entries[0]["steps_run"], "lr": 1e-4, "eval_every": eval_every},
        "backbone_provenance": None,  # the built-in model; adapters record package and checkpoint
    }
    path = metrics_path(runs_root, method, dataset, fold, size, budget or BUDGET)
    write_json(path, record)
    return path


def _replicate(replicate: int, val: list[dict], test: list[dict], selected: int | None, eval_every: int,
               fold: int) -> dict:
    assert len(val) == len(test) and val
    index = len(val) - 1 if selected is None else selected
    steps = [i * eval_every for i in range(len(val))]
    curve = [
        {"step": step, "train_loss": None if step == 0 else 0.5, "val": scores(**v), "test": scores(**t)}
        for step, v, t in zip(steps, val, test)
    ]
    return {
        "replicate": replicate,
        "seed": 1000 + 10 * fold + replicate,
        "steps_run": steps[-1],
        "selected_step": steps[index],
        "stop_reason": "step_cap" if steps[-1] else "no_steps",
        "real_share": 0.5,
        "synthetic_rows_seen": 0,
        "steps_per_second": 10.0,
        "peak_gpu_memory_mb": None,
        "wall_time_s": 1.0,
        "selected": {"step": steps[index], "val": curve[index]["val"], "test": curve[index]["test"]},
        "curve": curve,
    }


def _mean_of(entries: list[dict], split: str) -> dict:
    """Replicate means as runs.py writes them: over the non-null values, null when there are none."""
    means = {}
    for metric in METRICS:
        values = [e["selected"][split][metric] for e in entries if e["selected"][split][metric] is not None]
        means[metric] = sum(values) / len(values) if values else None
    return means


# The real budget of every fixture run: the analysis below the aggregate's per-budget loop
# (build_tables, Study) sees one budget at a time and keys runs by (method, dataset, fold, size).
BUDGET = 256


def metrics_path(runs_root: Path, method: str, dataset: str, fold: int, size: int, budget: int = BUDGET) -> Path:
    """``{runs_root}/{method}/{dataset}/fold{fold}/real{budget}/n{size}/metrics.json``."""
    run = layout.fill(layout.tail(layout.RUN, "method"), method=method, dataset=dataset, fold=fold, budget=budget, size=size)
    return Path(runs_root) / run / "metrics.json"


def with_budget(expected) -> list[tuple]:
    """(method, dataset, fold, size) keys as the loader takes them, at the fixtures' budget."""
    return [(m, d, f, BUDGET, s) for m, d, f, s in expected]


def grid_files(runs_root: Path, expected) -> list[Path]:
    """The metrics.json path of every run of ``expected`` (written or not)."""
    return [metrics_path(runs_root, *key) for key in expected]


def write_point(runs_root: Path, method: str, dataset: str, fold: int, size: int, budget: int | None = None,
                **score: float) -> Path:
    """A single-point run (like zero-shot) with the same scores on validation and test."""
    return write_run(runs_root, method, dataset, fold, size, [score], [score], budget=budget)


def test_fixture_writes_exactly_the_contract_schema(tmp_path):
    path = write_run(
        tmp_path, "causalmixft", "diabetes", 0, 256, [{"roc_auc": 0.8}] * 2, [{"roc_auc": 0.7}] * 2, selected=0
    )
    record = read_json(path)
    assert set(record) == CONTRACT_KEYS
    assert path == tmp_path / "causalmixft" / "diabetes" / "fold0" / f"real{BUDGET}" / "n256" / "metrics.json"
    (replicate,) = record["replicates"]
    assert set(replicate) == REPLICATE_KEYS
    assert [p["step"] for p in replicate["curve"]] == [0, 10]
    assert replicate["selected"] == {"step": 0, "val": replicate["curve"][0]["val"],
                                     "test": replicate["curve"][0]["test"]}
    assert record["selected"] == {"val": replicate["selected"]["val"], "test": replicate["selected"]["test"]}
    assert set(record["selected"]["test"]) == set(METRICS)
