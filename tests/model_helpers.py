"""Tiny backbones and toy tables shared by the test_model_* files (kept small: one CPU thread)."""

from __future__ import annotations

import numpy as np
import torch

from causalmixft.model.transformer import ModelConfig, TabularTransformer

torch.set_num_threads(1)

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=2, d_ff=32, max_classes=10, max_features=100, n_thinking_rows=2)


def tiny_model(seed: int = 0, **overrides) -> TabularTransformer:
    """A randomly initialised model; seeded without touching the global RNG state."""
    cfg = ModelConfig(**{**TINY.__dict__, **overrides})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TabularTransformer(cfg).eval()


def toy_table(n_rows: int, n_features: int = 5, n_classes: int = 2, seed: int = 0):
    """Gaussian features; the label is a quantile bucket of a linear score, learnable in few steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1 % n_features]
    cuts = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    return x, np.searchsorted(cuts, score).astype(np.int64)
