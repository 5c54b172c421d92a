"""Splits: the outer test fold and the scarce real budget (train + validation) of one fold.

For fold ``k`` of a prepared table:

1. Stratified K-fold over all rows (``StratifiedKFold``, shuffled with seed
   ``derive_seed(dataset, "outer", seed)``, so every fold of a dataset comes from one
   partition); fold ``k`` is the test set, stratified down to ``test_max_rows`` if set.
2. The other rows (the pool) are dealt once into a train stream and a validation stream
   (stratified, ``val_fraction`` of the pool to validation), each in a stratified order: every
   class's rows in a seeded shuffle, interleaved so that each prefix holds close to the class
   shares (within one row per class) and the first rows hold one row of every class.
   A real budget of ``b`` rows is the first ``b - round(val_fraction * b)`` rows of the train
   stream and the first ``round(val_fraction * b)`` of the validation stream. So a smaller budget
   is nested in every larger one, a budget's rows do not depend on which other budgets are run,
   and every budget of a fold has the same test rows. Seeds: ``derive_seed(dataset, fold, part, seed)``.

Stratified draws allocate rows to classes in proportion to their counts (largest remainder)
while keeping every class in train (and, when it fits, in validation and the capped test
set). Row order inside each split is a seeded shuffle; the meta lists, for each split, the
row indices into the prepared table (which keeps the source's row order) in that order.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from causalmixft.data.schema import TARGET
from causalmixft.errors import StageError
from causalmixft.io import write_json, write_parquet
from causalmixft.seeding import derive_seed

STAGE = "split"
PARTS = ("train", "val", "test")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    """The config's ``protocol`` settings that shape a split (``folds`` only picks which to make)."""

    n_folds: int
    real_budget: int
    val_fraction: float
    seed: int = 0
    test_max_rows: int | None = None

    @classmethod
    def from_config(cls, protocol: Mapping[str, Any]) -> "Protocol":
        return cls(**{name: protocol[name] for name in cls.__dataclass_fields__ if name in protocol})


@dataclass
class Split:
    parts: dict[str, pd.DataFrame]  # train, val, test
    meta: dict


