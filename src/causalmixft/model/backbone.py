"""The backbone interface the workflow uses: load, save, predict probabilities, device choice.

Weights live in a directory holding ``model.safetensors`` and ``config.json``; nothing is
unpickled. Inputs are float arrays with NaN for missing values and categorical features as
integer codes (see :meth:`causalmixft.data.schema.TableSchema.encode_features`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from causalmixft.model.transformer import ModelConfig, TabularTransformer

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "tfm-small"


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def save_model(model: TabularTransformer, directory: str | Path, extra: dict | None = None) -> None:
    """Write ``model.safetensors`` + ``config.json`` (model config plus optional metadata)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    tmp = directory / ".model.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(directory / "model.safetensors")
    config = json.loads(model.cfg.to_json())
    if extra:
        config["metadata"] = extra
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_model(directory: str | Path = DEFAULT_WEIGHTS, device: str | torch.device = "cpu") -> TabularTransformer:
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not (config_path.exists() and weights_path.exists()):
        raise FileNotFoundError(f"no backbone at {directory}: expected config.json and model.safetensors")
    cfg = ModelConfig.from_dict(json.loads(config_path.read_text()))
    model = TabularTransformer(cfg)
    model.load_state_dict(load_file(str(weights_path)))
    return model.to(device).eval()


def autocast(device: torch.device):
    """bf16 autocast on GPU; float32 on CPU (bf16 matmuls on CPU are slower and less exact)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def predict_proba(
    model: TabularTransformer,
    x_context: np.ndarray,
    y_context: np.ndarray,
    x_query: np.ndarray,
    n_classes: int,
    categorical: np.ndarray | None = None,
    query_chunk: int = 2048,
    n_feature_subsets: int = 4,
    random_state: int = 0,
    n_class_shifts: int = 1,
) -> np.ndarray:
    """Class probabilities (n_query, n_classes) of ``x_query`` given labelled context rows.

    Tables wider than the model's ``max_features`` are predicted on ``n_feature_subsets``
    random feature subsets of that size and the probabilities averaged, which keeps the cost
    of attention across features bounded.

    ``n_class_shifts > 1`` also averages over cyclic relabelings of the classes (class c shown
    to the network as (c + s) mod n_classes, s < min(n_class_shifts, n_classes)): a network
    that prefers some label indices then no longer biases the argmax. Costs one pass per shift.
    """
    if n_classes > model.cfg.max_classes:
        raise ValueError(f"{n_classes} classes exceed the backbone's maximum of {model.cfg.max_classes}")
    device = next(model.parameters()).device
    n_features = x_context.shape[1]
    categorical = np.zeros(n_features, bool) if categorical is None else np.asarray(categorical, bool)
    if n_features <= model.cfg.max_features:
        subsets = [np.arange(n_features)]
    else:
        rng = np.random.default_rng(random_state)
        subsets = [np.sort(rng.choice(n_features, model.cfg.max_features, replace=False)) for _ in range(n_feature_subsets)]
    shifts = range(max(1, min(n_class_shifts, n_classes)))
    y_context = np.asarray(y_context, np.int64)
    probabilities = np.zeros((len(x_query), n_classes))
    for columns in subsets:
        for shift in shifts:
            shown = (np.arange(n_classes) + shift) % n_classes  # class c is shown as shown[c]
            probabilities += _predict_subset(model, x_context[:, columns], shown[y_context], x_query[:, columns],
                                             n_classes, categorical[columns], query_chunk, device)[:, shown]
    return probabilities / (len(subsets) * len(shifts))


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
