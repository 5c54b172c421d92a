"""Choose the fine-tuning recipe away from the study: on tasks drawn from the backbone's own prior.

No study table reaches this choice (issue 28: the v2 recipe was chosen on validation rows of five
study tables). Each task is a table drawn from ``causalmixft.model.prior`` (the family the built-in
backbone was pretrained on), split into a real budget (train + validation, ``val_fraction`` of it
for validation, as the workflow splits) and ``--heldout`` rows that stand in for a test set. Every
recipe fine-tunes with the workflow's own loop and early stopping on the task's validation rows;
recipes are ranked by the mean gain of held-out ROC-AUC over zero-shot across tasks and budgets,
the held-out rows being the prior's, never a study table's. Prints JSON. Usage::

    OMP_NUM_THREADS=1 python bench/tune_on_prior.py --tasks 8 --budgets 32 128 512 \\
        --recipe 'lr1e-4={"lr": 1e-4}' --recipe 'lr3e-4={"lr": 3e-4}' --recipe 'lr3e-3={"lr": 3e-3}'
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from causalmixft.grid import train_rows
from causalmixft.model.backbone import DEFAULT_WEIGHTS, load_model
from causalmixft.model.finetune import FinetuneConfig, FinetuneData, finetune
from causalmixft.model.prior import PriorConfig, sample_dataset

REPO = Path(__file__).resolve().parents[1]


def prior_task(seed: int, budget: int, heldout: int, max_features: int) -> dict | None:
    """One prior table of ``budget + heldout`` rows with every class in the budget's train part, or None."""
    g = torch.Generator().manual_seed(seed)
    n_features = int(torch.randint(2, max_features + 1, (1,), generator=g))
    n_classes = 2 if float(torch.rand(1, generator=g)) < 0.5 else int(torch.randint(3, 6, (1,), generator=g))
    x, y, categorical = sample_dataset(budget + heldout, n_features, n_classes, g, PriorConfig())
    x, y = x.numpy().astype(np.float32), y.numpy().astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    n_train = train_rows(budget, 0.2)
    parts = {"train": slice(0, n_train), "val": slice(n_train, budget), "heldout": slice(budget, None)}
    present = np.unique(y)
    if len(present) < 2 or len(np.unique(y[parts["train"]])) < len(present) or len(np.unique(y[parts["heldout"]])) < 2:
        return None  # a degenerate draw: a class missing from train, or one class held out
    remap = {c: i for i, c in enumerate(present)}  # class ids 0..k-1 as the workflow encodes them
    y = np.vectorize(remap.get)(y).astype(np.int64)
    return {"x": x, "y": y, "categorical": categorical.numpy(), "n_classes": len(present), "parts": parts}


def run(model, task: dict, cfg: FinetuneConfig, seed: int) -> dict:
    x, y, parts = task["x"], task["y"], task["parts"]
    tr, va, ho = parts["train"], parts["val"], parts["heldout"]
    data = FinetuneData((x[tr], y[tr]), (x[tr], y[tr]), (x[va], y[va]), task["n_classes"], task["categorical"],
                        test=(x[ho], y[ho]))
    result = finetune(model, data, cfg, seed)
    return {"zeroshot": result.curve[0]["test"]["roc_auc"], "tuned": result.selected["test"]["roc_auc"],
            "selected_step": result.selected_step, "steps_run": result.steps_run}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--tasks", type=int, default=8, help="prior tables per budget")
    parser.add_argument("--budgets", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--heldout", type=int, default=300)
    parser.add_argument("--max-features", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1000, help="prior seeds start here (pretraining used others)")
    parser.add_argument("--recipe", action="append", default=[], metavar="NAME=JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    finetune_block = yaml.safe_load((REPO / "config.yaml").read_text())["finetune"]
    known = FinetuneConfig.__dataclass_fields__
    base = FinetuneConfig(**{k: v for k, v in finetune_block.items() if k in known})
    recipes = {"config.yaml": base} | {
        name: replace(base, **json.loads(fields)) for name, fields in (spec.split("=", 1) for spec in args.recipe)
    }
    model = load_model(args.weights)
    start, rows = time.perf_counter(), []
    for budget in args.budgets:
        seed, found = args.seed + 100_000 * budget, 0
        while found < args.tasks:
            seed += 1
            task = prior_task(seed, budget, args.heldout, args.max_features)
            if task is None:
                continue
            found += 1
            for name, cfg in recipes.items():
                rows.append({"budget": budget, "task_seed": seed, "recipe": name, **run(model, task, cfg, seed)})
    summary = {}
    for name in recipes:
        own = [r for r in rows if r["recipe"] == name]
        gains = np.array([r["tuned"] - r["zeroshot"] for r in own])
        summary[name] = {
            "heldout_gain_mean": round(float(gains.mean()), 4),
            "heldout_gain_by_budget": {
                str(b): round(float(np.mean([r["tuned"] - r["zeroshot"] for r in own if r["budget"] == b])), 4)
                for b in args.budgets
            },
            "tasks_better": int((gains > 0).sum()),
            "tasks_worse": int((gains < 0).sum()),
            "mean_selected_step": round(float(np.mean([r["selected_step"] for r in own])), 1),
        }
    chosen = max(summary, key=lambda name: summary[name]["heldout_gain_mean"])
    out = {
        "bench": "tune_on_prior",
        "chosen": chosen,
        "rule": "largest mean held-out ROC-AUC gain over zero-shot on prior tasks; no study table involved",
        "recipes": {name: {k: v for k, v in vars(cfg).items() if k in ("lr", "steps", "patience", "min_steps", "lr_schedule")}
                    for name, cfg in recipes.items()},
        "summary": summary,
        "runs": rows,
        "tasks_per_budget": args.tasks,
        "budgets": args.budgets,
        "heldout_rows": args.heldout,
        "wall_s": round(time.perf_counter() - start, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "processor": platform.machine()},
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