def make_split(dataset: str, table: pd.DataFrame, fold: int, protocol: Protocol) -> Split:
    """Train, validation and test rows of ``fold`` of a prepared table."""

    def fail(problem: str) -> StageError:
        return StageError(STAGE, dataset, problem)

    labels = table[TARGET].astype(str).to_numpy()
    n_rows, k = len(table), protocol.n_folds
    counts = pd.Series(labels).value_counts().sort_index()
    if not 0 <= fold < k:
        raise fail(f"fold {fold} is out of range for n_folds={k}")
    too_rare = {c: int(n) for c, n in counts.items() if n < k}
    if too_rare:
        raise fail(f"classes with fewer rows than n_folds={k} (each test fold needs one): {too_rare}")
    largest_fold = -(-n_rows // k)
    if n_rows - largest_fold < protocol.real_budget:
        raise fail(
            f"{n_rows} rows are fewer than real_budget={protocol.real_budget} plus one test fold "
            f"(up to {largest_fold} rows with n_folds={k}); give this dataset the budgets that fit "
            f"(datasets.{dataset}.budgets)"
        )
    n_val = int(round(protocol.val_fraction * protocol.real_budget))
    if n_val < 1 or protocol.real_budget - n_val < len(counts):
        raise fail(
            f"real_budget={protocol.real_budget} with val_fraction={protocol.val_fraction} gives "
            f"{protocol.real_budget - n_val} train and {n_val} validation rows; need at least one validation row "
            f"and one train row per class ({len(counts)} classes)"
        )

    seeds = {
        "outer": derive_seed(dataset, "outer", protocol.seed),
        **{part: derive_seed(dataset, fold, part, protocol.seed) for part in ("test", "budget", "val")},
    }
    outer = StratifiedKFold(n_splits=k, shuffle=True, random_state=seeds["outer"])
    pool, test = list(outer.split(np.zeros(n_rows), labels))[fold]
    test_fold_rows = len(test)
    test_rng = np.random.default_rng(seeds["test"])
    if protocol.test_max_rows is not None and len(test) > protocol.test_max_rows:
        test, _ = _stratified_draw(test, labels, protocol.test_max_rows, test_rng)
    else:
        test = test_rng.permutation(test)
    n_val_stream = int(round(protocol.val_fraction * len(pool)))
    val_rng = np.random.default_rng(seeds["val"])
    train_pool, val_pool = _stratified_draw(pool, labels, len(pool) - n_val_stream, val_rng)
    n_train = protocol.real_budget - n_val
    if n_train > len(train_pool) or n_val > len(val_pool):
        raise fail(
            f"real_budget={protocol.real_budget} needs {n_train} train and {n_val} validation rows; the "
            f"fold's pool of {len(pool)} rows gives {len(train_pool)} and {len(val_pool)} at "
            f"val_fraction={protocol.val_fraction}; give this dataset the budgets that fit (datasets.{dataset}.budgets)"
        )
    budget_rng = np.random.default_rng(seeds["budget"])
    train = stratified_order(train_pool, labels, budget_rng)[:n_train]
    val = stratified_order(val_pool, labels, budget_rng)[:n_val]
    missing = sorted(set(counts.index) - set(labels[train]))
    if missing:  # the allocation keeps one train row per class; this guards that promise
        raise fail(f"classes {missing} have no train row in fold {fold}")

    rows = {"train": train, "val": val, "test": test}
    parts = {part: table.iloc[index].reset_index(drop=True) for part, index in rows.items()}
    meta = {
        "dataset": dataset,
        "fold": fold,
        "protocol": asdict(protocol),
        "seeds": seeds,
        "test_fold_rows": test_fold_rows,
        "counts": {part: _counts(labels[index]) for part, index in rows.items()},
        "rows": {part: index.tolist() for part, index in rows.items()},
    }
    summary = {part: meta["counts"][part]["n"] for part in PARTS}
    log.info("%s fold %d: %s (test fold had %d rows)", dataset, fold, summary, test_fold_rows)
    return Split(parts, meta)


def write_split(split: Split, paths: Mapping[str, str | os.PathLike], meta_path: str | os.PathLike) -> None:
    for part in PARTS:
        write_parquet(paths[part], split.parts[part])
    write_json(meta_path, split.meta)


def _counts(labels: np.ndarray) -> dict:
    classes, counts = np.unique(labels, return_counts=True)
    return {"n": int(counts.sum()), "classes": {str(c): int(n) for c, n in zip(classes, counts)}}


def stratified_order(index: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``index`` ordered so that every prefix is close to stratified.

    Each class's rows are shuffled; row j of class c (of n_c) gets the key (j + u_c) / n_c with a
    random offset u_c in [0, 1), and rows are sorted by key, except that the first row of every
    class comes first (in random class order). A prefix of m rows then holds, per class, within
    one row of m * n_c / n, and every class once m reaches the number of classes.
    """
    classes = np.unique(labels[index])
    firsts, keyed = [], []
    for cls in rng.permutation(classes):
        members = rng.permutation(index[labels[index] == cls])
        offset = rng.random()
        firsts.append(members[0])
        keyed += [((j + offset) / len(members), row) for j, row in enumerate(members[1:], start=1)]
    keyed.sort(key=lambda pair: pair[0])
    return np.array(firsts + [row for _, row in keyed], dtype=index.dtype)


def _stratified_draw(
    index: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` of ``index`` stratified by label: (drawn in shuffled order, the rest).

    Every class present gets at least one drawn row when ``n`` allows it, and keeps at least
    one undrawn row when the rest has room for it.
    """
    classes, available = np.unique(labels[index], return_counts=True)
    lower = np.ones_like(available) if n >= len(classes) else np.zeros_like(available)
    upper = available - 1 if len(index) - n >= len(classes) else available
    upper = np.maximum(upper, lower)
    take = _allocate(available, n, lower, upper)
    drawn, rest = [], []
    for cls, k in zip(classes, take):
        members = rng.permutation(index[labels[index] == cls])
        drawn.append(members[:k])
        rest.append(members[k:])
    return rng.permutation(np.concatenate(drawn)), np.sort(np.concatenate(rest))


def _allocate(available: np.ndarray, n: int, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Per-class counts summing to ``n``, within [lower, upper], proportional to ``available``.

    Largest remainder: start from the floor of each class's quota (clipped to the bounds),
    then hand out or take back single rows by how far each class is from its quota.
    """
    quota = n * available / available.sum()
    take = np.clip(np.floor(quota).astype(int), lower, upper)
    while take.sum() < n:
        room = np.where(take < upper, quota - take, -np.inf)
        take[np.argmax(room)] += 1
    while take.sum() > n:
        excess = np.where(take > lower, take - quota, -np.inf)
        take[np.argmax(excess)] += -1
    return take
