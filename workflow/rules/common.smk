"""Shared by all rule files. Config validation, the dataset x fold grid, the package modules
each stage names as inputs, and the registry of stage targets that `rule all` collects.

A stage file (workflow/rules/<stage>.smk) registers what its last rule writes with
`stage_targets("<stage>", lambda: [...])`; `all_targets()` asks for every registered list.
"""

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

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

from causalmixft import baselines, failures
from causalmixft.data.tabmwp.tables import input_files as tabmwp_input_files
from causalmixft.data.sources import Source
from causalmixft.experiment.methods import method_sizes, resolve_method
from causalmixft.errors import StageError
from causalmixft.preflight import backbone_class_limit, missing_gpu
from causalmixft.workflow_code import script_modules

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


# The scripts of the rules sit in ../scripts from this file's folder (as their `script` paths say).
SCRIPTS = Path(str(workflow.current_basedir)).parent / "scripts"


def script_code(script, *modules):
    """The package modules that workflow/scripts/<script> runs, read from its imports and theirs
    (causalmixft.workflow_code). As a rule's code inputs they rerun its jobs (and what follows)
    when any module those jobs run is edited, and only then. Extra `modules` are dotted names
    the script reaches by a computed name (a generator's module, a pickle's classes).
    """
    return script_modules(SCRIPTS / script, SRC, modules)


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
        return [str(path) for path in tabmwp_input_files(argument)]
    return []


def protocol_params():
    """The protocol settings that shape every split (not `folds`, which only picks them, nor
    `seeds`, the fine-tuning replicates)."""
    return {
        key: value
        for key, value in sorted(config["protocol"].items())
        if key not in ("folds", "seeds")
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
        "modules": script_code("finetune.py"),
    }
    if method.size_dependent:
        synth = (
            f"results/synth/{method.generator}/{wildcards.dataset}/fold{wildcards.fold}"
        )
        inputs["synthetic"] = f"{synth}/n{wildcards.size}.parquet"
    return inputs


def finetune_params():
    return {key: value for key, value in sorted(FINETUNE.items()) if key != "methods"}


def replicate_params():
    """Fine-tuning replicates per run and the seed they derive from (protocol.seeds, .seed)."""
    return {
        "seeds": int(config["protocol"].get("seeds", 1)),
        "seed": int(config["protocol"].get("seed", 0)),
    }


# --- synthetic generators (causal.smk samples causalmixft, baselines.smk the others) -----

SYNTHETIC = config["synthetic"]
SYNTHETIC_GENERATORS = list(SYNTHETIC.get("generators", ["causalmixft"]))
BASELINE_GENERATORS = [g for g in SYNTHETIC_GENERATORS if g != "causalmixft"]
SYNTHETIC_SIZES = sorted({int(n) for n in SYNTHETIC["sizes"] if int(n) > 0})
SYNTHETIC_SAMPLING = {
    "clip_to_observed": bool(SYNTHETIC.get("clip_to_observed", True)),
    "fidelity_rows": int(SYNTHETIC.get("fidelity_rows", 1024)),
    "match_label_distribution": bool(SYNTHETIC.get("match_label_distribution", True)),
}


def check_generators():
    """Every sampled generator exists, and every method's generator is sampled."""
    known = ["causalmixft", *baselines.names()]
    unknown = [g for g in SYNTHETIC_GENERATORS if g not in known]
    if unknown:
        raise WorkflowError(
            f"config: synthetic.generators {unknown} are not generators; known: {known}"
        )
    try:
        methods = configured_methods()
    except ValueError as error:
        raise WorkflowError(f"config: finetune.methods: {error}") from None
    for method in methods:
        if method.generator and method.generator not in SYNTHETIC_GENERATORS:
            raise WorkflowError(
                f"config: finetune.methods: method {method.name!r} trains on samples of generator "
                f"{method.generator!r}, which synthetic.generators {SYNTHETIC_GENERATORS} does not "
                f"list; add it there (or drop the method)"
            )


check_generators()


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


# The most classes the backbone tells apart: the prepare stage fails a dataset with more.
BACKBONE_MAX_CLASSES = backbone_class_limit(config["backbone"])


# The generator wildcard of fit_generator and sample_generator: the baselines' module names
# (never causalmixft, whose samples rule sample_synthetic writes).
BASELINE_PATTERN = "|".join(re.escape(name) for name in baselines.names())


