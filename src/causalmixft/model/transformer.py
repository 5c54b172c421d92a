"""A compact TabPFN-v2 / Mitra-style in-context transformer for tabular classification.

Every cell of the table is a token. Each block attends across the features of a row, then
across the rows of a feature column, then applies an MLP; blocks are pre-norm with RMSNorm.
Context rows carry a label embedding in an extra "target" column, query rows a learned
"unknown" embedding; in row attention every row attends to the context rows (and a few
learnable "thinking" rows) only, so a query never sees another query. No positional
information is used anywhere, which makes predictions invariant to the order of rows and of
features.

Inputs are raw feature values; :func:`standardize` normalises them with statistics of the
context rows only (NaN-aware), so the model never sees query statistics.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 128
    max_classes: int = 10
    # Attention across features is quadratic in their number; wider tables are handled by
    # averaging predictions over random feature subsets of this size (see backbone.py).
    max_features: int = 100
    n_thinking_rows: int = 4

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def standardize(x: torch.Tensor, n_context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each feature by the mean and std of the context rows; squash heavy tails.

    ``x`` is (batch, rows, features) with NaN for missing values. Returns the scaled values
    with NaN replaced by 0, and the NaN indicator. ``asinh`` keeps the order of values but
    tames outliers, which real tables have far more of than any prior.
    """
    missing = torch.isnan(x)
    context = x[:, :n_context]
    observed = (~missing[:, :n_context]).to(x.dtype)
    count = observed.sum(1, keepdim=True).clamp_min(1.0)
    filled = torch.nan_to_num(context, nan=0.0)
    mean = filled.sum(1, keepdim=True) / count
    var = ((filled - mean) ** 2 * observed).sum(1, keepdim=True) / count
    scaled = (x - mean) / (var.sqrt() + 1e-6)
    scaled = torch.asinh(torch.nan_to_num(scaled, nan=0.0))
    return scaled, missing


class RowFeatureBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.norm_feat = nn.RMSNorm(d)
        self.qkv_feat = nn.Linear(d, 3 * d, bias=False)
        self.out_feat = nn.Linear(d, d, bias=False)
        self.norm_row = nn.RMSNorm(d)
        self.qkv_row = nn.Linear(d, 3 * d, bias=False)
        self.out_row = nn.Linear(d, d, bias=False)
        self.norm_mlp = nn.RMSNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, d))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Multi-head attention over the second-to-last axis of (..., seq, d) tensors.

        The leading axes are folded into one batch axis: on the CPU, scaled_dot_product_attention
        on 5-D inputs is 3-10x slower than on (batch, heads, seq, d/heads) (measured, torch 2.13).
        """
        *lead, seq, d = q.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, t.shape[-2], self.n_heads, d // self.n_heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return out.transpose(1, 2).reshape(*lead, seq, d)

    def forward(self, h: torch.Tensor, n_visible: int) -> torch.Tensor:
        """``h`` is (batch, rows, columns, d); the first ``n_visible`` rows are attendable."""
        q, k, v = self.qkv_feat(self.norm_feat(h)).chunk(3, dim=-1)
        h = h + self.out_feat(self._attend(q, k, v))

        # Across rows: one sequence per (dataset, column); keys are the visible rows only.
        ht = h.transpose(1, 2)  # (batch, columns, rows, d)
        q, k, v = self.qkv_row(self.norm_row(ht)).chunk(3, dim=-1)
        h = h + self.out_row(self._attend(q, k[:, :, :n_visible], v[:, :, :n_visible])).transpose(1, 2)

        return h + self.mlp(self.norm_mlp(h))


class TabularTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.value_embed = nn.Linear(1, d)
        self.missing_embed = nn.Parameter(torch.zeros(d))
        self.categorical_embed = nn.Parameter(torch.zeros(d))
        self.label_embed = nn.Embedding(cfg.max_classes, d)
        self.unknown_label = nn.Parameter(torch.zeros(d))
        self.thinking_rows = nn.Parameter(torch.zeros(cfg.n_thinking_rows, d))
        self.blocks = nn.ModuleList(RowFeatureBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.RMSNorm(d)
        self.head = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.max_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=1.0 / math.sqrt(module.in_features))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            # Residual branches start near zero so a deep stack starts close to identity.
            for out in (block.out_feat, block.out_row, block.mlp[-1]):
                nn.init.normal_(out.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layers))
        for p in (self.missing_embed, self.categorical_embed, self.unknown_label, self.thinking_rows):
            nn.init.normal_(p, std=0.02)
        nn.init.normal_(self.label_embed.weight, std=1.0)

    def forward(
        self,
        x: torch.Tensor,
        y_context: torch.Tensor,
        categorical: torch.Tensor | None = None,
        n_classes: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Class logits of the query rows.

        x: (batch, rows, features) raw values, NaN = missing; the first ``y_context.shape[1]``
        rows are the context. y_context: (batch, n_context) class indices.
        categorical: (batch, features) bool, or None. n_classes: int or (batch,) tensor;
        logits of absent classes are set to -inf. Returns (batch, n_query, max_classes).
        """
        batch, rows, _ = x.shape
        n_context = y_context.shape[1]
        scaled, missing = standardize(x, n_context)
        cells = self.value_embed(scaled.unsqueeze(-1)) + missing.unsqueeze(-1) * self.missing_embed
        if categorical is not None:
            cells = cells + categorical[:, None, :, None].to(cells.dtype) * self.categorical_embed

        label_column = torch.cat(
            [self.label_embed(y_context), self.unknown_label.expand(batch, rows - n_context, -1)], dim=1
        )
        h = torch.cat([cells, label_column.unsqueeze(2)], dim=2)  # (batch, rows, features+1, d)

        n_think = self.cfg.n_thinking_rows
        if n_think:
            think = self.thinking_rows[None, :, None, :].expand(batch, n_think, h.shape[2], -1)
            h = torch.cat([think, h], dim=1)
        n_visible = n_think + n_context

        for block in self.blocks:
            h = block(h, n_visible)

        logits = self.head(self.norm_out(h[:, n_visible:, -1]))
        if n_classes is not None:
            n_classes = torch.as_tensor(n_classes, device=x.device).reshape(-1, 1, 1)
            absent = torch.arange(self.cfg.max_classes, device=x.device) >= n_classes
            logits = logits.masked_fill(absent, float("-inf"))
        return logits
