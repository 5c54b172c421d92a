"""Zero-shot test ROC-AUC of a backbone next to scikit-learn baselines on TabArena tables; prints JSON
(per-dataset table, means over datasets, prediction seconds).

The backbone gets a stratified budget of real rows as its context; the baselines train on the
same rows (see causalmixft.model.zeroshot). ``--data-dir`` points at any directory laid out like
``resources/tabarena`` (a MANIFEST.json next to the gzip CSVs); without ``--datasets`` every table
of its manifest is used. Usage::

    python bench/bench_zeroshot.py [WEIGHTS_DIR] [--data-dir DIR] [--datasets A B] [--folds 5] [--budget 256]
        [--class-shifts 10] [--n-estimators 8] [--preprocessing none quantile log] [--no-baselines] [--threads 1]
        [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from causalmixft.model.backbone import DEFAULT_WEIGHTS
from causalmixft.model.interface import BuiltinBackbone, load_backbone
from causalmixft.model.zeroshot import TABARENA_DIR, evaluate_zero_shot


def manifest_datasets(directory: Path) -> list[str]:
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    return [entry["file"].removesuffix(".csv.gz") for entry in manifest["datasets"]]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="?", default=str(DEFAULT_WEIGHTS), help="backbone weights directory")
    parser.add_argument("--data-dir", type=Path, default=TABARENA_DIR)
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every table in the manifest")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=256, help="context rows (and baseline training rows)")
    parser.add_argument("--test-max-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class-shifts", type=int, default=None,
                        help="class relabelings averaged per prediction (0: all; default: the backbone's setting)")
    parser.add_argument("--n-estimators", type=int, default=None,
                        help="inference-ensemble members (model/ensemble.py); default: the backbone's setting")
    parser.add_argument("--preprocessing", nargs="+", default=None, help="member preprocessings (with --n-estimators)")
    parser.add_argument("--no-category-orders", action="store_true", help="members keep the category codes as given")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="where the backbone runs: cpu, cuda, auto")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    datasets = args.datasets or manifest_datasets(args.data_dir)
    backbone = load_backbone(args.weights, args.device)
    options = (("n_class_shifts", args.class_shifts), ("n_estimators", args.n_estimators),
               ("preprocessing", args.preprocessing), ("category_orders", False if args.no_category_orders else None))
    changes = {name: value for name, value in options if value is not None}
    if changes and not isinstance(backbone, BuiltinBackbone):
        parser.error(f"{', '.join(changes)}: for the built-in backbone only, not {type(backbone).__name__}")
    ensemble = replace(backbone.ensemble, **changes) if changes else None
    table = evaluate_zero_shot(backbone, datasets, n_folds=args.folds, budget=args.budget, seed=args.seed,
                               baselines=not args.no_baselines, test_max_rows=args.test_max_rows, ensemble=ensemble,
                               directory=args.data_dir)
    per_dataset = table.groupby(["dataset", "method"]).roc_auc.mean().unstack("method")
    seconds = table.groupby(["dataset", "method"]).predict_s.mean().unstack("method")
    report = {
        "weights": args.weights,
        "data_dir": str(args.data_dir),
        "protocol": {"folds": args.folds, "budget": args.budget, "test_max_rows": args.test_max_rows,
                     "seed": args.seed, "class_shifts": args.class_shifts, "n_estimators": args.n_estimators,
                     "preprocessing": args.preprocessing, "category_orders": not args.no_category_orders,
                     "metric": "test ROC-AUC (one-vs-rest macro for multiclass), mean over folds"},
        "per_dataset": {d: {m: round(float(v), 4) for m, v in row.items()} for d, row in per_dataset.iterrows()},
        "mean_over_datasets": {m: round(float(v), 4) for m, v in per_dataset.mean().items()},
        "rank_mean_over_datasets": {m: round(float(v), 2) for m, v in
                                    per_dataset.rank(axis=1, ascending=False).mean().items()},
        "seconds_per_fold": {d: {m: round(float(v), 3) for m, v in row.items()} for d, row in seconds.iterrows()},
        "wall_time_s": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
        "device": str(args.device),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
