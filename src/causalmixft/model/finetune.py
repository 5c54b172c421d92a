"""Full fine-tuning of a backbone with episodic batches, early stopping on validation only.

Each step draws ``batch_rows`` rows from the pool, splits them into context and query
(stratified: every class with at least two sampled rows keeps one in the context) and
minimises the cross-entropy of the query rows given the context, the same task the backbone
was pretrained on. Evaluations use a fixed inference context (in the workflow the real train
rows) and record validation and test metrics; only validation selects the step whose weights
are returned. Test metrics are recorded to measure how well validation tracks them.

Randomness comes from one numpy Generator seeded by ``seed``, so CPU runs are repeatable.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from causalmixft.metrics import HIGHER_IS_BETTER, classification_metrics
from causalmixft.model.adamw import AdamW
from causalmixft.model.backbone import resolve_device
from causalmixft.model.interface import Backbone, BuiltinBackbone, as_backbone
from causalmixft.model.transformer import TabularTransformer


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 200
    lr: float = 1e-4  # 1e-3 overfits the shipped weights within 60 steps (docs/backbone.md)
    weight_decay: float = 0.01
    warmup_steps: int = 20
    eval_every: int = 20
    patience: int = 5  # evaluations without improvement before stopping; 0 disables early stopping
    batch_rows: int = 256  # rows drawn from the pool per step (the whole pool when smaller)
    query_fraction: float = 0.3
    max_grad_norm: float = 1.0
    device: str = "auto"
    select_metric: str = "roc_auc"
    # Evaluations of the built-in backbone average over this many cyclic class relabelings
    # (backbone.predict_proba); None keeps the backbone's own setting (1 for a plain model).
    n_class_shifts: int | None = None


@dataclass
class FinetuneResult:
    model: TabularTransformer | Backbone  # same kind as the model passed in, with the selected weights
    curve: list[dict] = field(default_factory=list)  # {step, val, test, train_loss} per evaluation
    selected_step: int = 0
    steps_run: int = 0
    wall_time_s: float = 0.0
    train_time_s: float = 0.0  # optimisation only, without evaluations
    device: str = "cpu"
    steps_per_second: float | None = None
    stopped_early: bool = False

    @property
    def selected(self) -> dict:
        return next(point for point in self.curve if point["step"] == self.selected_step)


def split_episode(y: np.ndarray, query_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions of context and query rows within one sampled batch of labels ``y``.

    Per class, about ``query_fraction`` of its rows become queries (stochastic rounding keeps
    the expected fraction exact for small classes), but one row always stays in the context so
    that no query asks for a class the context has never shown. Only when every class has a
    single row does a query class go unseen, because an episode needs at least one query.
    """
    context, query = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        wanted = query_fraction * len(rows)
        n_query = int(math.floor(wanted + rng.random()))
        n_query = min(n_query, len(rows) - 1)
        query.append(rows[:n_query])
        context.append(rows[n_query:])
    context, query = np.concatenate(context), np.concatenate(query)
    if len(query) == 0:
        # Move one context row whose class keeps another context row; else any row.
        labels, counts = np.unique(y[context], return_counts=True)
        repeated = np.isin(y[context], labels[counts > 1])
        candidates = np.flatnonzero(repeated) if repeated.any() else np.arange(len(context))
        moved = candidates[rng.integers(len(candidates))]
        query, context = context[[moved]], np.delete(context, moved)
    return context, query


