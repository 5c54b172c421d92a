"""The rule-facing helpers every rule file shares. Config validation, the settings and input
functions live in causalmixft.workflow_config (one WorkflowConfig, WF, built here); result paths
in causalmixft.layout; here are the package modules each rule names as code inputs, thin
wrappers from wildcards to WF, the machine check, and the registry of stage targets that
`rule all` collects.

A stage file (workflow/rules/<stage>.smk) registers what its last rule writes with
`stage_targets("<stage>", lambda: [...])`; `all_targets()` asks for every registered list.
"""

import os
import re
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

from causalmixft import layout
from causalmixft.generators import registry
from causalmixft.model.adapters import backbone_kind
from causalmixft.preflight import (
    backbone_class_limit,
    backbone_weights_problem,
    missing_gpu,
)
from causalmixft.workflow_code import script_modules
from causalmixft.workflow_config import ConfigError, WorkflowConfig
from causalmixft.config_checks import config_problems

# Keys given twice in a config file and NaN or infinite numbers pass the schema (config_checks).
CONFIG_PROBLEMS = config_problems(config, workflow.configfiles)
if CONFIG_PROBLEMS:
    raise WorkflowError("\n".join(CONFIG_PROBLEMS))
validate(config, "../schemas/config.schema.yaml")

# The scripts of the rules sit in ../scripts from this file's folder (as their `script` paths say).
SCRIPTS = Path(str(workflow.current_basedir)).parent / "scripts"


def script_code(script, *modules):
    """The package modules that workflow/scripts/<script> runs, read from its imports and theirs
    (causalmixft.workflow_code). As a rule's code inputs they rerun its jobs (and what follows)
    when any module those jobs run is edited, and only then. Extra `modules` are dotted names
    the script reaches by a computed name (a generator's module, a pickle's classes).
    """
    return script_modules(SCRIPTS / script, SRC, modules)


try:
    WF = WorkflowConfig.from_config(config, code=script_code)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

DATASETS = WF.datasets
FOLDS = WF.folds
BACKBONE = WF.backbone
BACKBONE_WEIGHTS = WF.backbone_weights
# Weights the workflow does not build are checked now: a finished run whose weights input is
# missing would look up to date to Snakemake. A changed path reruns fine-tuning (params), as do
# newer files at the same path (mtime: the weights are the finetune rule's inputs).
if WF.pretrain is None and backbone_weights_problem(BACKBONE_WEIGHTS):
    raise WorkflowError(
        f"config: backbone.weights: {backbone_weights_problem(BACKBONE_WEIGHTS)}"
    )
PRETRAIN = WF.pretrain
FINETUNE = WF.finetune
# Fine-tuning asks for a GPU unless the config pins it to the CPU; the profile caps how many
# run at once (one per GPU), and CPU-only runs keep every core busy instead.
FINETUNE_GPUS = 0 if FINETUNE["device"] == "cpu" else 1
# The most classes the backbone tells apart: the prepare stage fails a dataset with more.
BACKBONE_MAX_CLASSES = backbone_class_limit(config["backbone"])
# The generator wildcard of fit_generator and sample_generator: every generator's name.
GENERATOR_PATTERN = "|".join(re.escape(name) for name in registry.names())


# A name that becomes a folder: letters, digits, _ - and dots, never a leading dot (so never
# the current or parent folder, nor a hidden one); the schema's $defs.name is the same pattern.
NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"


wildcard_constraints:
    dataset=NAME,
    fold=r"\d+",
    budget=r"\d+",
    size=r"\d+",
    method=NAME,
    generator=NAME,
    backbone=NAME,


# --- targets ---------------------------------------------------------------------------

TARGET_FUNCTIONS = {}


def stage_targets(stage, function):
    """Register `function() -> list of files`, the final outputs of `stage`."""
    TARGET_FUNCTIONS[stage] = function


def all_targets():
    return [target for function in TARGET_FUNCTIONS.values() for target in function()]


# --- input functions and params: wildcards -> WF --------------------------------------


def dataset_spec(wildcards):
    return WF.dataset_spec(wildcards.dataset)


def source_files(wildcards):
    return WF.source_files(wildcards.dataset)


def finetune_env():
    """Fine-tuning's conda env (--sdm conda): the built-in backbone's, or that of the published
    model whose checkpoint `backbone.weights` holds (envs/backbones/<model>.yaml, docs/backbones.md).
    """
    if PRETRAIN is not None:
        return "../../envs/model.yaml"
    try:  # the files exist (backbone_weights_problem, above)
        kind = backbone_kind(BACKBONE_WEIGHTS)
    except ValueError as error:
        raise WorkflowError(f"config: backbone.weights: {error}") from None
    if kind == "builtin":
        return "../../envs/model.yaml"
    return f"../../envs/backbones/{kind}.yaml"


FINETUNE_ENV = finetune_env()


def configured_methods():
    return WF.methods


def cell(wildcards):
    """(dataset, fold, budget): the real data a job works on."""
    return wildcards.dataset, int(wildcards.fold), int(wildcards.budget)


def finetune_inputs(wildcards):
    return WF.finetune_inputs(wildcards.method, *cell(wildcards), int(wildcards.size))


def generator_fit_inputs(wildcards):
    return WF.generator_fit_inputs(wildcards.generator, *cell(wildcards))


def generator_sample_inputs(wildcards):
    return WF.generator_sample_inputs(wildcards.generator, *cell(wildcards))


def fit_generator_params(wildcards):
    return WF.generator_settings(wildcards.generator)


def fit_failure_marker(wildcards):
    """Where a fit_generator job that fails with a StageError leaves its marker."""
    return layout.failure_marker("fit_generator", wildcards.generator, *cell(wildcards))


def sample_failure_marker(wildcards):
    """Where a sample_generator job that fails with a StageError leaves its marker."""
    return layout.failure_marker(
        "sample_generator", wildcards.generator, *cell(wildcards), int(wildcards.size)
    )


# --- the machine ------------------------------------------------------------------------


def check_machine():
    """A GPU this machine cannot give fails before any job runs, not at the first fine-tuning
    job (causalmixft.preflight). Runs on start (after the DAG is built, never in a dry run), for
    the GPU rules about to run; jobs that a cluster executor runs elsewhere are not checked.
    """
    to_run = {job.rule.name for job in workflow.dag.needrun_jobs()}
    devices = {}
    if "finetune" in to_run:
        devices["finetune.device"] = FINETUNE["device"]
    if "pretrain_backbone" in to_run and "device" in PRETRAIN:
        devices["backbone.pretrain.device"] = PRETRAIN["device"]
    for key, device in devices.items():
        problem = missing_gpu(device, workflow.local_exec)
        if problem:
            raise WorkflowError(
                f"config: {key}: {problem}; set it to cpu (or auto, which uses a GPU only where "
                f"there is one), or run where a GPU is visible"
            )


onstart:
    check_machine()
