"""TabEBM (Margeloiu, Jiang et al., NeurIPS 2024) with the project's own in-context backbone.

TabEBM turns an in-context classifier into one energy-based model per class, with no training:

1. Features are put on one scale: numeric values and categorical level codes are standardized
   with the train mean and std (missing values filled first).
2. For class c, a surrogate binary task: the real train rows of class c (label 0) against a few
   "negative" points far from the data, at corners of the hypercube [-d, d]^D (``n_negatives``,
   default 4 as in the reference code: random corners together with their antipodes; d =
   ``negative_distance``, default 5), label 1.
3. The classifier, given that task as context, gives logits f(x) for any x; the class energy is
   E_c(x) = -logsumexp(f(x)), low near the rows of class c.
4. Samples of class c follow stochastic gradient Langevin dynamics from perturbed real rows of
   class c: x_0 = a random real row + N(0, ``starting_point_noise_std``^2),
   x_{t+1} = x_t - ``sgld_step_size`` * grad E_c(x_t) + ``sgld_noise_std`` * N(0, I), for
   ``sgld_steps`` steps.

Departures (see docs/baselines.md): the classifier is the workflow's backbone (``backbone.weights``,
offline) instead of TabPFN; categorical codes are treated as numbers during SGLD and rounded to
the nearest code observed in the train rows of the feature afterwards; by default each chain
follows the gradient of its own energy, as the paper's update reads (``gradient: mean`` follows
the reference code, which takes the gradient of the mean energy over the chains drawn together,
so that each chain's step shrinks with their number); ``n`` rows are split over the classes by
their train shares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causalmixft.baselines.common import allocate, class_shares, settings
from causalmixft.data.impute import fill_missing
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.seeding import derive_seed

NEEDS = ("backbone",)
STAGE = "fit"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TabEBMSettings:
    sgld_steps: int = 200
    sgld_step_size: float = 0.1
    sgld_noise_std: float = 0.01
    starting_point_noise_std: float = 0.01
    negative_distance: float = 5.0
    n_negatives: int = 4
    chunk_rows: int = 1024  # chains per forward/backward pass (bounds memory, not results)
    # "chain": each chain follows the gradient of its own energy (the paper's update);
    # "mean": the gradient of the mean energy over the chains of a class drawn in one call, as
    # TabEBM's reference code does (each chain's step shrinks with the number of chains).
    gradient: str = "chain"

    def __post_init__(self):
        if self.gradient not in ("chain", "mean"):
            raise ValueError(f"tabebm: gradient must be 'chain' or 'mean', got {self.gradient!r}")
        if self.sgld_steps < 0 or self.n_negatives < 1 or self.chunk_rows < 1:
            raise ValueError(f"tabebm: sgld_steps must be >= 0, n_negatives and chunk_rows >= 1, got {self}")
        if self.negative_distance <= 0 or min(self.sgld_step_size, self.sgld_noise_std, self.starting_point_noise_std) < 0:
            raise ValueError(f"tabebm: distances, step sizes and noise must be non-negative, got {self}")


def surrogate_negatives(n_features: int, distance: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct corners of [-distance, distance]^n_features, drawn in antipodal pairs.

    As TabEBM's reference code: a random sign vector and its negation, until there are enough;
    fewer when the cube has fewer corners (2^n_features).
    """
    count = min(int(count), 2 ** min(n_features, 30))
    corners: list[tuple] = []
    while len(corners) < count:
        signs = tuple(rng.choice([-1.0, 1.0], size=n_features))
        for corner in (signs, tuple(-s for s in signs)):
            if corner not in corners and len(corners) < count:
                corners.append(corner)
    return np.asarray(corners, dtype=np.float32).reshape(len(corners), n_features) * float(distance)