def sample_episode(n_pool: int, y_pool: np.ndarray, batch_rows: int, query_fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pool indices of (context, query) for one step; the whole pool when it is small."""
    rows = rng.permutation(n_pool)[: min(batch_rows, n_pool)]
    context, query = split_episode(y_pool[rows], query_fraction, rng)
    return rows[context], rows[query]


def lr_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up from 1/warmup_steps to 1, then constant."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def _improves(value: float, best: float, higher_is_better: bool) -> bool:
    """Strict improvement, so ties keep the earlier step; NaN never improves."""
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if higher_is_better else value < best


def _evaluate(backbone: Backbone, context_x, context_y, splits: dict, n_classes, categorical) -> dict:
    """Metrics of every split in ``splits`` ({name: (x, y) or (None, None)}) from one forward pass.

    Query rows are predicted from the context alone (the Backbone contract), so stacking the
    splits' rows gives each row the prediction it would get alone, with the context encoded once.
    """
    present = {name: (x, y) for name, (x, y) in splits.items() if x is not None and len(x)}
    results = {name: {} for name in splits}
    if not present:
        return results
    proba = backbone.predict_proba(context_x, context_y, np.concatenate([x for x, _ in present.values()]),
                                   n_classes, categorical)
    start = 0
    for name, (x, y) in present.items():
        results[name] = classification_metrics(y, proba[start : start + len(x)])
        start += len(x)
    return results


def _check_labels(name: str, y: np.ndarray | None, n_classes: int) -> None:
    if y is not None and len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} labels must be class indices in [0, {n_classes}); got {y.min()}..{y.max()}")


def finetune_step(backbone: Backbone, optimizer: AdamW, x_context: torch.Tensor,
                  y_context: torch.Tensor, x_query: torch.Tensor, y_query: torch.Tensor, n_classes: int,
                  categorical: torch.Tensor, max_grad_norm: float) -> float:
    """One optimiser step on one episode (tensors on the backbone's device); returns the query loss."""
    logits = backbone.logits(x_context, y_context, x_query, n_classes, categorical)
    loss = F.cross_entropy(logits, y_query)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(backbone.module.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def finetune(
    model: TabularTransformer | Backbone,
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    context_x: np.ndarray,
    context_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray | None,
    test_y: np.ndarray | None,
    n_classes: int,
    categorical: np.ndarray | None = None,
    cfg: FinetuneConfig = FinetuneConfig(),
    seed: int = 0,
) -> FinetuneResult:
    """Fine-tune a copy of ``model`` on episodes from the pool; return it with the best weights.

    Evaluations happen at step 0 (the model as given), every ``eval_every`` steps and after the
    last step. The returned model carries the weights of the evaluation with the best
    validation ``select_metric`` (ties: the earlier step). ``steps=0`` gives the step-0
    evaluation only (zero-shot); the pool may then be empty.
    """
    start = time.perf_counter()
    if cfg.select_metric not in HIGHER_IS_BETTER:
        raise ValueError(f"select_metric must be one of {sorted(HIGHER_IS_BETTER)}, not {cfg.select_metric!r}")
    pool_x, pool_y = np.asarray(pool_x, np.float32), np.asarray(pool_y, np.int64)
    context_x, context_y = np.asarray(context_x, np.float32), np.asarray(context_y, np.int64)
    n_features = context_x.shape[1]
    categorical = np.zeros(n_features, bool) if categorical is None else np.asarray(categorical, bool)
    for name, y in (("pool", pool_y), ("context", context_y), ("val", val_y), ("test", test_y)):
        _check_labels(name, None if y is None else np.asarray(y), n_classes)
    if cfg.steps > 0 and len(pool_y) < 2:
        raise ValueError(f"fine-tuning needs at least 2 pool rows, got {len(pool_y)}")
    if cfg.steps > 0 and (val_x is None or len(val_x) == 0):
        raise ValueError("fine-tuning needs validation rows to select a step")

    device = resolve_device(cfg.device)
    was_module = isinstance(model, TabularTransformer)
    # Train a copy: the caller's model stays the pre-trained one (zero-shot runs reuse it).
    backbone = copy.deepcopy(as_backbone(model)).to(device)
    if cfg.n_class_shifts is not None:
        if not isinstance(backbone, BuiltinBackbone):
            raise ValueError(f"n_class_shifts is for the built-in backbone only, not {type(backbone).__name__}")
        backbone.n_class_shifts = cfg.n_class_shifts
    if n_classes > backbone.max_classes:
        raise ValueError(f"{n_classes} classes exceed the backbone's maximum of {backbone.max_classes}")
    module = backbone.module
    rng = np.random.default_rng(seed)
    pool_x_t = torch.as_tensor(pool_x, device=device)
    pool_y_t = torch.as_tensor(pool_y, device=device)
    categorical_t = torch.as_tensor(categorical, device=device)
    optimizer = AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    higher = HIGHER_IS_BETTER[cfg.select_metric]

    def evaluate(step: int, train_loss: float | None) -> dict:
        module.eval()
        metrics = _evaluate(backbone, context_x, context_y, {"val": (val_x, val_y), "test": (test_x, test_y)},
                            n_classes, categorical)
        point = {"step": step, "val": metrics["val"], "test": metrics["test"], "train_loss": train_loss}
        module.train()
        return point

    curve = [evaluate(0, None)]
    best_value = curve[0]["val"].get(cfg.select_metric, float("nan"))
    best_step, best_state = 0, None
    evals_without_gain, stopped_early = 0, False
    losses: list[float] = []
    train_time, step = 0.0, 0

    module.train()
    while step < cfg.steps:
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.warmup_steps)
        context, query = sample_episode(len(pool_y), pool_y, cfg.batch_rows, cfg.query_fraction, rng)
        columns = np.arange(n_features)
        if backbone.max_features is not None and n_features > backbone.max_features:
            # As at prediction time: a random subset of columns the network can take at once.
            columns = np.sort(rng.choice(n_features, backbone.max_features, replace=False))
        columns_t = torch.as_tensor(columns, device=device)
        context_t, query_t = torch.as_tensor(context, device=device), torch.as_tensor(query, device=device)
        losses.append(finetune_step(backbone, optimizer, pool_x_t[context_t][:, columns_t], pool_y_t[context_t],
                                    pool_x_t[query_t][:, columns_t], pool_y_t[query_t], n_classes,
                                    categorical_t[columns_t], cfg.max_grad_norm))
        step += 1
        train_time += time.perf_counter() - tick

        if step % max(cfg.eval_every, 1) == 0 or step == cfg.steps:
            point = evaluate(step, float(np.mean(losses)))
            curve.append(point)
            losses = []
            value = point["val"].get(cfg.select_metric, float("nan"))
            if _improves(value, best_value, higher):
                best_value, best_step, evals_without_gain = value, step, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                evals_without_gain += 1
                if cfg.patience > 0 and evals_without_gain >= cfg.patience:
                    stopped_early = True
                    break

    if best_state is not None:
        module.load_state_dict(best_state)
    elif step > 0:
        # Step 0 stays the best: return the weights as they came in.
        module.load_state_dict(as_backbone(model).module.state_dict())
    module.eval()
    return FinetuneResult(
        model=module if was_module else backbone,
        curve=curve,
        selected_step=best_step,
        steps_run=step,
        wall_time_s=round(time.perf_counter() - start, 3),
        train_time_s=round(train_time, 3),
        device=str(device),
        steps_per_second=round(step / train_time, 3) if step and train_time > 0 else None,
        stopped_early=stopped_early,
    )
