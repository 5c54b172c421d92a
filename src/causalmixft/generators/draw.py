"""Nested synthetic samples from any fitted generator.

All sizes come from one ordered pool of valid rows: size n is the pool's first n rows, so a
larger sample always contains every smaller one and a scaling curve is not confounded by
resampling noise. The pool is a fixed sequence of seeded chunks (256, 512, 1024, ... rows, chunk k
drawn with seed ``derive_seed(seed, "draw", k)``), cast to the schema (rows the casting rules in
:mod:`causalmixft.generators.cast` reject are dropped), drawn until it covers the sizes asked
for. The chunks do not depend on the sizes, so the first n rows are the same whichever larger sizes are asked for in the
same call or later: the workflow samples every size in its own job, and adding a size to the
sweep leaves the existing samples (and the runs on them) as they are.

With ``match_label_distribution`` the pool is ordered so that every prefix has close to the real
train class shares: position k takes the next row of the class that is furthest below its share
of k rows (ties to the earlier class), so each prefix's class counts are within one row of the
target. If the generator yields too few rows of a class even after the extra draws, the other
classes fill in and the shortfall is reported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from causalmixft.causal.checks import check_train_table
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.generators.cast import ObservedDomain, cast_to_schema
from causalmixft.generators.protocol import Generator
from causalmixft.seeding import derive_seed

STAGE = "sample"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingSettings:
    """How a sample is drawn and scored: the config's ``synthetic`` keys that shape a sample and its
    fidelity report (``CONFIG_KEYS``; their defaults are these, the one place that spells them),
    and the fixed draw sequence."""

    clip_to_observed: bool = True
    match_label_distribution: bool = True
    fidelity_rows: int = 1024  # real and synthetic rows the fidelity report scores at most
    first_chunk: int = 256  # rows of the first draw; each further draw doubles (a fixed sequence)
    max_draw_factor: float = 20.0  # stop drawing once this many times the largest size is drawn

    CONFIG_KEYS = ("clip_to_observed", "fidelity_rows", "match_label_distribution")

    @classmethod
    def from_config(cls, synthetic: Mapping | None) -> "SamplingSettings":
        """From the config's ``synthetic`` block or the rules' params (other keys belong to the workflow)."""
        synthetic = synthetic or {}
        default = cls()
        return cls(
            clip_to_observed=bool(synthetic.get("clip_to_observed", default.clip_to_observed)),
            match_label_distribution=bool(synthetic.get("match_label_distribution", default.match_label_distribution)),
            fidelity_rows=int(synthetic.get("fidelity_rows", default.fidelity_rows)),
        )

    def to_params(self) -> dict:
        """The config keys as the rules hand them to their scripts (plain, sorted: a Snakemake param)."""
        return {key: getattr(self, key) for key in self.CONFIG_KEYS}


@dataclass
class SyntheticDraw:
    rows: pd.DataFrame  # the ordered pool, exactly max(sizes) rows
    sizes: list[int]
    info: dict = field(default_factory=dict)

    def prefix(self, n: int) -> pd.DataFrame:
        return self.rows.iloc[:n].reset_index(drop=True)

    def samples(self) -> dict[int, pd.DataFrame]:
        """Every requested positive size and its nested sample."""
        return {n: self.prefix(n) for n in self.sizes if n > 0}


def sample_synthetic(
    generator: Generator,
    train: pd.DataFrame,
    schema: TableSchema,
    sizes: list[int],
    seed: int,
    options: SamplingSettings | None = None,
    dataset: str | None = None,
) -> SyntheticDraw:
    """Draw from a fitted ``generator`` and return the nested samples for ``sizes`` (0 = none)."""
    dataset = dataset or schema.dataset or "?"
    options = options or SamplingSettings()
    if any(int(n) < 0 for n in sizes):
        raise StageError(STAGE, dataset, f"sizes must be >= 0, got {sorted(sizes)}")
    check_train_table(train, schema, STAGE, dataset)
    sizes = sorted({int(n) for n in sizes})
    largest = max(sizes, default=0)
    domain = ObservedDomain.from_train(train, schema)
    classes = sorted(domain.levels[schema.target])
    train_counts = train[schema.target].astype(str).value_counts()
    shares = np.array([train_counts.get(c, 0) for c in classes], dtype=float) / len(train)
    if largest == 0:
        return SyntheticDraw(schema.cast(train.iloc[:0]), sizes, {"seed": seed, "drawn": 0})

    pool, drawn, dropped, rounds = _draw_pool(
        generator, schema, domain, largest, shares, classes, seed, options, dataset
    )
    if len(pool) < largest:
        raise StageError(
            STAGE,
            dataset,
            f"the generator gave {len(pool)} valid rows of the {largest} needed after drawing {drawn} "
            f"({dropped['total']} dropped: {dropped['non_finite']} missing/non-finite, "
            f"{dropped['unknown_level']} unseen levels)",
        )
    labels = pool[schema.target].to_numpy()
    if options.match_label_distribution:
        order = label_matched_order(labels, classes, shares, largest)
    else:
        order = np.arange(largest)
    rows = pool.iloc[order].reset_index(drop=True)
    counts = rows[schema.target].value_counts()
    shortfall = {
        c: int(round(s * largest)) - int(counts.get(c, 0))
        for c, s in zip(classes, shares)
        if int(round(s * largest)) - int(counts.get(c, 0)) > 1
    }
    info = {
        "seed": seed,
        "sizes": sizes,
        "drawn": drawn,
        "rounds": rounds,
        "valid": len(pool),
        "dropped": dropped,
        "clip_to_observed": options.clip_to_observed,
        "match_label_distribution": options.match_label_distribution,
        "label_shortfall": shortfall,
    }
    if shortfall:
        log.warning("%s: synthetic rows lack classes %s for the train label shares", dataset, shortfall)
    return SyntheticDraw(rows, sizes, info)


def _draw_pool(generator, schema, domain, largest, shares, classes, seed, options, dataset):
    """Seeded chunks until the valid rows cover the largest size (and, if asked, every class's share).

    Chunk k has ``first_chunk * 2**k`` rows and seed ``derive_seed(seed, "draw", k)`` whatever the
    sizes, so the pool for a smaller size is a prefix of the pool for a larger one.
    """
    frames, drawn, rounds = [], 0, 0
    dropped = {"non_finite": 0, "unknown_level": 0, "total": 0}
    wanted = np.ceil(shares * largest)
    budget = max(math.ceil(largest * options.max_draw_factor), options.first_chunk)
    while drawn < budget:
        request = options.first_chunk * 2**rounds
        try:
            raw = generator.sample(request, derive_seed(seed, "draw", rounds))
            valid, lost = cast_to_schema(raw, schema, domain, options.clip_to_observed)
        except (ValueError, TypeError) as exc:
            raise StageError(
                STAGE, dataset, f"{getattr(generator, 'name', 'generator')} failed to sample: {exc}"
            ) from exc
        frames.append(valid)
        drawn += request
        rounds += 1
        for key in dropped:
            dropped[key] += lost[key]
        have = sum(len(f) for f in frames)
        if have < largest:
            continue
        if options.match_label_distribution:
            counts = pd.concat(frames)[schema.target].value_counts()
            if any(counts.get(c, 0) < want for c, want in zip(classes, wanted)):
                continue
        break
    return pd.concat(frames, ignore_index=True), drawn, dropped, rounds


def label_matched_order(labels: np.ndarray, classes: list[str], shares: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows such that every prefix has close to ``shares`` of each class.

    Position k takes the next unused row (in pool order) of the class with the largest deficit
    ``share * (k + 1) - taken``; classes with no rows left are skipped, so the others fill in.
    """
    queues = [np.flatnonzero(labels == c) for c in classes]
    pointer = np.zeros(len(classes), dtype=int)
    lengths = np.array([len(q) for q in queues])
    order = np.empty(n, dtype=int)
    for k in range(n):
        available = pointer < lengths
        deficit = np.where(available, shares * (k + 1) - pointer, -np.inf)
        c = int(np.argmax(deficit))  # argmax returns the first maximum: ties go to the earlier class
        order[k] = queues[c][pointer[c]]
        pointer[c] += 1
    return order
