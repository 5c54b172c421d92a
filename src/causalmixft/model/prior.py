"""The synthetic prior the backbone is pretrained on: random classification tasks, made in torch.

Three families; the first two as in TabPFN and Mitra:
- ``mlp_scm``: a random structural causal model realised as a random MLP. Root causes flow
  through layers with random activations and noise; features and the label are read off
  random hidden nodes, so some features are causes of the label and others are effects.
- ``tree``: the label is a sum of random axis-aligned decision trees over the features,
  which gives the step-like, interaction-heavy functions that real tables are full of.
- ``sum_threshold`` (share ``sum_fraction``, 0 in the shipped prior until weights are trained on it):
  features of varied marginals (normal, uniform, log-normal, small integers) and a label that
  thresholds a signed sum of a few of them, like "price A + price B <= budget": the additive
  rules on raw, same-unit values that the MLP and tree families rarely produce.
A continuous latent label becomes 2-10 classes through random quantile thresholds. Some
features are then made categorical (binned to integer codes in random order), some get
skewed, and some datasets get missing values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PriorConfig:
    min_rows: int = 96
    max_rows: int = 256
    min_features: int = 1
    max_features: int = 24
    max_classes: int = 10
    tree_fraction: float = 0.4
    categorical_probability: float = 0.25  # per dataset: chance that it has categorical columns
    missing_probability: float = 0.15  # per dataset: chance that it has missing values
    sum_fraction: float = 0.0  # share of sum_threshold datasets (taken from the MLP-SCM share)


@dataclass
class PriorBatch:
    x: torch.Tensor  # (batch, rows, features), NaN = missing
    y: torch.Tensor  # (batch, rows) class index
    categorical: torch.Tensor  # (batch, features) bool
    n_classes: torch.Tensor  # (batch,)
    n_context: int


def _random_activation(g: torch.Generator):
    choices = [torch.tanh, torch.relu, torch.sin, lambda t: t, torch.abs, lambda t: torch.sign(t) * t**2,
               lambda t: (t > 0).float()]
    return choices[int(torch.randint(len(choices), (1,), generator=g))]


def _uniform(low: float, high: float, g: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand(1, generator=g))


def mlp_scm_latent(n_rows: int, n_features: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (rows, n_features) and a continuous latent label from a random MLP-SCM."""
    n_layers = int(torch.randint(1, 5, (1,), generator=g))
    width = int(torch.randint(max(4, n_features + 1), 2 * n_features + 16, (1,), generator=g))
    n_causes = int(torch.randint(1, width + 1, (1,), generator=g))
    noise = 10 ** _uniform(-2.5, -0.3, g)
    if float(torch.rand(1, generator=g)) < 0.5:
        h = torch.randn(n_rows, n_causes, generator=g) * _uniform(0.5, 2.0, g)
    else:
        h = torch.rand(n_rows, n_causes, generator=g) * 2 - 1
    nodes = []
    for _ in range(n_layers):
        weight = torch.randn(h.shape[1], width, generator=g) / h.shape[1] ** 0.5
        weight = weight * (torch.rand(weight.shape, generator=g) < _uniform(0.3, 1.0, g))  # sparse edges
        h = _random_activation(g)(h @ weight + torch.randn(width, generator=g) * 0.5)
        h = h + noise * torch.randn(h.shape, generator=g)
        h = (h - h.mean(0)) / (h.std(0) + 1e-6)
        nodes.append(h)
    nodes = torch.cat(nodes, dim=1)
    picked = torch.randperm(nodes.shape[1], generator=g)[: n_features + 1]
    return nodes[:, picked[1:]], nodes[:, picked[0]]


