"""Fine-tuning on real tables: does a recipe move the model, and what does it cost? Prints JSON.

The protocol is the workflow's: each table is prepared and encoded by the workflow's own code;
per outer stratified fold, the held-out fold is the test set (capped at ``--test-max-rows``), and
a stratified real budget from the rest is split 80/20 into train (the fine-tuning pool and the
inference context) and validation (early stopping and step selection). Per dataset it reports
zero-shot and fine-tuned validation and test ROC-AUC (means over folds), steps run, steps per
second and wall time, for each recipe given.

Recipes are compared on VALIDATION ROC-AUC only (``selection`` in the output); test scores are
printed for information and never take part in a choice. ``--recipe NAME=JSON`` adds a recipe
(FinetuneConfig fields over ``--base``). ``--synthetic-size N`` adds, for the last recipe, a run
whose synthetic pool is N CausalMixFT rows drawn by the workflow's own discovery, SCM fit and
sampling on the fold's train rows (config.yaml's discovery/scm/synthetic settings). Usage::

    python bench/bench_finetune.py --datasets credit-g diabetes --folds 3 \\
        --recipe 'slow={"lr": 1e-4}' --recipe 'fast={"lr": 1e-3}' --synthetic-size 256
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.model_selection import train_test_split

from causalmixft.data.prepare import prepare_dataset
from causalmixft.data.schema import TableSchema
from causalmixft.model.backbone import DEFAULT_WEIGHTS, load_model
from causalmixft.model.finetune import FinetuneConfig, FinetuneData, finetune
from causalmixft.model.zeroshot import budget_splits

REPO = Path(__file__).resolve().parents[1]
TABARENA = REPO / "resources" / "tabarena"
SHIPPED = ["anneal", "churn", "coil2000_insurance_policies", "credit-g", "diabetes", "splice"]


def load_table(name: str):
    """The prepared table and its schema, as the workflow's prepare_dataset rule makes them."""
    spec = {"source": f"file:{TABARENA / f'{name}.csv.gz'}", "manifest": str(TABARENA / "MANIFEST.json")}
    table, meta = prepare_dataset(name, spec)
    return table, TableSchema.from_meta(meta)


def fold_splits(y: np.ndarray, folds: int, budget: int, seed: int, test_max_rows: int):
    for rows, test in budget_splits(y, n_folds=folds, budget=budget, seed=seed, test_max_rows=test_max_rows):
        train, val = train_test_split(rows, test_size=0.2, stratify=y[rows], random_state=seed)
        yield train, val, test


def causalmixft_rows(train, schema: TableSchema, size: int, name: str, seed: int):
    """``size`` synthetic rows of the workflow's generator fitted on ``train`` (encoded x, y)."""
    from causalmixft.causal.discover import discover_dag
    from causalmixft.generators.causalmixft import CausalMixFTGenerator
    from causalmixft.generators.draw import SamplingSettings, sample_synthetic

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    dag = discover_dag(train, schema, config["discovery"], seed, name).dag
    generator = CausalMixFTGenerator(name, dag, config["scm"]["quality"]).fit(train, schema, seed)
    rows = sample_synthetic(generator, train, schema, [size], seed, SamplingSettings.from_config(config["synthetic"]),
                            name).prefix(size)
    return schema.encode_features(rows), schema.encode_labels(rows)


def run_dataset(model, name: str, recipes: dict, args) -> dict:
    table, schema = load_table(name)
    x, y, categorical = schema.encode_features(table), schema.encode_labels(table), schema.categorical_mask()
    n_classes = len(schema.classes)
    per_recipe = {recipe: [] for recipe in recipes}
    for fold, (train, val, test) in enumerate(fold_splits(y, args.folds, args.budget, args.seed, args.test_max_rows)):
        for recipe, cfg in recipes.items():
            extra, start = {}, time.perf_counter()
            if recipe.endswith("+causalmixft"):
                sx, sy = causalmixft_rows(table.iloc[train].reset_index(drop=True), schema, args.synthetic_size,
                                          name, args.seed + fold)
                extra = {"synthetic": (sx, sy)}
            data = FinetuneData((x[train], y[train]), (x[train], y[train]), (x[val], y[val]), n_classes, categorical,
                                test=(x[test], y[test]), **extra)
            result = finetune(model, data, cfg, args.seed + fold)
            per_recipe[recipe].append({
                "zeroshot_val": result.curve[0]["val"]["roc_auc"],
                "zeroshot_test": result.curve[0]["test"]["roc_auc"],
                "val": result.selected["val"]["roc_auc"],
                "test": result.selected["test"]["roc_auc"],
                "steps_run": result.steps_run,
                "selected_step": result.selected_step,
                "steps_per_second": result.steps_per_second,
                "wall_s": time.perf_counter() - start,
            })
    summary = {}
    for recipe, folds in per_recipe.items():
        mean = {key: float(np.nanmean([f[key] for f in folds])) for key in folds[0] if folds[0][key] is not None}
        summary[recipe] = {key: round(value, 4) for key, value in mean.items()}
        summary[recipe]["val_gain"] = round(mean["val"] - mean["zeroshot_val"], 4)
        summary[recipe]["test_gain"] = round(mean["test"] - mean["zeroshot_test"], 4)
        summary[recipe]["test_better_folds"] = int(sum(f["test"] > f["zeroshot_test"] for f in folds))
    return {"dataset": name, "n_features": int(x.shape[1]), "n_classes": n_classes, "recipes": summary}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--datasets", nargs="+", default=SHIPPED)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--test-max-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--base", default="{}", help="JSON: FinetuneConfig fields every recipe starts from")
    parser.add_argument("--recipe", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--synthetic-size", type=int, default=0, help="also run the last recipe with this many "
                        "CausalMixFT rows as the synthetic pool")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    base = replace(FinetuneConfig(device="cpu"), **json.loads(args.base))
    recipes = {"default": base}
    for spec in args.recipe:
        name, fields = spec.split("=", 1)
        recipes[name] = replace(base, **json.loads(fields))
    if args.synthetic_size:
        last = list(recipes)[-1]
        recipes[f"{last}+causalmixft"] = recipes[last]
    model = load_model(args.weights)
    start = time.perf_counter()
    datasets = [run_dataset(model, name, recipes, args) for name in args.datasets]
    means = {
        recipe: {key: round(float(np.mean([d["recipes"][recipe][key] for d in datasets])), 4)
                 for key in ("zeroshot_val", "val", "val_gain", "zeroshot_test", "test", "test_gain",
                             "steps_run", "steps_per_second", "wall_s")}
        for recipe in recipes
    }
    for recipe in recipes:
        means[recipe]["datasets_test_better"] = int(sum(d["recipes"][recipe]["test_gain"] > 0 for d in datasets))
    report = {
        "protocol": {"folds": args.folds, "budget": args.budget, "val_fraction": 0.2,
                     "test_max_rows": args.test_max_rows, "seed": args.seed},
        "weights": args.weights,
        "recipes": {name: asdict(cfg) for name, cfg in recipes.items()},
        "synthetic_size": args.synthetic_size,
        "selection": {"criterion": "mean validation ROC-AUC over datasets (test never used)",
                      "chosen": max((r for r in recipes if not r.endswith("+causalmixft")),
                                    key=lambda r: means[r]["val"])},
        "means": means,
        "datasets": datasets,
        "hardware": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "total_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
