"""Zero-shot test ROC-AUC of a backbone next to scikit-learn baselines on the TabArena tables shipped
in resources/tabarena; prints JSON (per-dataset table and means over datasets).

The backbone gets a stratified budget of real rows as its context; the baselines train on the
same rows (see causalmixft.model.zeroshot). Usage::

    python bench/bench_zeroshot.py [WEIGHTS_DIR] [--folds 5] [--budget 256] [--class-shifts 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from causalmixft.model.backbone import DEFAULT_WEIGHTS, load_model
from causalmixft.model.pretrain import REAL_EVAL_DATASETS
from causalmixft.model.zeroshot import evaluate_zero_shot


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="?", default=str(DEFAULT_WEIGHTS), help="backbone weights directory")
    parser.add_argument("--datasets", nargs="+", default=REAL_EVAL_DATASETS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=256, help="context rows (and baseline training rows)")
    parser.add_argument("--test-max-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class-shifts", type=int, default=1,
                        help="average over this many cyclic relabelings of the classes (backbone.predict_proba)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = load_model(args.weights)
    table = evaluate_zero_shot(model, args.datasets, n_folds=args.folds, budget=args.budget, seed=args.seed,
                               test_max_rows=args.test_max_rows, n_class_shifts=args.class_shifts)
    per_dataset = table.groupby(["dataset", "method"]).roc_auc.mean().unstack("method")
    report = {
        "weights": args.weights,
        "protocol": {"folds": args.folds, "budget": args.budget, "test_max_rows": args.test_max_rows,
                     "seed": args.seed, "class_shifts": args.class_shifts,
                     "metric": "test ROC-AUC (one-vs-rest macro for multiclass), mean over folds"},
        "per_dataset": {d: {m: round(float(v), 4) for m, v in row.items()} for d, row in per_dataset.iterrows()},
        "mean_over_datasets": {m: round(float(v), 4) for m, v in per_dataset.mean().items()},
        "rank_mean_over_datasets": {m: round(float(v), 2) for m, v in
                                    per_dataset.rank(axis=1, ascending=False).mean().items()},
        "wall_time_s": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