class TabEBMGenerator:
    name = "tabebm"

    def __init__(self, dataset: str = "", weights: str | Path | None = None, **options):
        self.settings = settings(TabEBMSettings, options, self.name)
        self.dataset = dataset
        self.weights = weights
        self.schema: TableSchema | None = None
        self.backbone = None
        self.mean = self.std = None
        self.contexts: dict[str, np.ndarray] = {}  # class -> standardized real rows of the class
        self.negatives: dict[str, np.ndarray] = {}
        self.shares: dict[str, float] = {}
        self.codes: dict[int, np.ndarray] = {}  # categorical column index -> codes observed in train
        self.fills: dict = {}
        self.energy_trace: dict[str, list[float]] = {}

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "TabEBMGenerator":
        dataset = self.dataset or schema.dataset or "?"
        if not schema.features:
            raise StageError(STAGE, dataset, "tabebm needs at least one feature")
        rows, self.fills = fill_missing(train, schema)
        x = schema.encode_features(rows).astype(np.float64)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        z = ((x - self.mean) / self.std).astype(np.float32)
        labels = rows[schema.target].to_numpy()
        self.shares = class_shares(rows[schema.target])
        s = self.settings
        for label in self.shares:
            rng = np.random.default_rng(derive_seed(seed, "negatives", label))
            self.contexts[label] = z[labels == label]
            self.negatives[label] = surrogate_negatives(z.shape[1], s.negative_distance, s.n_negatives, rng)
        self.codes = {i: np.unique(x[:, i]) for i, f in enumerate(schema.features) if f.kind == "categorical"}
        self.schema = schema
        self._load_backbone()
        return self

    def _load_backbone(self) -> None:
        from causalmixft.model.backbone import DEFAULT_WEIGHTS
        from causalmixft.model.interface import load_backbone

        dataset = self.dataset or self.schema.dataset or "?"
        try:
            backbone = load_backbone(self.weights or DEFAULT_WEIGHTS, device="cpu")
        except (OSError, ValueError) as exc:
            raise StageError(STAGE, dataset, f"tabebm cannot load the backbone {self.weights}: {exc}") from exc
        if backbone.max_classes < 2:
            raise StageError(STAGE, dataset, "tabebm needs a backbone with at least two classes")
        backbone.module.eval()
        for parameter in backbone.module.parameters():
            parameter.requires_grad_(False)
        self.backbone = backbone

    def __getstate__(self) -> dict:
        # The pickled generator names its weights instead of holding them; sample() reloads them.
        return {**self.__dict__, "backbone": None}

    def energy(self, label: str, x: np.ndarray) -> np.ndarray:
        """E_c(x) of standardized rows ``x`` under the energy model of class ``label`` (no gradients)."""
        import torch

        with torch.no_grad():
            return self._energy(label, torch.as_tensor(np.asarray(x, np.float32))).numpy()

    def _energy(self, label: str, query):
        import torch

        context = np.concatenate([self.contexts[label], self.negatives[label]])
        y = np.r_[np.zeros(len(self.contexts[label])), np.ones(len(self.negatives[label]))]
        categorical = torch.as_tensor(self.schema.categorical_mask())
        logits = self.backbone.logits(
            torch.as_tensor(context), torch.as_tensor(y, dtype=torch.long), query, 2, categorical
        )
        return -torch.logsumexp(logits, dim=-1)

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        import torch

        if self.schema is None:
            raise RuntimeError("TabEBMGenerator.sample called before fit")
        if self.backbone is None:
            self._load_backbone()
        s = self.settings
        frames = []
        for label, count in allocate(int(n), self.shares).items():
            if count == 0:
                continue
            generator = torch.Generator().manual_seed(derive_seed(seed, "sgld", label))
            context = torch.as_tensor(self.contexts[label])
            start = torch.randint(len(context), (count,), generator=generator)
            x = context[start] + s.starting_point_noise_std * torch.randn(
                count, context.shape[1], generator=generator
            )
            scale = 1.0 if s.gradient == "chain" else 1.0 / count
            chunks = []
            for chunk in torch.split(x, s.chunk_rows):
                chunks.append(self._sgld(label, chunk, generator, scale))
            frames.append(self._decode(torch.cat(chunks).numpy(), label))
        if not frames:
            return pd.DataFrame(columns=[*self.schema.names, self.schema.target])
        rows = pd.concat(frames, ignore_index=True)
        return rows.iloc[np.random.default_rng(seed).permutation(len(rows))].reset_index(drop=True)

    def _sgld(self, label: str, x, generator, scale: float = 1.0):
        import torch

        s = self.settings
        energies = []
        for _ in range(s.sgld_steps):
            x = x.detach().requires_grad_(True)
            energy = self._energy(label, x)
            (gradient,) = torch.autograd.grad(energy.sum() * scale, x)
            noise = torch.randn(x.shape, generator=generator)
            x = x.detach() - s.sgld_step_size * gradient + s.sgld_noise_std * noise
            energies.append(float(energy.detach().mean()))
        if energies:
            trace = self.energy_trace.setdefault(label, [])
            if not trace:  # first chunk: the mean energy at the first and last step
                trace.extend([energies[0], energies[-1]])
        return x.detach()

    def _decode(self, z: np.ndarray, label: str) -> pd.DataFrame:
        x = z.astype(np.float64) * self.std + self.mean
        out = {}
        for i, feature in enumerate(self.schema.features):
            if feature.kind == "numeric":
                out[feature.name] = x[:, i]
            else:
                observed = self.codes[i]
                nearest = observed[np.abs(x[:, i, None] - observed[None, :]).argmin(axis=1)]
                out[feature.name] = np.asarray(feature.levels, dtype=object)[nearest.astype(int)]
        frame = pd.DataFrame(out, columns=self.schema.names)
        frame[self.schema.target] = label
        return frame

    def report(self) -> dict:
        return {
            "generator": self.name,
            "settings": vars(self.settings),
            "weights": None if self.weights is None else str(self.weights),
            "class_shares": self.shares,
            "negatives_per_class": {c: len(v) for c, v in self.negatives.items()},
            "mean_energy_first_last_step": self.energy_trace,
            "imputation": self.fills,
        }


GENERATOR = TabEBMGenerator
