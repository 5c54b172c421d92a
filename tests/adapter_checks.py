"""Checks every published-model adapter passes (tests/test_model_<adapter>.py), on randomly initialised
weights of the real architecture saved to a temporary checkpoint: nothing is downloaded.

In the default .venv the packages are absent and these tests skip. ``make test-<adapter>`` runs them in
the adapter's own venv with CAUSALMIXFT_ADAPTER=<adapter>, where a missing package fails instead.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os

import numpy as np
import pytest
import torch

from causalmixft.model.adapters import ADAPTERS, load_adapter
from causalmixft.model.finetune import FinetuneConfig, FinetuneData, finetune, finetune_step
from causalmixft.preflight import backbone_class_limit
from model_helpers import toy_table


def require(name: str, module: str):
    """The adapter's package module; skip when absent, unless this run is the adapter's own (then fail)."""
    if os.environ.get("CAUSALMIXFT_ADAPTER") == name:
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{ADAPTERS[name][2]} is not installed (make test-{name} runs it)")


def table():
    x, y = toy_table(70, n_features=4, n_classes=3, seed=2)
    return x[:50], y[:50], x[50:]


def check_round_trip(checkpoint, weights_file, other_seed):
    """Saved random weights reload bit-identically, report their provenance, and differ from another seed."""
    first, second = load_adapter(checkpoint, "cpu"), load_adapter(checkpoint, "cpu")
    proba = first.predict_proba(*table(), 3)
    assert proba.shape == (20, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(second.predict_proba(*table(), 3), proba)
    assert not np.allclose(other_seed.predict_proba(*table(), 3), proba)
    provenance = first.provenance()
    assert provenance["adapter"] == first.name
    assert provenance["package_version"] == importlib.metadata.version(ADAPTERS[first.name][2])
    assert provenance["checkpoint_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="exceed"):
        first.predict_proba(*table(), first.max_classes + 1)
    # The workflow's preflight reads the same class limit from the checkpoint's config.json.
    assert backbone_class_limit({"weights": str(checkpoint)}) == first.max_classes


def check_inference(backbone, atol=1e-5):
    """Context row order does not matter, query rows are independent, missing values are handled."""
    xc, yc, xq = table()
    base = backbone.predict_proba(xc, yc, xq, 3)
    perm = np.random.default_rng(0).permutation(len(xc))
    np.testing.assert_allclose(backbone.predict_proba(xc[perm], yc[perm], xq, 3), base, atol=atol)
    np.testing.assert_allclose(backbone.predict_proba(xc, yc, xq[:1], 3)[0], base[0], atol=atol)
    holes = xc.copy()
    holes[::3, 1] = np.nan
    holes[:, 2] = 1.0  # constant in the context
    holes[5, 3] = np.inf
    proba = backbone.predict_proba(holes, yc, np.where(xq > 1, np.nan, xq), 3, np.array([False, False, False, True]))
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1, atol=1e-5)


def check_finetuning(checkpoint, tmp_path, steps=15, lr=3e-3):
    """Steps on one episode fit it and change the weights; the tuned weights survive save/load; the loop
    of the workflow (same episodes, early stopping, evaluation as the built-in model) is repeatable."""
    x, y = toy_table(160, n_features=4, seed=3)
    backbone = load_adapter(checkpoint, "cpu")
    start = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    optimizer = torch.optim.AdamW(backbone.module.parameters(), lr=lr)
    episode = [torch.as_tensor(a) for a in (x[:60], y[:60], x[60:100], y[60:100])]
    backbone.module.train()
    losses = [finetune_step(backbone, optimizer, *episode, 2, torch.zeros(4, dtype=torch.bool), 1.0)
              for _ in range(steps)]
    assert losses[-1] < losses[0]
    assert any(not torch.equal(start[k], v) for k, v in backbone.module.state_dict().items())
    backbone.module.eval()
    backbone.save(tmp_path / "tuned", extra={"run": "test"})
    reloaded = load_adapter(tmp_path / "tuned", "cpu")
    assert type(reloaded) is type(backbone)
    np.testing.assert_array_equal(reloaded.predict_proba(x[:100], y[:100], x[130:], 2),
                                  backbone.predict_proba(x[:100], y[:100], x[130:], 2))

    cfg = FinetuneConfig(steps=3, eval_every=3, lr=1e-3, batch_rows=64, warmup_steps=1, device="cpu")

    def tune():
        data = FinetuneData((x[:100], y[:100]), (x[:100], y[:100]), (x[100:130], y[100:130]), 2,
                            test=(x[130:], y[130:]))
        return finetune(load_adapter(checkpoint, "cpu"), data, cfg, seed=0)

    first, second = tune(), tune()
    assert first.curve == second.curve and first.steps_run == 3 and len(first.curve) == 2
    assert type(first.model) is type(backbone)


TINY_RUNS = tuple(f"{m}/diabetes/fold0/real128/n{n}" for m, n in (("zeroshot", 0), ("finetune", 0), ("causalmixft", 64)))


def run_tiny_workflow(name, checkpoint, weights_file, workdir):
    """config/backbone-smoke.yaml with ``backbone.name: <name>`` on the random checkpoint: each method's
    run records the checkpoint's provenance and saves weights the adapter reads back."""
    from conftest import REPO, TABARENA, load_yaml, run_snakemake, write_config

    config = load_yaml(REPO / "config" / "backbone-smoke.yaml")
    config["datasets"]["diabetes"] = {"source": f"file:{TABARENA / 'diabetes.csv.gz'}",
                                      "manifest": str(TABARENA / "MANIFEST.json")}
    config["backbone"] = {"name": name, "weights": str(checkpoint)}
    # config.yaml sets this built-in-only option, and config/gpu.yaml runs merge over it: left unused.
    config["finetune"]["n_class_shifts"] = 10
    write_config(workdir, config)
    runs = [f"results/runs/{name}/{run}" for run in TINY_RUNS]
    run_snakemake(workdir, *(f"{run}/metrics.json" for run in runs))
    sha256 = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    adapter = type(load_adapter(checkpoint, "cpu"))
    for run in runs:
        metrics = json.loads((workdir / run / "metrics.json").read_text())
        assert metrics["backbone"] == name and metrics["finetune_config"]["n_class_shifts"] is None
        assert metrics["backbone_provenance"]["checkpoint_sha256"] == sha256
        assert metrics["backbone_provenance"]["package_version"] == importlib.metadata.version(ADAPTERS[name][2])
        assert (metrics["steps_run"] > 0) == ("/zeroshot/" not in run), (run, metrics["steps_run"])
        assert np.isfinite(metrics["selected"]["test"]["roc_auc"])
        assert type(load_adapter(workdir / run, "cpu")) is adapter


def check_conda_env(name):
    """envs/backbones/<name>.yaml pins what requirements-<name>.txt pins (with -r requirements.txt resolved)."""
    from conftest import REPO, load_yaml

    def pins(path):
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("-r "):
                found |= pins(path.parent / line[3:].strip())
            elif "==" in line:
                package, version = line.split("==", 1)
                found[package] = version
        return found

    required = pins(REPO / f"requirements-{name}.txt")
    spec = load_yaml(REPO / "envs" / "backbones" / f"{name}.yaml")
    listed = dict(pin.split("==", 1) for pin in next(d for d in spec["dependencies"] if isinstance(d, dict))["pip"])
    assert "python=3.11" in spec["dependencies"] and listed["torch"] == "2.13.0"
    assert {package: required.get(package) for package in listed} == listed
    assert ADAPTERS[name][2] in {package.split("[")[0] for package in listed}
