"""CTGAN (Xu et al. 2019) through the ``ctgan`` package, fitted on the real train rows.

The label is one more discrete column, as are the categorical features; missing values are
filled first (ctgan rejects NaN in continuous columns). Training runs on the CPU with ctgan's
own random state set from the fit seed (numpy and torch, restored afterwards), and every
``sample(n, seed)`` resets it from ``seed``, so a draw is a pure function of (fit seed, seed).
Rows come back with the table's columns; :func:`causalmixft.generators.draw.sample_synthetic`
casts them to the schema (integer columns rounded, values clipped to the observed range).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import pandas as pd

from causalmixft.baselines.common import settings
from causalmixft.data.impute import fill_missing
from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError

NEEDS: tuple[str, ...] = ()
STAGE = "fit"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CTGANSettings:
    # ctgan's defaults except epochs; with ~200 train rows and batch 500 an epoch is one step
    epochs: int = 300
    batch_size: int = 500
    pac: int = 10
    embedding_dim: int = 128
    generator_dim: tuple[int, ...] = (256, 256)
    discriminator_dim: tuple[int, ...] = (256, 256)
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    discriminator_steps: int = 1

    def __post_init__(self):
        object.__setattr__(self, "generator_dim", tuple(int(d) for d in self.generator_dim))
        object.__setattr__(self, "discriminator_dim", tuple(int(d) for d in self.discriminator_dim))
        if self.epochs < 1 or self.pac < 1 or self.batch_size < 2:
            raise ValueError(f"ctgan: epochs and pac must be >= 1 and batch_size >= 2, got {self}")
        if self.batch_size % 2 or self.batch_size % self.pac:
            raise ValueError(f"ctgan: batch_size ({self.batch_size}) must be even and a multiple of pac ({self.pac})")


class CTGANGenerator:
    name = "ctgan"

    def __init__(self, dataset: str = "", **options):
        self.settings = settings(CTGANSettings, options, self.name)
        self.dataset = dataset
        self.schema: TableSchema | None = None
        self.model = None
        self.fills: dict = {}

    def fit(self, train: pd.DataFrame, schema: TableSchema, seed: int) -> "CTGANGenerator":
        from ctgan import CTGAN

        dataset = self.dataset or schema.dataset or "?"
        rows, self.fills = fill_missing(train, schema)
        s = self.settings
        model = CTGAN(
            embedding_dim=s.embedding_dim,
            generator_dim=s.generator_dim,
            discriminator_dim=s.discriminator_dim,
            generator_lr=s.generator_lr,
            discriminator_lr=s.discriminator_lr,
            batch_size=s.batch_size,
            discriminator_steps=s.discriminator_steps,
            epochs=s.epochs,
            pac=s.pac,
            enable_gpu=False,
            verbose=False,
        )
        model.set_random_state(int(seed) % (2**31))
        try:
            with warnings.catch_warnings():
                # rdt's Gaussian mixtures warn about unused components on small columns
                warnings.simplefilter("ignore")
                model.fit(rows, discrete_columns=[*schema.categorical, schema.target])
        except (ValueError, TypeError) as exc:
            raise StageError(STAGE, dataset, f"ctgan failed to fit: {exc}") from exc
        self.schema, self.model = schema, model
        return self

    def __setstate__(self, state: dict) -> None:
        # ctgan moves an unpickled model to a GPU when it sees one; sampling stays on the CPU
        # (as fitting did), so a draw does not depend on the machine.
        self.__dict__.update(state)
        if self.model is not None:
            import torch

            self.model.set_device(torch.device("cpu"))

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        if self.model is None:
            raise RuntimeError("CTGANGenerator.sample called before fit")
        self.model.set_random_state(int(seed) % (2**31))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = self.model.sample(int(n))
        return rows[[*self.schema.names, self.schema.target]].reset_index(drop=True)

    def report(self) -> dict:
        losses = None if self.model is None else self.model.loss_values
        last = {}
        if losses is not None and len(losses):
            tail = losses.tail(10)
            last = {
                "generator_loss_last10": float(tail["Generator Loss"].mean()),
                "discriminator_loss_last10": float(tail["Discriminator Loss"].mean()),
            }
        return {
            "generator": self.name,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.settings).items()},
            "imputation": self.fills,
            **last,
        }


GENERATOR = CTGANGenerator
