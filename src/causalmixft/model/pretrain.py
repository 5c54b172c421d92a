"""Pretraining of the built-in backbone on the synthetic prior.

Techniques from the nanoTabPFN speedrun that help at this scale: Muon for the hidden weight
matrices (AdamW for embeddings, norms and biases), pre-norm RMSNorm blocks, learnable thinking
rows (in the model), a high learning rate with warm-up, a constant phase and a linear decay
(so a run can be extended), and averaging of the weights over the decay phase.

Usage::

    python -m causalmixft.model.pretrain --out runs-pretrain/tfm-small --steps 4000

Re-running the same command resumes from ``--out/checkpoint/``; the final (averaged) weights go to
``--out/final`` and can be copied to ``src/causalmixft/model/weights/<name>``. To continue from
finished weights (a fresh optimiser state and schedule, the architecture of those weights)::

    python -m causalmixft.model.pretrain --out runs-pretrain/more --init-weights src/causalmixft/model/weights/tfm-small \
        --steps 2000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from causalmixft.io import atomic_path
from causalmixft.metrics import roc_auc
from causalmixft.model.backbone import autocast, load_model, resolve_device, save_model
from causalmixft.model.checkpoint import load_training_state, save_training_state
from causalmixft.model.prior import PriorConfig, sample_batch
from causalmixft.model.transformer import ModelConfig, TabularTransformer

REAL_EVAL_DATASETS = ["credit-g", "diabetes", "churn", "splice", "coil2000_insurance_policies", "anneal"]


def build_optimizers(model: TabularTransformer, lr: float, muon_lr: float, weight_decay: float) -> dict:
    hidden = [p for n, p in model.named_parameters() if p.ndim == 2 and n.startswith("blocks.")]
    hidden_ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if id(p) not in hidden_ids]
    return {
        "muon": torch.optim.Muon(hidden, lr=muon_lr, weight_decay=weight_decay, momentum=0.95),
        "adamw": torch.optim.AdamW(rest, lr=lr, betas=(0.9, 0.98), weight_decay=0.0),
    }


def lr_factor(step: int, total: int, warmup: int, decay_fraction: float) -> float:
    """Warm-up, constant, then linear decay to 10% over the last ``decay_fraction`` of steps."""
    if step < warmup:
        return (step + 1) / warmup
    decay_start = int(total * (1 - decay_fraction))
    if step < decay_start:
        return 1.0
    return 1.0 - 0.9 * (step - decay_start) / max(1, total - decay_start)


def prior_loss(model: TabularTransformer, batch, device: torch.device) -> torch.Tensor:
    x, y = batch.x.to(device), batch.y.to(device)
    with autocast(device):
        logits = model(x, y[:, : batch.n_context], batch.categorical.to(device), batch.n_classes.to(device))
    return F.cross_entropy(logits.float().flatten(0, 1), y[:, batch.n_context :].flatten())


@torch.no_grad()
def evaluate_prior(model: TabularTransformer, batches, device: torch.device) -> dict:
    model.eval()
    losses, aucs = [], []
    for batch in batches:
        losses.append(float(prior_loss(model, batch, device)))
        with autocast(device):
            logits = model(batch.x.to(device), batch.y[:, : batch.n_context].to(device),
                           batch.categorical.to(device), batch.n_classes.to(device))
        proba = torch.softmax(logits.float(), -1).cpu().numpy()
        for i in range(len(proba)):
            k = int(batch.n_classes[i])
            p = proba[i, :, :k] / proba[i, :, :k].sum(-1, keepdims=True)
            aucs.append(roc_auc(batch.y[i, batch.n_context :].numpy(), p))
    model.train()
    return {"prior_loss": float(np.mean(losses)), "prior_roc_auc": float(np.nanmean(aucs))}


def evaluate_real(model: TabularTransformer, datasets: list[str], n_folds: int = 2) -> dict:
    """Zero-shot ROC-AUC on real tables: monitoring only, nothing is selected on it."""
    from causalmixft.model.zeroshot import evaluate_zero_shot

    if not datasets:
        return {}
    model.eval()
    table = evaluate_zero_shot(model, datasets, n_folds=n_folds, baselines=False, test_max_rows=500)
    model.train()
    per_dataset = table.groupby("dataset").roc_auc.mean()
    return {"real_roc_auc": float(per_dataset.mean()), **{f"real_{k}": round(float(v), 4) for k, v in per_dataset.items()}}


@dataclass(frozen=True)
class PretrainConfig:
    """The pretraining run's settings; the command line's flags and their defaults come from here."""

    steps: int = 4000
    batch_size: int = 8  # tables per step
    lr: float = 3e-3  # AdamW (embeddings, norms, biases)
    muon_lr: float = 0.02  # Muon (hidden weight matrices)
    weight_decay: float = 0.01
    warmup: int = 100
    decay_fraction: float = 0.2  # the last share of steps: linear decay, weights averaged
    eval_every: int = 100
    checkpoint_every: int = 100  # steps between checkpoints
    seed: int = 0
    device: str = "auto"
    time_limit_min: float | None = None  # stop (resumably) after this long
    real_datasets: tuple[str, ...] = tuple(REAL_EVAL_DATASETS)  # zero-shot monitoring tables
    init_weights: str | None = None  # weights to start from when ``out`` holds no checkpoint yet
    checkpoint_every_min: float | None = None  # also checkpoint once this many minutes have passed


def pretrain(out: Path, cfg: PretrainConfig, model_cfg: ModelConfig, prior_cfg: PriorConfig) -> dict:
    """Train (or resume) into ``out``. ``cfg.init_weights``: a weights directory to start from when
    ``out`` holds no checkpoint yet; its architecture replaces ``model_cfg``. A checkpoint is
    written every ``cfg.checkpoint_every`` steps and, when ``cfg.checkpoint_every_min`` is given,
    also once that many minutes have passed since the last one (a run on a short GPU lease loses
    at most that much when killed)."""
    steps, batch_size, seed, init_weights = cfg.steps, cfg.batch_size, cfg.seed, cfg.init_weights
    eval_every, checkpoint_every, checkpoint_every_min = cfg.eval_every, cfg.checkpoint_every, cfg.checkpoint_every_min
    decay_fraction, real_datasets = cfg.decay_fraction, cfg.real_datasets
    device = resolve_device(cfg.device)
    torch.manual_seed(seed)
    if init_weights is not None:
        model = load_model(init_weights, device)
        model_cfg = model.cfg
    else:
        model = TabularTransformer(model_cfg).to(device)
    optimizers = build_optimizers(model, cfg.lr, cfg.muon_lr, cfg.weight_decay)
    base_lrs = {name: [g["lr"] for g in opt.param_groups] for name, opt in optimizers.items()}
    generator = torch.Generator().manual_seed(seed)
    eval_batches = [sample_batch(batch_size, torch.Generator().manual_seed(10_000 + i), prior_cfg) for i in range(8)]

    state = load_training_state(out / "checkpoint", model, optimizers, generator) or {}
    init = None if init_weights is None else str(init_weights)  # recorded; a resumed run keeps its first value
    step = state.get("step", 0)
    elapsed = state.get("elapsed_s", 0.0)
    datasets_seen = state.get("datasets_seen", 0)
    average = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    n_averaged = 0
    if state.get("n_averaged"):
        # The running average is part of the checkpoint only once the decay phase has begun.
        from safetensors.torch import load_file

        average = load_file(str(out / "checkpoint" / "average.safetensors"))
        n_averaged = state["n_averaged"]
    log_path = out / "train_log.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    decay_start = int(steps * (1 - decay_fraction))
    start_time, last_loss = time.time() - elapsed, float("nan")
    last_checkpoint = time.time()
    saved_step = step if state else None  # the step of the newest checkpoint on disk
    running = []

    def save_checkpoint():
        extra = {"step": step, "elapsed_s": time.time() - start_time, "datasets_seen": datasets_seen,
                 "n_averaged": n_averaged, "steps_total": steps, "init_weights": state.get("init_weights", init)}
        if n_averaged:
            from safetensors.torch import save_file

            # the first checkpoint may come after the decay phase began (checkpoint_every > its start)
            (out / "checkpoint").mkdir(parents=True, exist_ok=True)
            with atomic_path(out / "checkpoint" / "average.safetensors") as tmp:
                save_file({k: v.contiguous() for k, v in average.items()}, str(tmp))
        save_training_state(out / "checkpoint", model, optimizers, generator, extra)
        with open(out / "checkpoints.jsonl", "a") as handle:  # when each checkpoint was written
            handle.write(json.dumps({"step": step, "elapsed_s": round(extra["elapsed_s"], 1)}) + "\n")

    model.train()
    while step < steps:
        if cfg.time_limit_min is not None and time.time() - start_time > cfg.time_limit_min * 60:
            print(f"time limit reached at step {step}", flush=True)
            break
        factor = lr_factor(step, steps, cfg.warmup, decay_fraction)
        for name, opt in optimizers.items():
            for group, base in zip(opt.param_groups, base_lrs[name]):
                group["lr"] = base * factor
        batch = sample_batch(batch_size, generator, prior_cfg)
        loss = prior_loss(model, batch, device)
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt in optimizers.values():
            opt.step()
        step += 1
        datasets_seen += batch_size
        running.append(float(loss.detach()))
        if step > decay_start:
            n_averaged += 1
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    average[k] += (v.float() - average[k]) / n_averaged
        if step % eval_every == 0 or step == steps:
            last_loss = float(np.mean(running))
            record = {"step": step, "train_loss": round(last_loss, 4), "lr_factor": round(factor, 4),
                      "elapsed_s": round(time.time() - start_time, 1), "datasets_seen": datasets_seen,
                      **evaluate_prior(model, eval_batches, device)}
            if step % (eval_every * 4) == 0 or step == steps:
                record.update(evaluate_real(model, list(real_datasets)))
            running = []
            with open(log_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
        if step % checkpoint_every == 0 or (
                checkpoint_every_min is not None and time.time() - last_checkpoint >= checkpoint_every_min * 60):
            save_checkpoint()
            last_checkpoint, saved_step = time.time(), step
    if saved_step != step:
        save_checkpoint()

    final = TabularTransformer(model_cfg)
    final.load_state_dict(average if n_averaged else model.state_dict())
    final.to(device)
    summary = {"steps": step, "steps_total": steps, "datasets_seen": datasets_seen,
               "init_weights": state.get("init_weights", init),
               "wall_time_s": round(time.time() - start_time, 1), "final_train_loss": last_loss,
               "weights_averaged_over_last_steps": n_averaged, "device": str(device),
               "hardware": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
               "torch_threads": torch.get_num_threads(), "prior": asdict(prior_cfg),
               **evaluate_prior(final.eval(), eval_batches, device),
               **evaluate_real(final.eval(), list(real_datasets), n_folds=5)}
    save_model(final, out / "final", extra={"pretraining": summary})
    with atomic_path(out / "summary.json") as tmp:  # not write_json: its key order would sort the summary
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def pretrain_from_options(out: Path, options: dict) -> dict:
    """:func:`pretrain` with the options of the command line (or a workflow config) as a dict:
    the fields of :class:`PretrainConfig`, ``model`` (ModelConfig fields) and ``prior``."""
    names = {f.name for f in fields(PretrainConfig)}
    unknown = set(options) - names - {"model", "prior"}
    if unknown:
        raise ValueError(f"unknown pretraining options: {sorted(unknown)}")
    settings = {k: v for k, v in options.items() if k in names}
    if settings.get("real_datasets") is not None:
        settings["real_datasets"] = tuple(settings["real_datasets"])
    if settings.get("init_weights") is not None:
        settings["init_weights"] = str(settings["init_weights"])
    return pretrain(Path(out), PretrainConfig(**settings), ModelConfig(**options.get("model", {})),
                    PriorConfig(**options.get("prior", {})))


PRIOR_FLAGS = ("min_rows", "max_rows", "max_features", "tree_fraction", "sum_fraction")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    defaults = PretrainConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--muon-lr", type=float, default=defaults.muon_lr)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--decay-fraction", type=float, default=defaults.decay_fraction)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, help="steps between checkpoints")
    parser.add_argument("--checkpoint-every-min", type=float, default=defaults.checkpoint_every_min,
                        help="also checkpoint once this many minutes have passed since the last checkpoint")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--time-limit-min", type=float, default=defaults.time_limit_min,
                        help="stop (resumably) after this long")
    parser.add_argument("--real-datasets", nargs="*", default=list(defaults.real_datasets),
                        help="resources/tabarena tables for zero-shot monitoring (none: no real-data evaluation)")
    parser.add_argument("--init-weights", type=Path, default=None,
                        help="start from these weights (their architecture) when --out has no checkpoint yet")
    for name, default in asdict(ModelConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    for name in PRIOR_FLAGS:
        kind = type(getattr(PriorConfig(), name))
        parser.add_argument(f"--prior-{name.replace('_', '-')}", type=kind, default=getattr(PriorConfig(), name))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {f.name: getattr(args, f.name) for f in fields(PretrainConfig)}
    options["init_weights"] = None if args.init_weights is None else str(args.init_weights)
    options["model"] = {f: getattr(args, f) for f in ModelConfig.__dataclass_fields__}
    options["prior"] = {f: getattr(args, f"prior_{f}") for f in PRIOR_FLAGS}
    summary = pretrain_from_options(args.out, options)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
