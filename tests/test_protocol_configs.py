"""Every shipped config runs the protocol v2 experiment: curves worth reading, replicates, no confounding."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import REPO, load_yaml

DEFAULT = load_yaml(REPO / "config.yaml")
SHIPPED = [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]


def merged(path: Path) -> dict:
    """A --configfile is merged over config.yaml key by key (Snakemake's update), one level deep here."""
    config = {key: dict(value) if isinstance(value, dict) else value for key, value in DEFAULT.items()}
    for key, value in load_yaml(path).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def guaranteed_evaluations(finetune: dict) -> int:
    """Evaluation points every fine-tuning curve has at least: step 0, then every eval_every steps
    until early stopping may first act (the first evaluation at or after min_steps) or the cap."""
    steps, every = finetune["steps"], finetune["eval_every"]
    first_stop = min(steps, math.ceil(finetune.get("min_steps", 0) / every) * every)
    if finetune.get("patience", 0) > 0:
        first_stop = max(first_stop, every * finetune["patience"])
    return 1 + math.ceil(min(first_stop, steps) / every)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_gives_curves_of_at_least_ten_points(path):
    finetune = merged(path)["finetune"]
    assert guaranteed_evaluations(finetune) >= 10, finetune
    assert finetune["patience"] > 0  # early stopping with a step cap, stop reason recorded per run
    assert finetune.get("mixing", "fixed_share") == "fixed_share" and finetune.get("permute_classes", True)


def test_the_default_runs_paired_replicates():
    assert DEFAULT["protocol"]["seeds"] >= 2
    assert guaranteed_evaluations(DEFAULT["finetune"]) == 10


def test_guaranteed_evaluations_by_hand():
    # cap 30, every 10, no min_steps, patience 2: a stop can come at step 20 -> points 0, 10, 20.
    assert guaranteed_evaluations({"steps": 30, "eval_every": 10, "patience": 2}) == 3
    assert guaranteed_evaluations({"steps": 60, "eval_every": 6, "patience": 3, "min_steps": 54}) == 10
    assert guaranteed_evaluations({"steps": 20, "eval_every": 6, "patience": 3, "min_steps": 54}) == 5