def generator_settings(generator):
    """What a generator's fitted model depends on besides its input files (fit_generator params)."""
    needs = baselines.needs(generator)
    settings = {
        "options": dict(sorted(SYNTHETIC.get(generator, {}).items())),
        "seed": int(config["protocol"].get("seed", 0)),
    }
    if "scm_quality" in needs:
        settings["quality"] = config["scm"].get("quality", "fast")
    if "backbone" in needs:
        settings["weights"] = BACKBONE_WEIGHTS
    return settings


def fit_generator_params(wildcards):
    return generator_settings(wildcards.generator)


def generator_sample_settings():
    """What a sample depends on besides its input files (sample_generator params)."""
    return {
        "sampling": SYNTHETIC_SAMPLING,
        "seed": int(config["protocol"].get("seed", 0)),
    }


def generator_fit_inputs(wildcards):
    """Train rows, meta, the generator's modules, and what its module's NEEDS names."""
    generator = wildcards.generator
    needs = baselines.needs(generator)
    split = f"results/splits/{wildcards.dataset}/fold{wildcards.fold}"
    inputs = {
        "train": f"{split}/train.parquet",
        "meta": f"results/data/{wildcards.dataset}.meta.json",
        "modules": script_code(
            "fit_generator.py", f"causalmixft.baselines.{generator}"
        ),
    }
    if "dag" in needs:
        causal = f"results/causal/{wildcards.dataset}/fold{wildcards.fold}"
        inputs["dag"] = f"{causal}/dag.pkl"
        inputs["dag_checksum"] = f"{causal}/dag.pkl.sha256"
    if "backbone" in needs:
        inputs["weights"] = [
            f"{BACKBONE_WEIGHTS}/model.safetensors",
            f"{BACKBONE_WEIGHTS}/config.json",
        ]
    return inputs


def generator_sample_inputs(wildcards):
    """The fitted generator and its report, train and validation rows, and the sampling modules."""
    fitted = f"results/generators/{wildcards.generator}/{wildcards.dataset}/fold{wildcards.fold}"
    split = f"results/splits/{wildcards.dataset}/fold{wildcards.fold}"
    inputs = generator_fit_inputs(wildcards)  # meta and what the generator NEEDS
    inputs.pop("train"), inputs.pop("dag", None), inputs.pop("dag_checksum", None)
    return {
        **inputs,
        "fitted": f"{fitted}/generator.pkl",
        "checksum": f"{fitted}/generator.pkl.sha256",
        "report": f"{fitted}/report.json",
        "train": f"{split}/train.parquet",
        "val": f"{split}/val.parquet",
        "modules": script_code(
            "sample_generator.py", f"causalmixft.baselines.{wildcards.generator}"
        ),
    }


def baseline_targets():
    """Samples and fidelity reports of every configured generator but causalmixft, every size > 0."""
    return expand(
        "results/synth/{generator}/{dataset}/fold{fold}/n{size}.{ext}",
        generator=BASELINE_GENERATORS,
        dataset=DATASETS,
        fold=FOLDS,
        size=SYNTHETIC_SIZES,
        ext=["parquet", "fidelity.json"],
    )


def _flat(inputs):
    files = []
    for value in inputs.values():
        files += [value] if isinstance(value, str) else list(value)
    return files


def generator_failures():
    """Current failure markers of this config's fit_generator and sample_generator jobs.

    A job that failed with a StageError (e.g. SMOTE on a class with one train row) left
    results/failed/{rule}/{generator}/{dataset}/fold{fold}[/n{size}].json; it counts while its
    inputs and settings are unchanged (causalmixft.failures). The aggregate stage reports the
    cells instead of waiting for them.
    """
    found = []
    for generator in BASELINE_GENERATORS:
        for dataset in DATASETS:
            for fold in FOLDS:
                keys = SimpleNamespace(generator=generator, dataset=dataset, fold=fold)
                path = failures.marker_path(
                    "fit_generator", generator, dataset, f"fold{fold}"
                )
                marker = os.path.exists(path) and failures.current_marker(
                    path,
                    _flat(generator_fit_inputs(keys)),
                    generator_settings(generator),
                )
                if marker:
                    found.append({**marker, "size": None})
                    continue
                for size in SYNTHETIC_SIZES:
                    path = failures.marker_path(
                        "sample_generator",
                        generator,
                        dataset,
                        f"fold{fold}",
                        f"n{size}",
                    )
                    marker = os.path.exists(path) and failures.current_marker(
                        path,
                        _flat(generator_sample_inputs(keys)),
                        generator_sample_settings(),
                    )
                    if marker:
                        found.append({**marker, "size": size})
    return found
