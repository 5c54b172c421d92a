"""Fine-tuning speed: optimisation steps per second of the default FinetuneConfig on a real table,
on the CPU and, when available, on CUDA; prints JSON.

The protocol is the workflow's: a stratified real budget split 80/20 into train (the pool and the
inference context) and validation. Evaluations are excluded from the timing (``train_time_s``
counts optimisation only); speed does not depend on the weights' values, so ``--random-init``
measures the default architecture when no pre-trained weights are at hand. Usage::

    python bench/bench_finetune.py [--weights DIR | --random-init] [--dataset credit-g] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict

import torch
from sklearn.model_selection import train_test_split

from causalmixft.model.backbone import DEFAULT_WEIGHTS, load_model
from causalmixft.model.finetune import FinetuneConfig, finetune
from causalmixft.model.transformer import ModelConfig, TabularTransformer
from causalmixft.model.zeroshot import budget_splits, load_tabarena_arrays


def measure(model, x, y, categorical, budget: int, steps: int, device: str, seed: int) -> dict:
    n_classes = int(y.max()) + 1
    rows, test = next(budget_splits(y, n_folds=5, budget=budget, seed=seed, test_max_rows=500))
    train, val = train_test_split(rows, test_size=0.2, stratify=y[rows], random_state=seed)
    # eval_every=steps: one evaluation at the start and one at the end, no early stop in between.
    cfg = FinetuneConfig(**{**asdict(FinetuneConfig()), "steps": steps, "eval_every": steps, "device": device})
    result = finetune(model, x[train], y[train], x[train], y[train], x[val], y[val], x[test], y[test],
                      n_classes, categorical, cfg, seed)
    hardware = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    return {"device": device, "hardware": hardware, "steps": result.steps_run,
            "steps_per_second": result.steps_per_second, "train_time_s": result.train_time_s,
            "wall_time_s_with_evaluations": result.wall_time_s, "pool_rows": len(train),
            "val_rows": len(val), "test_rows": len(test),
            "val_roc_auc_step0": round(result.curve[0]["val"]["roc_auc"], 4),
            "val_roc_auc_last": round(result.curve[-1]["val"]["roc_auc"], 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    source.add_argument("--random-init", action="store_true", help="default ModelConfig, random weights")
    parser.add_argument("--dataset", default="credit-g")
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cuda is skipped when absent")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.random_init:
        torch.manual_seed(args.seed)
        model, weights = TabularTransformer(ModelConfig()), "random-init"
    else:
        model, weights = load_model(args.weights), args.weights
    x, y, categorical = load_tabarena_arrays(args.dataset)
    runs = []
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        start = time.perf_counter()
        runs.append({**measure(model, x, y, categorical, args.budget, args.steps, device, args.seed),
                     "total_s": round(time.perf_counter() - start, 1)})
    report = {"dataset": args.dataset, "n_features": int(x.shape[1]), "n_classes": int(y.max()) + 1,
              "weights": weights, "model_config": asdict(model.cfg),
              "finetune_config": {k: v for k, v in asdict(FinetuneConfig()).items() if k not in ("steps", "device")},
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "runs": runs}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
