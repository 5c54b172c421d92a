"""Fine-tuning on real tables: does a recipe move the model, and what does it cost? Prints JSON.

The protocol is the workflow's: per outer stratified fold, the held-out fold is the test set
(capped at ``--test-max-rows``), and a stratified real budget from the rest is split 80/20 into
train (the fine-tuning pool and the inference context) and validation (early stopping and step
selection). Per dataset it reports zero-shot and fine-tuned validation and test ROC-AUC (means
over folds), steps run, steps per second and wall time, for each recipe given.

Recipes are compared on VALIDATION ROC-AUC only (``selection`` in the output); test scores are
printed for information and never take part in a choice. ``--recipe NAME=JSON`` adds a recipe
(FinetuneConfig fields over the defaults); ``--synthetic-copies`` adds, for the first recipe, a
run whose synthetic pool is a jittered bootstrap of the train rows (a cheap stand-in generator
that exercises the real + synthetic episode path at one synthetic size; the workflow's
CausalMixFT samples are measured by ``make run``). Usage::

    python bench/bench_finetune.py --datasets credit-g diabetes --folds 3 \\
        --recipe 'slow={"lr": 1e-4}' --recipe 'fast={"lr": 1e-3}'
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, replace

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from causalmixft.model.backbone import DEFAULT_WEIGHTS, load_model
from causalmixft.model.finetune import FinetuneConfig, finetune
from causalmixft.model.zeroshot import budget_splits, load_tabarena_arrays

SHIPPED = ["anneal", "churn", "coil2000_insurance_policies", "credit-g", "diabetes", "splice"]


def fold_splits(y: np.ndarray, folds: int, budget: int, seed: int, test_max_rows: int):
    for rows, test in budget_splits(y, n_folds=folds, budget=budget, seed=seed, test_max_rows=test_max_rows):
        train, val = train_test_split(rows, test_size=0.2, stratify=y[rows], random_state=seed)
        yield train, val, test


def jittered_copies(x: np.ndarray, y: np.ndarray, n: int, categorical: np.ndarray, rng) -> tuple:
    """``n`` bootstrap rows of (x, y) with Gaussian noise (0.1 SD) on the numeric columns."""
    rows = rng.integers(len(y), size=n)
    noisy = x[rows].copy()
    numeric = ~categorical
    scale = np.nanstd(x[:, numeric], axis=0) * 0.1
    noisy[:, numeric] += rng.normal(size=(n, int(numeric.sum()))) * np.nan_to_num(scale)
    return noisy.astype(np.float32), y[rows]


def run_dataset(model, name: str, recipes: dict, args) -> dict:
    x, y, categorical = load_tabarena_arrays(name)
    n_classes = int(y.max()) + 1
    per_recipe = {recipe: [] for recipe in recipes}
    for fold, (train, val, test) in enumerate(fold_splits(y, args.folds, args.budget, args.seed, args.test_max_rows)):
        for recipe, cfg in recipes.items():
            extra = {}
            if recipe.endswith("+synthetic"):
                rng = np.random.default_rng(args.seed + fold)
                sx, sy = jittered_copies(x[train], y[train], args.synthetic_size, categorical, rng)
                extra = {"synthetic_x": sx, "synthetic_y": sy}
            start = time.perf_counter()
            result = finetune(model, x[train], y[train], x[train], y[train], x[val], y[val], x[test], y[test],
                              n_classes, categorical, cfg, args.seed + fold, **extra)
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
    parser.add_argument("--synthetic-size", type=int, default=0, help="also run the first recipe with this many "
                        "jittered bootstrap rows as the synthetic pool")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    base = replace(FinetuneConfig(device="cpu"), **json.loads(args.base))
    recipes = {"default": base}
    for spec in args.recipe:
        name, fields = spec.split("=", 1)
        recipes[name] = replace(base, **json.loads(fields))
    if args.synthetic_size:
        first = list(recipes)[-1] if args.recipe else "default"
        recipes[f"{first}+synthetic"] = recipes[first]
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
                      "chosen": max((r for r in recipes if not r.endswith("+synthetic")),
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
