"""The backbone interface the workflow uses: load, save, predict probabilities, device choice.

Weights live in a directory holding ``model.safetensors`` and ``config.json``; nothing is
unpickled. Inputs are float arrays with NaN for missing values and categorical features as
integer codes (see :meth:`causalmixft.data.schema.TableSchema.encode_features`).
"""

from __future__ import annotations

import contextlib
import json
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from causalmixft.io import atomic_path, write_json

from causalmixft.model.ensemble import (Ensemble, Member, applicable_preprocessings, ensemble_members,
                                       permute_categories, preprocess)
from causalmixft.model.transformer import ModelConfig, TabularTransformer

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "tfm-small-v2"  # model card: weights/tfm-small-v2/MODEL_CARD.md


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def save_model(model: TabularTransformer, directory: str | Path, extra: dict | None = None) -> None:
    """Write ``model.safetensors`` + ``config.json`` (model config plus optional metadata)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / "model.safetensors") as tmp:  # the usual mode, not safetensors' 0600
        save_file(state, str(tmp))
    config = json.loads(model.cfg.to_json())
    if extra:
        config["metadata"] = extra
    write_json(directory / "config.json", config)


def load_model(directory: str | Path = DEFAULT_WEIGHTS, device: str | torch.device = "cpu") -> TabularTransformer:
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not (config_path.exists() and weights_path.exists()):
        raise FileNotFoundError(f"no backbone at {directory}: expected config.json and model.safetensors")
    cfg = ModelConfig.from_dict(json.loads(config_path.read_text()))
    model = TabularTransformer(cfg)
    model.load_state_dict(load_file(str(weights_path)))
    return model.to(device).eval()


# The autocast dtype of CUDA forward passes: bf16 unless a block asks for another with
# cuda_precision (bench/bench_speed.py --precision fp32 measures what bf16 gains).
_CUDA_DTYPE: ContextVar[torch.dtype] = ContextVar("cuda_autocast_dtype", default=torch.bfloat16)


@contextlib.contextmanager
def cuda_precision(dtype: torch.dtype):
    """Within the block, CUDA forward passes autocast to ``dtype``; ``torch.float32``: no autocast."""
    token = _CUDA_DTYPE.set(dtype)
    try:
        yield
    finally:
        _CUDA_DTYPE.reset(token)


def autocast(device: torch.device):
    """bf16 autocast on GPU (see cuda_precision); float32 on CPU (bf16 matmuls on CPU are slower and less exact)."""
    if device.type == "cuda":
        dtype = _CUDA_DTYPE.get()
        return torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32)
    return torch.autocast("cpu", enabled=False)


def plan_members(cfg: ModelConfig, x_context: np.ndarray, n_classes: int, categorical: np.ndarray,
                 ensemble: Ensemble = Ensemble(), random_state: int = 0) -> list[Member]:
    """The forward passes of one prediction with the settings ``ensemble`` (see :mod:`causalmixft.model.ensemble`).

    ``n_estimators=None``: every class shift (``< min(n_class_shifts, n_classes)``) on every
    feature subset (``n_feature_subsets`` for tables wider than ``max_features``), raw features.
    ``n_estimators=k``: k members that differ by class shift, preprocessing, category order and,
    for wide tables, feature subset; the number of passes is k whatever the table.
    """
    n_features = x_context.shape[1]
    if ensemble.n_estimators is not None:
        kinds = applicable_preprocessings(x_context, categorical, ensemble.preprocessing)
        return ensemble_members(replace(ensemble, preprocessing=kinds), n_classes, n_features, cfg.max_features,
                                bool(categorical.any()), random_state)
    if n_features <= cfg.max_features:
        subsets = [None]
    else:
        rng = np.random.default_rng(random_state)
        subsets = [tuple(np.sort(rng.choice(n_features, cfg.max_features, replace=False)).tolist())
                   for _ in range(ensemble.n_feature_subsets)]
    shifts = range(max(1, min(ensemble.n_class_shifts or n_classes, n_classes)))
    return [Member(shift, "none", columns) for columns in subsets for shift in shifts]


@torch.no_grad()
def member_probabilities(model: TabularTransformer, x_context: np.ndarray, y_context: np.ndarray,
                         x_query: np.ndarray, n_classes: int, categorical: np.ndarray, members: list[Member],
                         query_chunk: int = 2048):
    """Yield (member, class probabilities of ``x_query``) for each member, one forward pass each."""
    device = next(model.parameters()).device
    y_context = np.asarray(y_context, np.int64)
    prepared = {}  # preprocessing kind -> (context, query): fitted once per prediction
    n_codes = int(np.nanmax(np.concatenate([x_context[:, categorical], x_query[:, categorical]]), initial=0)) + 1
    for member in members:
        if member.preprocessing not in prepared:
            prepared[member.preprocessing] = preprocess(member.preprocessing, x_context, x_query, categorical)
        context, query = prepared[member.preprocessing]
        if member.category_seed is not None:
            context = permute_categories(context, categorical, member.category_seed, n_codes)
            query = permute_categories(query, categorical, member.category_seed, n_codes)
        columns = slice(None) if member.columns is None else list(member.columns)
        shown = (np.arange(n_classes) + member.class_shift) % n_classes  # class c is shown as shown[c]
        proba = _predict_subset(model, context[:, columns], shown[y_context], query[:, columns], n_classes,
                                categorical[columns], query_chunk, device)
        yield member, proba[:, shown]


def predict_proba(
    model: TabularTransformer,
    x_context: np.ndarray,
    y_context: np.ndarray,
    x_query: np.ndarray,
    n_classes: int,
    categorical: np.ndarray | None = None,
    *,
    ensemble: Ensemble = Ensemble(),
    random_state: int = 0,
    query_chunk: int = 2048,
) -> np.ndarray:
    """Class probabilities (n_query, n_classes) of ``x_query`` given labelled context rows.

    The mean over the forward passes of :func:`plan_members` for the settings ``ensemble`` (the
    default: one plain pass). Without ``ensemble.n_estimators``, tables wider than the model's
    ``max_features`` are predicted on ``n_feature_subsets`` random feature subsets of that size,
    and ``n_class_shifts > 1`` averages over cyclic relabelings of the classes (class c shown to
    the network as (c + s) mod n_classes): a network that prefers some label indices then no
    longer biases the argmax. With ``n_estimators=k`` the k passes are the inference ensemble of
    :mod:`causalmixft.model.ensemble` (shifts, ``preprocessing`` kinds, category orders when
    ``category_orders``, feature subsets of wide tables).
    """
    if n_classes > model.cfg.max_classes:
        raise ValueError(f"{n_classes} classes exceed the backbone's maximum of {model.cfg.max_classes}")
    x_context, x_query = np.asarray(x_context, np.float32), np.asarray(x_query, np.float32)
    categorical = np.zeros(x_context.shape[1], bool) if categorical is None else np.asarray(categorical, bool)
    members = plan_members(model.cfg, x_context, n_classes, categorical, ensemble, random_state)
    probabilities = np.zeros((len(x_query), n_classes))
    for _, proba in member_probabilities(model, x_context, y_context, x_query, n_classes, categorical, members,
                                         query_chunk):
        probabilities += proba
    return probabilities / len(members)


def _predict_subset(model, x_context, y_context, x_query, n_classes, categorical, query_chunk, device):
    ctx = torch.as_tensor(np.asarray(x_context, np.float32), device=device)
    y = torch.as_tensor(np.asarray(y_context, np.int64), device=device)[None]
    cat = torch.as_tensor(categorical, device=device)[None]
    out = []
    for start in range(0, len(x_query), query_chunk):
        query = torch.as_tensor(np.asarray(x_query[start : start + query_chunk], np.float32), device=device)
        x = torch.cat([ctx, query])[None]
        with autocast(device):
            logits = model(x, y, cat, n_classes)[0, :, :n_classes]
        out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, n_classes))
