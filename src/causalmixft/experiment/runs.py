"""One fine-tuning run: assemble the training pools of a method, fine-tune, record every metric.

A run is one (method, dataset, fold, size) cell and holds ``replicates`` fine-tuning
replicates. Replicate r's seed is a function of (dataset, fold, r, protocol seed) only, not of
the method or the size, so every method and size of a fold is compared under common random
numbers (see model/finetune.py: the real part of each episode is then identical). A method that
does not fine-tune is deterministic: its one evaluation stands for every replicate.

The inference context at validation and test time is always the real train rows, whatever
the method trained on, so methods differ only in the weights they end up with.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.methods import Method
from causalmixft.io import write_json
from causalmixft.model.backbone import resolve_device
from causalmixft.model.interface import BuiltinBackbone, as_backbone, load_backbone
from causalmixft.model.finetune import FinetuneConfig, FinetuneData, finetune
from causalmixft.seeding import derive_seed


def training_pools(method: Method, train: pd.DataFrame, synthetic: pd.DataFrame | None,
                   size: int, selection_rows: int = 0) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """(real rows, synthetic rows or None, synthetic selection rows or None) of a method: it trains
    on the first ``size`` rows of the generator's draw (nested samples); a method that selects on
    synthetic rows also gets the next ``selection_rows``, which it never trains on."""
    real = train if method.uses_real else train.iloc[:0]
    if not method.size_dependent:
        return real, None, None
    extra = selection_rows if method.selects_on_synthetic else 0
    if synthetic is None or len(synthetic) < size + extra:
        have = 0 if synthetic is None else len(synthetic)
        raise ValueError(f"method {method.name} at n={size} needs {size + extra} synthetic rows, got {have}")
    selection = synthetic.iloc[size : size + extra].reset_index(drop=True) if extra else None
    return real, synthetic.iloc[:size], selection


def replicate_seed(dataset: str, fold: int, replicate: int, protocol_seed: int) -> int:
    """The seed of one fine-tuning replicate: the same for every method and size of a fold."""
    return derive_seed(dataset, int(fold), int(replicate), int(protocol_seed))


def finetune_config(params: dict) -> FinetuneConfig:
    known = FinetuneConfig.__dataclass_fields__
    return FinetuneConfig(**{k: v for k, v in params.items() if k in known})


@dataclass(frozen=True)
class RunCell:
    """Which run: one (dataset, fold, real budget, synthetic size) cell of a method."""

    dataset: str
    fold: int
    budget: int
    size: int


@dataclass(frozen=True)
class RunRows:
    """What a run reads: the fold's splits at its budget, the generator's draw, their schema."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    synthetic: pd.DataFrame | None
    schema: TableSchema


@dataclass(frozen=True)
class Replication:
    """How a run repeats (config ``replicates``): paired replicates, the protocol seed, and the
    synthetic selection rows of a method that selects on them."""

    seeds: int = 1
    protocol_seed: int = 0
    selection_rows: int = 0


