"""One fine-tuning run: assemble the training pool of a method, fine-tune, record every metric.

The inference context at validation and test time is always the real train rows, whatever
the method trained on, so methods differ only in the weights they end up with.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.experiment.methods import Method
from causalmixft.io import write_json
from causalmixft.model.backbone import load_model, resolve_device, save_model
from causalmixft.model.finetune import FinetuneConfig, finetune
from causalmixft.seeding import derive_seed


def training_pool(method: Method, train: pd.DataFrame, synthetic: pd.DataFrame | None, size: int) -> pd.DataFrame:
    """The rows a method fine-tunes on; the first ``size`` synthetic rows (nested samples)."""
    parts = []
    if method.uses_real:
        parts.append(train)
    if method.size_dependent:
        if synthetic is None or len(synthetic) < size:
            have = 0 if synthetic is None else len(synthetic)
            raise ValueError(f"method {method.name} at n={size} needs {size} synthetic rows, got {have}")
        parts.append(synthetic.iloc[:size])
    if not parts:
        return train.iloc[:0]
    return pd.concat(parts, ignore_index=True)


def finetune_config(params: dict) -> FinetuneConfig:
    known = FinetuneConfig.__dataclass_fields__
    return FinetuneConfig(**{k: v for k, v in params.items() if k in known})


def run_method(
    method: Method,
    size: int,
    dataset: str,
    fold: int,
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    synthetic: pd.DataFrame | None,
    schema: TableSchema,
    weights: str | Path,
    params: dict,
    backbone: str,
):
    """Fine-tune (or not) and return the best model and the metrics record of DESIGN.md."""
    cfg = finetune_config(params)
    if not method.finetunes:
        cfg = FinetuneConfig(**{**asdict(cfg), "steps": 0})
    seed = derive_seed(dataset, fold, method.name, size)
    try:
        pool = training_pool(method, train, synthetic, size)
    except ValueError as error:
        raise StageError("finetune", dataset, str(error)) from None
    n_classes = len(schema.classes)
    if n_classes < 2:
        raise StageError("finetune", dataset, "fewer than two classes in the schema")
    model = load_model(weights, resolve_device(cfg.device))
    result = finetune(
        model,
        pool_x=schema.encode_features(pool),
        pool_y=schema.encode_labels(pool),
        context_x=schema.encode_features(train),
        context_y=schema.encode_labels(train),
        val_x=schema.encode_features(val),
        val_y=schema.encode_labels(val),
        test_x=schema.encode_features(test),
        test_y=schema.encode_labels(test),
        n_classes=n_classes,
        categorical=schema.categorical_mask(),
        cfg=cfg,
        seed=seed,
    )
    selected = next(point for point in result.curve if point["step"] == result.selected_step)
    metrics = {
        "backbone": backbone,
        "method": method.name,
        "pool": method.pool,
        "generator": method.generator,
        "dataset": dataset,
        "fold": int(fold),
        "size": int(size),
        "n_real_rows": len(train) if method.uses_real else 0,
        "n_synthetic_rows": int(size) if method.size_dependent else 0,
        "n_context_rows": len(train),
        "n_val_rows": len(val),
        "n_test_rows": len(test),
        "seed": seed,
        "device": result.device,
        "wall_time_s": result.wall_time_s,
        "steps_run": result.steps_run,
        "steps_per_second": result.steps_per_second,
        "selected_step": result.selected_step,
        "curve": result.curve,
        "selected": {"step": result.selected_step, "val": selected["val"], "test": selected["test"]},
        "finetune_config": asdict(cfg),
    }
    return result.model, metrics


def save_run(model, metrics: dict, run_dir: str | Path) -> None:
    """``model.safetensors`` + ``config.json`` (the best weights), then ``metrics.json`` last."""
    save_model(model, run_dir, extra={"run": {k: metrics[k] for k in ("method", "dataset", "fold", "size")}})
    write_json(Path(run_dir) / "metrics.json", metrics)
