"""Speed of the built-in backbone at the workflow's default sizes (CPU, or CUDA in fp32 or bf16); prints JSON.

- fine-tuning: optimisation steps per second of ``finetune_step`` on episodes of a 204-row pool
  (a 256-row budget split 80/20) of credit-g (20 features, 2 classes), query fraction 0.3;
- prediction: seconds of one ``predict_proba`` with that pool as context and the 52 validation +
  200 test rows as queries (one fine-tuning evaluation), for several ensemble settings;
- wide multi-class: seconds of one zero-shot fold of MIC (111 features, 8 classes, 256 context
  rows, up to 1,000 test rows), where the old default ran every class shift on every feature subset.

Times are CPU seconds of this process (``time.process_time``), which on a shared machine vary
less than wall seconds; both are reported. On CUDA only wall seconds mean anything (every timed
call ends by copying its result to the host, which waits for the GPU). ``--precision`` sets the
autocast dtype of CUDA passes (bf16, the workflow's, or fp32: none); the CPU always runs fp32. Usage::

    python bench/bench_speed.py [--weights DIR] [--data-dir DIR] [--threads 1] [--repeats 3]
        [--device cuda --precision fp32] [--ensemble-sizes 4 8 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from causalmixft.model import backbone as builtin
from causalmixft.model.adamw import AdamW
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.finetune import finetune_step, sample_episode
from causalmixft.model.interface import BuiltinBackbone
from causalmixft.model.zeroshot import TABARENA_DIR, budget_splits, load_tabarena_arrays

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def timed(function, repeats: int, warm_up: bool = True) -> dict:
    if warm_up:  # first calls allocate
        function()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        function()
    return {"cpu_s": round((time.process_time() - cpu) / repeats, 4),
            "wall_s": round((time.perf_counter() - wall) / repeats, 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(builtin.DEFAULT_WEIGHTS))
    parser.add_argument("--data-dir", type=Path, default=TABARENA_DIR)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip-wide", action="store_true", help="no MIC fold (needs MIC in --data-dir)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<i>")
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="bf16", help="autocast dtype on CUDA")
    parser.add_argument("--ensemble-sizes", type=int, nargs="*", default=[4, 8, 16], help="n_estimators timed")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = builtin.resolve_device(args.device)
    with builtin.cuda_precision(PRECISIONS[args.precision]):
        return measure(args, device)


def measure(args, device: torch.device) -> dict:
    model = builtin.load_model(args.weights, device)
    report = {"code": os.environ.get("BENCH_LABEL", "working tree"), "torch": torch.__version__,
              "torch_threads": torch.get_num_threads(), "load_average_at_start": os.getloadavg(),
              "device": str(device), "precision": args.precision if device.type == "cuda" else "fp32",
              "hardware": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
              or platform.machine()}

    x, y, categorical = load_tabarena_arrays("credit-g", args.data_dir)
    rows, test = next(budget_splits(y, 5, 256, 0, 200))
    pool, val = train_test_split(rows, test_size=0.2, stratify=y[rows], random_state=0)
    queries = np.concatenate([val, test])

    backbone = BuiltinBackbone(builtin.load_model(args.weights, device))
    backbone.module.train()
    optimizer = AdamW(backbone.module.parameters(), lr=1e-4, weight_decay=0.01)
    px, py, pc = (torch.as_tensor(a, device=device) for a in (x[pool], y[pool], categorical))
    rng = np.random.default_rng(0)

    def step():
        context, query = (torch.as_tensor(i, device=device) for i in sample_episode(len(py), y[pool], 256, 0.3, rng))
        finetune_step(backbone, optimizer, px[context], py[context], px[query], py[query], 2, pc, 1.0)

    per_step = timed(lambda: [step() for _ in range(args.steps)], 1)
    report["finetune_step"] = {"pool_rows": len(pool), "features": int(x.shape[1]),
                               "steps_per_second_cpu": round(args.steps / per_step["cpu_s"], 2),
                               "steps_per_second_wall": round(args.steps / per_step["wall_s"], 2)}

    settings = {"single pass": Ensemble(), "all class shifts (n_class_shifts=10)": Ensemble(n_class_shifts=10),
                **{f"n_estimators={k}": Ensemble(n_estimators=k, n_class_shifts=None) for k in args.ensemble_sizes}}
    report["prediction"] = {"context_rows": len(pool), "query_rows": len(queries), **{
        name: timed(lambda: builtin.predict_proba(model, x[pool], y[pool], x[queries], 2, categorical,
                                                  ensemble=ensemble), args.repeats)
        for name, ensemble in settings.items()}}

    if not args.skip_wide:
        x, y, categorical = load_tabarena_arrays("MIC", args.data_dir)
        context, test = next(budget_splits(y, 5, 256, 0, 1000))
        wide = {"all class shifts x 4 feature subsets (n_class_shifts=10)": Ensemble(n_class_shifts=10),
                **{f"n_estimators={k}": Ensemble(n_estimators=k, n_class_shifts=None) for k in (8, 16)}}
        report["wide_multiclass_fold"] = {"dataset": "MIC", "features": int(x.shape[1]), "classes": int(y.max()) + 1,
                                          "context_rows": len(context), "test_rows": len(test), **{
            name: timed(lambda: builtin.predict_proba(model, x[context], y[context], x[test], int(y.max()) + 1,
                                                      categorical, ensemble=ensemble), 1, warm_up=False)
            for name, ensemble in wide.items()}}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