def run_method(method: Method, cell: RunCell, rows: RunRows, weights: str | Path, params: dict, backbone: str,
               replication: Replication = Replication()):
    """Fine-tune (or not) every replicate; return replicate 0's best model and the metrics record.

    The record's ``selected`` holds the replicate means of the validation-selected scores (runs
    -> replicates), ``replicate_sd`` their standard deviation across replicates, and
    ``replicates`` every replicate's seed, curve, selected step, stop reason and realised real
    share.
    """
    dataset, fold, size = cell.dataset, cell.fold, cell.size
    train, val, test, schema = rows.train, rows.val, rows.test, rows.schema
    cfg = finetune_config(params)
    if not method.finetunes:
        cfg = FinetuneConfig(**{**asdict(cfg), "steps": 0})
    try:
        real, synthetic_rows, synthetic_selection = training_pools(method, train, rows.synthetic, size,
                                                                   replication.selection_rows)
    except ValueError as error:
        raise StageError("finetune", dataset, str(error)) from None
    n_classes = len(schema.classes)
    if n_classes < 2:
        raise StageError("finetune", dataset, "fewer than two classes in the schema")
    model = load_backbone(weights, resolve_device(cfg.device))
    if isinstance(model, BuiltinBackbone):
        model = model.module  # the built-in transformer goes in as a plain module, as before
    else:
        # The inference ensemble is the built-in backbone's option (config.yaml sets it for that
        # one); a published model's run records it as unused.
        cfg = FinetuneConfig(**{**asdict(cfg), "n_class_shifts": None, "n_estimators": None})
    selection = None
    if synthetic_selection is not None:
        # the selection set: the real validation rows plus SCM rows the run never trains on
        selection = pd.concat([val, synthetic_selection], ignore_index=True)
    data = FinetuneData(
        pool=_encoded(schema, real),
        context=_encoded(schema, train),
        val=_encoded(schema, val),
        test=_encoded(schema, test),
        synthetic=None if synthetic_rows is None else _encoded(schema, synthetic_rows),
        select=None if selection is None else _encoded(schema, selection),
        n_classes=n_classes,
        categorical=schema.categorical_mask(),
    )
    splits = ("val", "test", "select") if synthetic_selection is not None else ("val", "test")
    results, best_model = [], None
    for replicate in range(int(replication.seeds)):
        seed = replicate_seed(dataset, fold, replicate, replication.protocol_seed)
        if results and not method.finetunes:
            results.append({**results[0], "replicate": replicate, "seed": seed})
            continue
        try:
            result = finetune(model, data, cfg, seed)
        except ValueError as error:
            raise StageError("finetune", dataset, f"{method.name} n={size} replicate {replicate}: {error}") from None
        best_model = result.model if best_model is None else best_model
        results.append({
            "replicate": replicate,
            "seed": seed,
            "steps_run": result.steps_run,
            "selected_step": result.selected_step,
            "stop_reason": result.stop_reason,
            "real_share": result.real_share,
            "synthetic_rows_seen": result.synthetic_rows_seen,
            "steps_per_second": result.steps_per_second,
            "peak_gpu_memory_mb": result.peak_gpu_memory_mb,
            "wall_time_s": result.wall_time_s,
            "selected": {"step": result.selected_step, **{split: result.selected[split] for split in splits}},
            "curve": result.curve,
        })
    metrics = {
        "backbone": backbone,
        "method": method.name,
        "pool": method.pool,
        "generator": method.generator,
        "dataset": dataset,
        "fold": int(fold),
        "real_budget": int(cell.budget),
        "size": int(size),
        "n_real_rows": len(real),
        "n_synthetic_rows": 0 if synthetic_rows is None else len(synthetic_rows),
        "n_context_rows": len(train),
        "n_val_rows": len(val),
        "n_selection_rows": len(val) + (0 if synthetic_selection is None else len(synthetic_selection)),
        "n_test_rows": len(test),
        "n_replicates": len(results),
        "device": str(resolve_device(cfg.device)),
        "peak_gpu_memory_mb": max((r["peak_gpu_memory_mb"] for r in results if r["peak_gpu_memory_mb"] is not None),
                                  default=None),
        "wall_time_s": round(sum(r["wall_time_s"] for r in (results if method.finetunes else results[:1])), 3),
        "steps_run": int(sum(r["steps_run"] for r in results)),
        "real_share": _mean([r["real_share"] for r in results]),
        "selected": {split: _replicate_stat(results, split, np.mean) for split in splits},
        "replicate_sd": {split: _replicate_stat(results, split, _sd) for split in splits},
        "replicates": results,
        "finetune_config": asdict(cfg),
        # Published models (causalmixft.model.adapters): package version and checkpoint sha256.
        "backbone_provenance": model.provenance() if hasattr(model, "provenance") else None,
    }
    return best_model, metrics


def _encoded(schema: TableSchema, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return schema.encode_features(frame), schema.encode_labels(frame)


def _replicate_stat(results: list[dict], split: str, statistic) -> dict:
    """``statistic`` over replicates of every metric at the selected step; null where none is finite."""
    metrics = sorted({m for r in results for m in r["selected"][split]})
    out = {}
    for metric in metrics:
        values = np.array([np.nan if r["selected"][split].get(metric) is None else r["selected"][split][metric]
                           for r in results], float)
        finite = values[np.isfinite(values)]
        out[metric] = float(statistic(finite)) if len(finite) else None
    return out


def _sd(values: np.ndarray) -> float:
    """Sample standard deviation (ddof 1); 0 for a single replicate."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _mean(values: list) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.mean(finite)), 4) if finite else None


def save_run(model, metrics: dict, run_dir: str | Path, keep_weights: bool = True) -> None:
    """``model.safetensors`` + ``config.json`` (the best weights), then ``metrics.json`` last.

    Without ``keep_weights`` only the weights' ``config.json`` is kept (finetune.keep_weights).
    """
    run_dir = Path(run_dir)
    run = {"run": {k: metrics[k] for k in ("method", "dataset", "fold", "real_budget", "size")}}
    # The weights are replicate 0's: the others differ only by their fine-tuning seed.
    if keep_weights:
        as_backbone(model).save(run_dir, extra=run)
    else:  # the backbone's own writer, for the same config.json; its weights file is dropped
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=run_dir) as scratch:
            as_backbone(model).save(scratch, extra=run)
            os.replace(Path(scratch) / "config.json", run_dir / "config.json")
    write_json(run_dir / "metrics.json", metrics)
