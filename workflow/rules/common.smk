"""Shared by all rule files. Config validation, the dataset x fold grid, the package modules
each stage names as inputs, and the registry of stage targets that `rule all` collects.

A stage file (workflow/rules/<stage>.smk) registers what its last rule writes with
`stage_targets("<stage>", lambda: [...])`; `all_targets()` asks for every registered list.
"""

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow runs the package that sits next to it: the package's modules are rule inputs,
# so the code that runs has to be the code whose edits trigger reruns, also when the workflow
# runs from a copy of the repository or in a conda env without the package installed.
SRC = Path(workflow.basedir) / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
if str(SRC) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ.update(
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(SRC), os.environ.get("PYTHONPATH")])
        )
    )

from causalmixft.data import tabmwp
from causalmixft.data.sources import Source
from causalmixft.experiment.methods import method_sizes, resolve_method
from causalmixft.errors import StageError

validate(config, "../schemas/config.schema.yaml")


def check_config():
    """What the schema cannot say; fails before any job with the offending key's name."""
    protocol = config["protocol"]
    beyond = sorted(f for f in protocol["folds"] if f >= protocol["n_folds"])
    if beyond:
        raise WorkflowError(
            f"config: protocol.folds {beyond} must be below protocol.n_folds ({protocol['n_folds']})"
        )
    for name, spec in config["datasets"].items():
        try:
            Source.from_spec(name, spec)
        except StageError as error:
            raise WorkflowError(f"config: datasets.{name}.source: {error}") from None


check_config()

DATASETS = sorted(config["datasets"])
FOLDS = sorted(config["protocol"]["folds"])


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.-]+",
    fold=r"\d+",
    size=r"\d+",
    method=r"[A-Za-z0-9_.-]+",
    generator=r"[A-Za-z0-9_.-]+",
    backbone=r"[A-Za-z0-9_.-]+",


def package_modules(*modules):
    """Paths of package modules (relative to src/causalmixft/) for a rule's input, resolved
    next to the workflow, so editing a stage's code reruns that stage and what follows.
    """
    return [str(SRC / "causalmixft" / module) for module in modules]


# --- targets ---------------------------------------------------------------------------

TARGET_FUNCTIONS = {}


def stage_targets(stage, function):
    """Register `function() -> list of files`, the final outputs of `stage`."""
    TARGET_FUNCTIONS[stage] = function


def all_targets():
    return [target for function in TARGET_FUNCTIONS.values() for target in function()]


# --- data stage ------------------------------------------------------------------------


def dataset_spec(wildcards):
    """The dataset's config entry as plain sorted data (the prepare rule's params)."""
    if wildcards.dataset not in config["datasets"]:
        raise WorkflowError(
            f"unknown dataset {wildcards.dataset!r}: not in the config's datasets ({', '.join(DATASETS)})"
        )
    return dict(sorted(config["datasets"][wildcards.dataset].items()))


def source_files(wildcards):
    """Local files a dataset is read from (a file: source and its manifest, a TabMWP table)."""
    spec = dataset_spec(wildcards)
    kind, argument = spec["source"].split(":", 1)
    if kind == "file":
        return [argument] + ([spec["manifest"]] if spec.get("manifest") else [])
    if kind == "tabmwp":
        return [str(path) for path in tabmwp.input_files(argument)]
    return []


def protocol_params():
    """The protocol settings that shape every split (not `folds`, which only picks them)."""
    return {
        key: value
        for key, value in sorted(config["protocol"].items())
        if key != "folds"
    }


# --- fine-tuning stage -------------------------------------------------------------------

FINETUNE = config["finetune"]
BACKBONE = config["backbone"]["name"]
# A backbone with a `pretrain:` block is trained by the workflow (rule pretrain_backbone);
# otherwise fine-tuning starts from the shipped (or user-supplied) weights directory.
PRETRAIN = config["backbone"].get("pretrain")
BACKBONE_WEIGHTS = (
    f"results/models/{BACKBONE}"
    if PRETRAIN is not None
    else config["backbone"]["weights"]
)
# Fine-tuning asks for a GPU unless the config pins it to the CPU; the profile caps how many
# run at once (one per GPU), and CPU-only runs keep every core busy instead.
FINETUNE_GPUS = 0 if FINETUNE["device"] == "cpu" else 1


def configured_methods():
    return [
        resolve_method(name, FINETUNE.get("custom_methods"))
        for name in FINETUNE["methods"]
    ]


def run_dirs():
    """Every (method, dataset, fold, size) run of the config, as its output folder."""
    return [
        f"results/runs/{BACKBONE}/{method.name}/{dataset}/fold{fold}/n{size}"
        for method in configured_methods()
        for dataset in DATASETS
        for fold in FOLDS
        for size in method_sizes(method, config["synthetic"]["sizes"])
    ]


def finetune_inputs(wildcards):
    method = resolve_method(wildcards.method, FINETUNE.get("custom_methods"))
    split = f"results/splits/{wildcards.dataset}/fold{wildcards.fold}"
    inputs = {
        "train": f"{split}/train.parquet",
        "val": f"{split}/val.parquet",
        "test": f"{split}/test.parquet",
        "meta": f"results/data/{wildcards.dataset}.meta.json",
        "weights": [
            f"{BACKBONE_WEIGHTS}/model.safetensors",
            f"{BACKBONE_WEIGHTS}/config.json",
        ],
        "modules": package_modules(
            "experiment/runs.py",
            "experiment/methods.py",
            "model/finetune.py",
            "model/backbone.py",
            "model/transformer.py",
            "metrics.py",
        ),
    }
    if method.size_dependent:
        synth = (
            f"results/synth/{method.generator}/{wildcards.dataset}/fold{wildcards.fold}"
        )
        inputs["synthetic"] = f"{synth}/n{wildcards.size}.parquet"
    return inputs


def finetune_params():
    return {key: value for key, value in sorted(FINETUNE.items()) if key != "methods"}
