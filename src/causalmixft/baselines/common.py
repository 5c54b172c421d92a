"""Helpers the baseline generators share: options, class allocation, seeding (missing-value fills:
:func:`causalmixft.data.impute.fill_missing`, the SCM's too)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from typing import Iterator, Mapping, TypeVar

import numpy as np
import pandas as pd

from causalmixft.data.schema import TableSchema

T = TypeVar("T")


def settings(cls: type[T], options: Mapping | None, generator: str) -> T:
    """A settings dataclass from config options; an unknown key is an error that names the generator."""
    options = dict(options or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{generator}: unknown options {unknown}; known: {sorted(known)}")
    return cls(**options)


def class_shares(labels: pd.Series) -> dict[str, float]:
    """Class -> share of the train rows, classes in sorted order (classes absent from train left out)."""
    counts = labels.astype(str).value_counts()
    return {c: float(counts[c]) / len(labels) for c in sorted(counts.index)}


def allocate(n: int, shares: Mapping[str, float]) -> dict[str, int]:
    """``n`` rows split by ``shares``: floors, then the largest remainders (ties to the earlier class)."""
    classes = list(shares)
    exact = np.array([shares[c] for c in classes], dtype=float) * n
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    for i in sorted(range(len(classes)), key=lambda i: (-remainder[i], i))[: n - int(counts.sum())]:
        counts[i] += 1
    return {c: int(k) for c, k in zip(classes, counts)}


@contextlib.contextmanager
def global_seed(seed: int, torch_too: bool = False) -> Iterator[None]:
    """Seed Python's, numpy's (and torch's) global generators for a library that draws from them; restore after."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch_state = None
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if torch_too:
        import torch

        torch_state = torch.get_rng_state()
        torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if torch_state is not None:
            import torch

            torch.set_rng_state(torch_state)
