"""Resumable training state as safetensors + JSON: model, optimizers, RNG, step. No pickles."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from causalmixft.io import atomic_path


def _split_optimizer(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, entries in state["state"].items():
        plain["state"][str(index)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{key}"] = value.detach().cpu().contiguous()
                plain["state"][str(index)][key] = {"tensor": f"{prefix}.{index}.{key}"}
            else:
                plain["state"][str(index)][key] = {"value": value}
    return tensors, plain


def _join_optimizer(plain: dict, tensors: dict) -> dict:
    state = {}
    for index, entries in plain["state"].items():
        state[int(index)] = {
            key: tensors[spec["tensor"]] if "tensor" in spec else spec["value"] for key, spec in entries.items()
        }
    return {"state": state, "param_groups": plain["param_groups"]}


def save_training_state(directory: str | Path, model: torch.nn.Module, optimizers: dict, generator: torch.Generator,
                        extra: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["rng.generator"] = generator.get_state()
    plain = {"extra": extra, "optimizers": {}}
    for name, optimizer in optimizers.items():
        opt_tensors, opt_plain = _split_optimizer(optimizer, f"opt.{name}")
        tensors.update(opt_tensors)
        plain["optimizers"][name] = opt_plain
    # Write both files under temporary names, then swap (tensors first, as the inner block ends first):
    # a kill mid-save keeps the old state.
    with atomic_path(directory / "state.json") as json_tmp, atomic_path(directory / "state.safetensors") as tensors_tmp:
        save_file(tensors, str(tensors_tmp))
        json_tmp.write_text(json.dumps(plain, indent=1))


def load_training_state(directory: str | Path, model: torch.nn.Module, optimizers: dict,
                        generator: torch.Generator) -> dict | None:
    """Restore in place and return the saved ``extra`` dict, or None when there is no state."""
    directory = Path(directory)
    if not (directory / "state.safetensors").exists():
        return None
    tensors = load_file(str(directory / "state.safetensors"))
    plain = json.loads((directory / "state.json").read_text())
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    generator.set_state(tensors["rng.generator"])
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(_join_optimizer(plain["optimizers"][name], tensors))
    return plain["extra"]