def tree_latent(n_rows: int, n_features: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and a continuous latent label as a sum of random decision trees."""
    x = torch.randn(n_rows, n_features, generator=g)
    uniform = torch.rand(n_features, generator=g) < 0.3
    x[:, uniform] = torch.rand(n_rows, int(uniform.sum()), generator=g) * 2 - 1
    latent = torch.zeros(n_rows)
    relevant = torch.randperm(n_features, generator=g)[: int(torch.randint(1, n_features + 1, (1,), generator=g))]
    for _ in range(int(torch.randint(1, 9, (1,), generator=g))):
        depth = int(torch.randint(1, 6, (1,), generator=g))
        n_inner = 2**depth - 1
        split_feature = relevant[torch.randint(len(relevant), (n_inner,), generator=g)]
        split_row = torch.randint(n_rows, (n_inner,), generator=g)
        threshold = x[split_row, split_feature]  # thresholds at observed values: every split is used
        leaves = torch.randn(2**depth, generator=g)
        index = torch.zeros(n_rows, dtype=torch.long)
        for level in range(depth):
            node = 2**level - 1 + index
            go_right = x[torch.arange(n_rows), split_feature[node]] > threshold[node]
            index = 2 * index + go_right.long()
        latent += leaves[index]
    latent += 10 ** _uniform(-2.5, -0.5, g) * torch.randn(n_rows, generator=g) * (latent.std() + 1e-6)
    return x, latent


def sum_threshold_latent(n_rows: int, n_features: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Varied feature marginals; the latent label is a signed sum of 1-4 of them.

    Half of the datasets add raw values of one common scale with weights +-1 (amounts against a
    budget), the other half standardized values with random weights.
    """
    x = torch.empty(n_rows, n_features)
    scale = 10 ** _uniform(0, 3, g)
    for j in range(n_features):
        kind = int(torch.randint(4, (1,), generator=g))
        if kind == 0:
            x[:, j] = torch.randn(n_rows, generator=g)
        elif kind == 1:
            x[:, j] = torch.rand(n_rows, generator=g)
        elif kind == 2:
            x[:, j] = torch.exp(torch.randn(n_rows, generator=g) * _uniform(0.2, 1.0, g))
        else:
            x[:, j] = torch.floor(torch.rand(n_rows, generator=g) * int(torch.randint(2, 20, (1,), generator=g)))
    relevant = torch.randperm(n_features, generator=g)[: int(torch.randint(1, min(n_features, 4) + 1, (1,), generator=g))]
    signs = torch.where(torch.rand(len(relevant), generator=g) < 0.7, 1.0, -1.0)
    if float(torch.rand(1, generator=g)) < 0.5:
        x[:, relevant] = x[:, relevant] / (x[:, relevant].std(0) + 1e-6) * scale  # one unit for all terms
        latent = (x[:, relevant] * signs).sum(1)
    else:
        standardized = (x[:, relevant] - x[:, relevant].mean(0)) / (x[:, relevant].std(0) + 1e-6)
        latent = (standardized * signs * (0.5 + 1.5 * torch.rand(len(relevant), generator=g))).sum(1)
    latent += 10 ** _uniform(-3, -1, g) * torch.randn(n_rows, generator=g) * (latent.std() + 1e-6)
    return x, latent


def _classes_from_latent(latent: torch.Tensor, n_classes: int, g: torch.Generator) -> torch.Tensor:
    """Random quantile thresholds, then a random permutation of class ids."""
    cuts = torch.sort(torch.rand(n_classes - 1, generator=g) * 0.9 + 0.05).values
    latent = latent.contiguous()
    y = torch.bucketize(latent, torch.quantile(latent, cuts))
    return torch.randperm(n_classes, generator=g)[y]


def _postprocess_features(x: torch.Tensor, g: torch.Generator, cfg: PriorConfig,
                          skew_allowed: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    n_rows, n_features = x.shape
    categorical = torch.zeros(n_features, dtype=torch.bool)
    if float(torch.rand(1, generator=g)) < cfg.categorical_probability:
        categorical = torch.rand(n_features, generator=g) < _uniform(0.2, 1.0, g)
        for j in torch.nonzero(categorical).flatten().tolist():
            levels = int(torch.randint(2, 11, (1,), generator=g))
            cuts = torch.quantile(x[:, j], torch.sort(torch.rand(levels - 1, generator=g)).values)
            codes = torch.bucketize(x[:, j].contiguous(), cuts)
            x[:, j] = torch.randperm(levels, generator=g)[codes].float()
    skew = (torch.rand(n_features, generator=g) < 0.2) & ~categorical
    if skew_allowed:  # sum_threshold features have their own skewed marginals (exp of those overflows)
        x[:, skew] = torch.exp(x[:, skew] * _uniform(0.5, 2.0, g))
    if float(torch.rand(1, generator=g)) < cfg.missing_probability:
        rate = _uniform(0.01, 0.3, g)
        x = x.masked_fill(torch.rand(x.shape, generator=g) < rate, float("nan"))
    return x, categorical


def sample_dataset(n_rows: int, n_features: int, n_classes: int, g: torch.Generator, cfg: PriorConfig):
    u = float(torch.rand(1, generator=g))  # one draw: sum_fraction 0 keeps the original stream
    if u < cfg.tree_fraction:
        family = tree_latent
    elif u < cfg.tree_fraction + cfg.sum_fraction:
        family = sum_threshold_latent
    else:
        family = mlp_scm_latent
    x, latent = family(n_rows, n_features, g)
    y = _classes_from_latent(latent, n_classes, g)
    x, categorical = _postprocess_features(x, g, cfg, skew_allowed=family is not sum_threshold_latent)
    return x, y, categorical


def sample_batch(batch_size: int, g: torch.Generator, cfg: PriorConfig = PriorConfig()) -> PriorBatch:
    """A batch of datasets sharing row and feature counts; context/query split at random."""
    n_rows = int(torch.randint(cfg.min_rows, cfg.max_rows + 1, (1,), generator=g))
    # Small tables are most common in the target use, wide ones still appear.
    n_features = int(cfg.min_features + (cfg.max_features - cfg.min_features) * float(torch.rand(1, generator=g)) ** 1.5)
    xs, ys, cats, ks = [], [], [], []
    for _ in range(batch_size):
        # Two classes most often, up to max_classes.
        k = 2 if float(torch.rand(1, generator=g)) < 0.5 else int(torch.randint(3, cfg.max_classes + 1, (1,), generator=g))
        x, y, cat = sample_dataset(n_rows, n_features, k, g, cfg)
        xs.append(x), ys.append(y), cats.append(cat), ks.append(k)
    n_context = int(n_rows * _uniform(0.3, 0.8, g))
    return PriorBatch(torch.stack(xs), torch.stack(ys), torch.stack(cats), torch.tensor(ks), n_context)
