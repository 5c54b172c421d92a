"""What each kind of inference-ensemble member adds, on VALIDATION rows only; prints JSON.

Per dataset and fold: the stratified budget (256 rows, as in bench_zeroshot) is split 80/20 into
context and validation rows, exactly as the workflow splits its real rows; test rows are never
touched. Every member of a pool (each class shift x preprocessing, then the same again with
permuted category codes; own feature subsets on wide tables) is predicted once, and each
ensemble setting is scored as the mean of its members' probabilities: validation ROC-AUC (mean
over folds, then over datasets), forward passes and seconds per prediction. Settings:

- ``single``: one pass (shift 0, raw features);
- ``shifts``: every class shift, raw features (the previous default with n_class_shifts=10);
- ``preprocessing``: shift 0, each applicable preprocessing;
- ``shifts+quantile``, ``shifts+log``, ``shifts+all_preprocessing``: every shift x those;
- ``+category_orders``: the whole pool;
- ``n_estimators=k``: the first k members, which is what ``n_estimators=k`` predicts.

Usage::

    python bench/bench_ensemble.py [WEIGHTS_DIR] [--data-dir DIR] [--datasets A B] [--folds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from causalmixft.metrics import roc_auc
from causalmixft.model.backbone import DEFAULT_WEIGHTS, load_model, member_probabilities, plan_members
from causalmixft.model.ensemble import Ensemble, applicable_preprocessings
from causalmixft.model.zeroshot import TABARENA_DIR, budget_splits, load_tabarena_arrays

PREFIXES = (1, 2, 4, 8, 16, 32)


def settings(pool, n_grid: int) -> dict[str, list[int]]:
    """Setting name -> indices of its members in the pool (the pool is n_estimators order)."""
    first_round = range(min(n_grid, len(pool)))
    kinds = {pool[i].preprocessing for i in first_round}
    out = {"single": [0],
           "shifts": [i for i in first_round if pool[i].preprocessing == "none"],
           "preprocessing": [i for i in first_round if pool[i].class_shift == 0]}
    for name, allowed in (("shifts+quantile", {"none", "quantile"}), ("shifts+log", {"none", "log"}),
                          ("shifts+all_preprocessing", kinds)):
        out[name] = [i for i in first_round if pool[i].preprocessing in allowed]
    out["+category_orders"] = list(range(len(pool)))
    for k in PREFIXES:
        out[f"n_estimators={k}"] = list(range(min(k, len(pool))))
    return out


def evaluate(model, name: str, directory: Path, n_folds: int, budget: int, seed: int) -> list[dict]:
    x, y, categorical = load_tabarena_arrays(name, directory)
    n_classes = int(y.max()) + 1
    rows = []
    for fold, (budget_rows, _test_never_used) in enumerate(budget_splits(y, n_folds, budget, seed)):
        context, val = train_test_split(budget_rows, test_size=0.2, stratify=y[budget_rows], random_state=seed + fold)
        n_grid = n_classes * len(applicable_preprocessings(x[context], categorical))
        pool_size = max(2 * n_grid, max(PREFIXES))
        pool = plan_members(model.cfg, x[context], n_classes, categorical,
                            Ensemble(n_estimators=pool_size, n_class_shifts=None), random_state=seed + fold)
        probas, seconds = [], []
        tick = time.perf_counter()
        for _, proba in member_probabilities(model, x[context], y[context], x[val], n_classes, categorical, pool):
            seconds.append(time.perf_counter() - tick)
            probas.append(proba)
            tick = time.perf_counter()
        for setting, members in settings(pool, n_grid).items():
            rows.append({"dataset": name, "fold": fold, "setting": setting, "passes": len(members),
                         "seconds": float(np.sum([seconds[i] for i in members])),
                         "val_roc_auc": roc_auc(y[val], np.mean([probas[i] for i in members], axis=0))})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="?", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--data-dir", type=Path, default=TABARENA_DIR)
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every table in the manifest")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    datasets = args.datasets or [entry["file"].removesuffix(".csv.gz") for entry in
                                 json.loads((args.data_dir / "MANIFEST.json").read_text())["datasets"]]
    model = load_model(args.weights)
    table = pd.DataFrame([row for name in datasets
                          for row in evaluate(model, name, args.data_dir, args.folds, args.budget, args.seed)])
    per_dataset = table.groupby(["dataset", "setting"]).val_roc_auc.mean().unstack("setting")
    cost = table.groupby("setting")[["passes", "seconds"]].mean()
    report = {
        "weights": args.weights, "data_dir": str(args.data_dir),
        "protocol": {"folds": args.folds, "budget": args.budget, "split": "budget 80/20 context/validation",
                     "seed": args.seed, "metric": "VALIDATION ROC-AUC, mean over folds then datasets"},
        "mean_over_datasets": {s: round(float(v), 4) for s, v in per_dataset.mean().sort_values().items()},
        "wins_vs_single": {s: int((per_dataset[s] > per_dataset["single"]).sum()) for s in per_dataset},
        "mean_passes": {s: round(float(v), 1) for s, v in cost.passes.items()},
        "mean_seconds_per_prediction": {s: round(float(v), 3) for s, v in cost.seconds.items()},
        "per_dataset": {d: {s: round(float(v), 4) for s, v in row.items()} for d, row in per_dataset.iterrows()},
        "wall_time_s": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
