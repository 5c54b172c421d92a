"""Full fine-tuning of a backbone with episodic batches, early stopping on validation only.

Each step builds one episode: rows drawn from the real pool and (for augmented methods) from the
synthetic pool, each part split into context and query (stratified: every class with at least
two drawn rows keeps one in the context), class ids permuted as in pretraining, and minimises the
cross-entropy of the query rows given the context: the task the backbone was pretrained on.

How real and synthetic rows are mixed is ``mixing``:

- ``fixed_share`` (default): every episode holds ``round(real_share * batch_rows)`` real rows and
  ``batch_rows`` minus that synthetic rows, whatever the synthetic size n. Steps, episode size
  and real-row exposure are the same at every n; only the number of distinct synthetic rows
  changes. The real part is drawn from its own random stream, so runs with one seed see the same
  real rows at every size and in every method (common random numbers). A method without
  synthetic rows (plain fine-tuning) trains on exactly the real parts of those episodes, one
  without real rows on the synthetic parts: adding a source never changes what the other gives.
  A real pool smaller than its part shrinks both parts in proportion, so the share holds.
- ``pool``: ``batch_rows`` rows drawn uniformly from the union of both pools. The real share then
  falls as n grows, so size is confounded with the mixing ratio; kept for comparison.

``synthetic_in`` says where synthetic rows may sit in an episode (``both``, ``context`` or
``query``). Evaluations always use a fixed inference context (in the workflow the real train
rows) and record validation and test metrics; only validation selects the step whose weights are
returned, and only validation stops the run (patience). Test metrics are recorded to measure how
well validation tracks them.

Randomness comes from numpy Generators seeded by ``seed``, so CPU runs are repeatable.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from causalmixft.metrics import HIGHER_IS_BETTER, classification_metrics
from causalmixft.model.adamw import AdamW
from causalmixft.model.backbone import resolve_device
from causalmixft.model.interface import Backbone, BuiltinBackbone, as_backbone
from causalmixft.model.transformer import TabularTransformer


log = logging.getLogger(__name__)

MIXINGS = ("fixed_share", "pool")
SYNTHETIC_PLACES = ("both", "context", "query")
LR_SCHEDULES = ("cosine", "constant")
STOP_REASONS = ("no_steps", "step_cap", "patience")


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 200  # step cap; early stopping may end the run before
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    lr_schedule: str = "cosine"  # after warm-up: cosine decay to 0 at the step cap, or constant
    eval_every: int = 20
    patience: int = 5  # evaluations without improvement before stopping; 0 disables early stopping
    min_steps: int = 0  # no early stop before this step, so every curve has its first points
    batch_rows: int = 128  # rows per episode (the whole pool when smaller)
    query_fraction: float = 0.3
    mixing: str = "fixed_share"
    real_share: float = 0.5  # fixed_share: the real rows' share of every episode with synthetic rows
    synthetic_in: str = "both"
    permute_classes: bool = True  # a random class-id permutation per episode, as in pretraining
    max_grad_norm: float = 1.0
    device: str = "auto"
    select_metric: str = "roc_auc"
    # Evaluations of the built-in backbone: the inference ensemble's size (n_estimators passes,
    # model/ensemble.py) and the cap on its class shifts; None keeps the backbone's own setting.
    n_class_shifts: int | None = None
    n_estimators: int | None = None

    def __post_init__(self):
        for name, value, allowed in (("mixing", self.mixing, MIXINGS), ("synthetic_in", self.synthetic_in,
                                     SYNTHETIC_PLACES), ("lr_schedule", self.lr_schedule, LR_SCHEDULES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        if not 0.0 < self.real_share < 1.0:
            raise ValueError(f"real_share must lie strictly between 0 and 1, got {self.real_share}")
        for name in ("lr", "weight_decay", "query_fraction", "max_grad_norm"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        # An episode needs a context row and a query row; under fixed_share a real part and a
        # synthetic part of at least one row each (a part of 0 rows drops that source unsaid).
        if self.batch_rows < 2:
            raise ValueError(f"batch_rows must be at least 2 (a context and a query row), got {self.batch_rows}")
        real_part = round(self.real_share * self.batch_rows)
        if self.mixing == "fixed_share" and not 1 <= real_part < self.batch_rows:
            raise ValueError(
                f"batch_rows {self.batch_rows} with real_share {self.real_share} gives {real_part} real rows of "
                f"{self.batch_rows} per episode; raise batch_rows so both parts get at least one row"
            )


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
    peak_gpu_memory_mb: float | None = None  # torch.cuda.max_memory_allocated over the run; None off CUDA
    stop_reason: str = "no_steps"  # one of STOP_REASONS
    real_share: float | None = None  # realised share of real rows over all episodes (None: no steps)
    synthetic_rows_seen: int = 0  # distinct synthetic rows that appeared in at least one episode

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason == "patience"

    @property
    def selected(self) -> dict:
        return next(point for point in self.curve if point["step"] == self.selected_step)


Rows = tuple  # (x, y): features (n, d) float32-able, labels (n,) class indices in [0, n_classes)


@dataclass(frozen=True)
class FinetuneData:
    """The encoded rows of one fine-tuning run, which always travel together.

    ``pool`` is what the episodes draw real rows from, ``context`` the inference context of every
    evaluation (in the workflow the real train rows), ``val`` the validation rows (they pick the
    step unless ``select`` is given), ``test`` rows are only recorded; ``synthetic`` is the
    synthetic pool of an augmented method. ``categorical``: (d,) bool, None for all numeric.
    """

    pool: Rows
    context: Rows
    val: Rows
    n_classes: int
    categorical: np.ndarray | None = None
    test: Rows | None = None
    synthetic: Rows | None = None
    select: Rows | None = None


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


class EpisodeSampler:
    """Row indices of every episode, into the stacked pool ``[real rows; synthetic rows]``.

    The real part and the synthetic part of an episode come from two random streams of one
    seed, so under ``fixed_share`` the real part does not depend on the synthetic pool at all.
    A synthetic part larger than the synthetic pool repeats rows (drawn with replacement); it
    never changes the episode's size. Queries never share a row with their own context.
    """

    def __init__(self, y_real: np.ndarray, y_synthetic: np.ndarray, cfg: FinetuneConfig, seed: int):
        self.y_real, self.y_synthetic, self.cfg = y_real, y_synthetic, cfg
        self.real_rng = np.random.default_rng([seed, 0])
        self.synthetic_rng = np.random.default_rng([seed, 1])
        self.task_rng = np.random.default_rng([seed, 2])  # class permutations and column subsets
        n_real, n_synthetic = len(y_real), len(y_synthetic)
        if cfg.mixing == "pool":  # one draw from the union (real_rng), no parts
            self.n_real_part = min(cfg.batch_rows, n_real) if n_synthetic == 0 else 0
            self.n_synthetic_part = min(cfg.batch_rows, n_synthetic) if n_real == 0 else 0
        else:
            # Each source contributes its fixed part whether or not the other one is there:
            # real-only fine-tuning sees exactly the real parts of the augmented runs' episodes.
            # A real pool smaller than its part shrinks both parts, so the share stays real_share.
            real_part = int(round(cfg.real_share * cfg.batch_rows))
            self.n_real_part = min(real_part, n_real)
            scale = self.n_real_part / real_part if n_real else 1.0
            self.n_synthetic_part = int(round((cfg.batch_rows - real_part) * scale)) if n_synthetic else 0
        self.synthetic_seen = np.zeros(n_synthetic, bool)

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        """(context, query) indices of the next episode."""
        cfg, n_real = self.cfg, len(self.y_real)
        if cfg.mixing == "pool" and len(self.y_real) and len(self.y_synthetic):
            y = np.concatenate([self.y_real, self.y_synthetic])
            context, query = sample_episode(len(y), y, cfg.batch_rows, cfg.query_fraction, self.real_rng)
            drawn = np.concatenate([context, query])
            self.synthetic_seen[drawn[drawn >= n_real] - n_real] = True
            return context, query
        real_context, real_query = self._part(self.y_real, self.n_real_part, self.real_rng, "both")
        synthetic_context, synthetic_query = self._part(self.y_synthetic, self.n_synthetic_part,
                                                        self.synthetic_rng, cfg.synthetic_in)
        self.synthetic_seen[synthetic_context] = True
        self.synthetic_seen[synthetic_query] = True
        context = np.concatenate([real_context, synthetic_context + n_real])
        query = np.concatenate([real_query, synthetic_query + n_real])
        if len(query) == 0:  # synthetic rows kept out of queries and no real rows: nothing to learn
            raise ValueError("an episode without query rows: synthetic_in='context' needs real rows")
        return context, query

    def _part(self, y: np.ndarray, n: int, rng: np.random.Generator, place: str):
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = rng.permutation(len(y))[:n] if n <= len(y) else rng.integers(len(y), size=n)
        if place == "context":
            return rows, rows[:0]
        if place == "query":
            return rows[:0], rows
        context, query = split_episode(y[rows], self.cfg.query_fraction, rng)
        return rows[context], rows[query]


def lr_factor(step: int, warmup_steps: int, total_steps: int | None = None, schedule: str = "constant") -> float:
    """Linear warm-up from 1/warmup_steps to 1, then constant or a cosine decay to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or not total_steps or total_steps <= warmup_steps:
        return 1.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def permute_classes(y_context: torch.Tensor, y_query: torch.Tensor, n_classes: int,
                    rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Both label vectors relabelled by one random permutation of the class ids."""
    permutation = torch.as_tensor(rng.permutation(n_classes), device=y_context.device)
    return permutation[y_context], permutation[y_query]


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


def finetune(model: TabularTransformer | Backbone, data: FinetuneData, cfg: FinetuneConfig = FinetuneConfig(),
             seed: int = 0) -> FinetuneResult:
    """Fine-tune a copy of ``model`` on episodes of ``data.pool`` (and ``data.synthetic``, if
    given); return it with the best weights.

    Evaluations happen at step 0 (the model as given), every ``eval_every`` steps and after the
    last step. The returned model carries the weights of the evaluation with the best
    validation ``select_metric`` (ties: the earlier step). ``steps=0`` gives the step-0
    evaluation only (zero-shot); the pools may then be empty.

    With ``data.select`` the step is selected (and the run stopped) on that selection set instead
    of the validation rows; each evaluation records it as ``select`` beside ``val``.
    """
    start = time.perf_counter()
    (pool_x, pool_y), (context_x, context_y), (val_x, val_y) = data.pool, data.context, data.val
    test_x, test_y = data.test or (None, None)
    synthetic_x, synthetic_y = data.synthetic or (None, None)
    select_x, select_y = data.select or (None, None)
    n_classes, categorical = data.n_classes, data.categorical
    if cfg.select_metric not in HIGHER_IS_BETTER:
        raise ValueError(f"select_metric must be one of {sorted(HIGHER_IS_BETTER)}, not {cfg.select_metric!r}")
    context_x, context_y = np.asarray(context_x, np.float32), np.asarray(context_y, np.int64)
    n_features = context_x.shape[1]
    real_x, real_y = np.asarray(pool_x, np.float32).reshape(-1, n_features), np.asarray(pool_y, np.int64)
    if synthetic_x is None:
        synthetic_x, synthetic_y = np.zeros((0, n_features), np.float32), np.zeros(0, np.int64)
    synthetic_x = np.asarray(synthetic_x, np.float32).reshape(-1, n_features)
    synthetic_y = np.asarray(synthetic_y, np.int64)
    categorical = np.zeros(n_features, bool) if categorical is None else np.asarray(categorical, bool)
    for name, y in (("pool", real_y), ("synthetic", synthetic_y), ("context", context_y), ("val", val_y),
                    ("test", test_y)):
        _check_labels(name, None if y is None else np.asarray(y), n_classes)
    if cfg.steps > 0 and len(real_y) + len(synthetic_y) < 2:
        raise ValueError(f"fine-tuning needs at least 2 pool rows, got {len(real_y) + len(synthetic_y)}")
    if cfg.steps > 0 and (val_x is None or len(val_x) == 0):
        raise ValueError("fine-tuning needs validation rows to select a step")

    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    was_module = isinstance(model, TabularTransformer)
    # Train a copy: the caller's model stays the pre-trained one (zero-shot runs reuse it).
    backbone = copy.deepcopy(as_backbone(model)).to(device)
    for name in ("n_class_shifts", "n_estimators"):
        if getattr(cfg, name) is not None:
            if not isinstance(backbone, BuiltinBackbone):
                raise ValueError(f"{name} is for the built-in backbone only, not {type(backbone).__name__}")
            backbone.ensemble = replace(backbone.ensemble, **{name: getattr(cfg, name)})
    if n_classes > backbone.max_classes:
        raise ValueError(f"{n_classes} classes exceed the backbone's maximum of {backbone.max_classes}")
    module = backbone.module
    episodes = EpisodeSampler(real_y, synthetic_y, cfg, seed)
    pool_x_t = torch.as_tensor(np.concatenate([real_x, synthetic_x]), device=device)
    pool_y_t = torch.as_tensor(np.concatenate([real_y, synthetic_y]), device=device)
    categorical_t = torch.as_tensor(categorical, device=device)
    optimizer = AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    higher = HIGHER_IS_BETTER[cfg.select_metric]

    def evaluate(step: int, train_loss: float | None) -> dict:
        module.eval()
        splits = {"val": (val_x, val_y), "test": (test_x, test_y)}
        if select_x is not None:
            splits["select"] = (select_x, select_y)
        metrics = _evaluate(backbone, context_x, context_y, splits, n_classes, categorical)
        point = {"step": step, **metrics, "train_loss": train_loss}
        module.train()
        return point

    chooser = "val" if select_x is None else "select"  # the split that picks the step
    curve = [evaluate(0, None)]
    best_value = curve[0][chooser].get(cfg.select_metric, float("nan"))
    best_step, best_state = 0, None
    evals_without_gain, stop_reason = 0, "no_steps" if cfg.steps == 0 else "step_cap"
    losses: list[float] = []
    train_time, step, real_rows, all_rows = 0.0, 0, 0, 0
    n_real = len(real_y)

    module.train()
    while step < cfg.steps:
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.warmup_steps, cfg.steps, cfg.lr_schedule)
        context, query = episodes()
        real_rows += int((context < n_real).sum() + (query < n_real).sum())
        all_rows += len(context) + len(query)
        columns = np.arange(n_features)
        if backbone.max_features is not None and n_features > backbone.max_features:
            # As at prediction time: a random subset of columns the network can take at once.
            columns = np.sort(episodes.task_rng.choice(n_features, backbone.max_features, replace=False))
        columns_t = torch.as_tensor(columns, device=device)
        context_t, query_t = torch.as_tensor(context, device=device), torch.as_tensor(query, device=device)
        y_context, y_query = pool_y_t[context_t], pool_y_t[query_t]
        if cfg.permute_classes:
            y_context, y_query = permute_classes(y_context, y_query, n_classes, episodes.task_rng)
        losses.append(finetune_step(backbone, optimizer, pool_x_t[context_t][:, columns_t], y_context,
                                    pool_x_t[query_t][:, columns_t], y_query, n_classes,
                                    categorical_t[columns_t], cfg.max_grad_norm))
        step += 1
        train_time += time.perf_counter() - tick

        if step % max(cfg.eval_every, 1) == 0 or step == cfg.steps:
            point = evaluate(step, float(np.mean(losses)))
            if not math.isfinite(point["train_loss"]):
                # Said in the job's log; the selection keeps an earlier step (a NaN score never improves).
                log.warning(f"training loss {point['train_loss']} by step {step}: fine-tuning diverged (lr {cfg.lr})")
            curve.append(point)
            losses = []
            value = point[chooser].get(cfg.select_metric, float("nan"))
            if _improves(value, best_value, higher):
                best_value, best_step, evals_without_gain = value, step, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                evals_without_gain += 1
                if 0 < cfg.patience <= evals_without_gain and step >= cfg.min_steps and step < cfg.steps:
                    stop_reason = "patience"
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
        peak_gpu_memory_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        stop_reason=stop_reason,
        real_share=round(real_rows / all_rows, 4) if all_rows else None,
        synthetic_rows_seen=int(episodes.synthetic_seen.sum()),
    )
