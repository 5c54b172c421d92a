"""The workflow's configuration, normalised once, and what each rule reads from it.

Pure Python (no Snakemake), so it is unit-tested directly. ``workflow/rules/common.smk`` builds
one :class:`WorkflowConfig` from the validated config and keeps only thin rule-facing wrappers.
The schema (workflow/schemas/config.schema.yaml) fills its defaults before this module sees the
config; what the schema cannot say (folds below n_folds, known source kinds and generators,
every method's generator sampled) is checked here, with the offending key named.

File paths come from :mod:`causalmixft.layout`; a rule's code inputs from ``code(script,
*modules)`` (common.smk's ``script_code``), which is handed in so this module need not know
where the scripts are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from causalmixft import failures, layout
from causalmixft.data.sources import Source
from causalmixft.data.tabmwp.tables import input_files as tabmwp_input_files
from causalmixft.errors import StageError
from causalmixft.experiment import run_files
from causalmixft.generators import registry
from causalmixft.generators.draw import SamplingSettings
from causalmixft.grid import Grid, Run, SizeSpec, train_rows
from causalmixft.methods import Method, resolve_method

Code = Callable[..., list]  # code(script, *extra_modules) -> the files a rule's script runs


class ConfigError(ValueError):
    """A config the schema accepts but the workflow cannot run; the message names the key."""


def _no_code(script: str, *modules: str) -> list:
    return []


@dataclass(frozen=True)
class WorkflowConfig:
    config: Mapping  # the validated config, schema defaults filled in
    grid: Grid  # every run, sample and split of the config (causalmixft.grid)
    datasets: list[str]
    folds: list[int]
    seed: int  # protocol.seed: every stage seed derives from it
    replicates: int  # protocol.seeds: fine-tuning replicates per run
    methods: list[Method]
    generators: list[str]  # synthetic.generators
    sampling: dict  # the synthetic keys that shape a sample (sample_generator's params)
    backbone: str
    backbone_weights: str
    pretrain: dict | None
    finetune: dict
    code: Code = _no_code

    @classmethod
    def from_config(cls, config: Mapping, code: Code = _no_code) -> "WorkflowConfig":
        protocol, synthetic, finetune = config["protocol"], config["synthetic"], config["finetune"]
        beyond = sorted(f for f in protocol["folds"] if f >= protocol["n_folds"])
        if beyond:
            raise ConfigError(
                f"config: protocol.folds {beyond} must be below protocol.n_folds ({protocol['n_folds']})"
            )
        for name, spec in config["datasets"].items():
            try:
                Source.from_spec(name, spec)
            except StageError as error:
                raise ConfigError(f"config: datasets.{name}.source: {error}") from None
        generators = list(synthetic.get("generators", [registry.CAUSALMIXFT]))
        unknown = [g for g in generators if g not in registry.names()]
        if unknown:
            raise ConfigError(
                f"config: synthetic.generators {unknown} are not generators; known: {registry.names()}"
            )
        try:
            methods = [resolve_method(name, finetune.get("custom_methods")) for name in finetune["methods"]]
        except ValueError as error:
            raise ConfigError(f"config: finetune.methods: {error}") from None
        for method in methods:
            if method.generator and method.generator not in generators:
                raise ConfigError(
                    f"config: finetune.methods: method {method.name!r} trains on samples of generator "
                    f"{method.generator!r}, which synthetic.generators {generators} does not "
                    f"list; add it there (or drop the method)"
                )
        grid = _grid(config, methods, generators)
        backbone = config["backbone"]
        pretrain = backbone.get("pretrain")
        return cls(
            config=config,
            grid=grid,
            datasets=list(grid.datasets),
            folds=list(grid.folds),
            seed=int(protocol.get("seed", 0)),
            replicates=int(protocol.get("seeds", 1)),
            methods=methods,
            generators=generators,
            sampling=SamplingSettings.from_config(synthetic).to_params(),
            backbone=backbone["name"],
            # A backbone with a `pretrain:` block is trained by the workflow (rule pretrain_backbone);
            # otherwise fine-tuning starts from the shipped (or user-supplied) weights directory.
            backbone_weights=layout.fill(layout.MODEL, backbone=backbone["name"])
            if pretrain is not None
            else backbone["weights"],
            pretrain=pretrain,
            finetune=dict(finetune),
            code=code,
        )

    # --- data stage ---------------------------------------------------------------------

    def dataset_spec(self, dataset: str) -> dict:
        """The dataset's config entry as plain sorted data (the prepare rule's params)."""
        if dataset not in self.config["datasets"]:
            raise ConfigError(
                f"unknown dataset {dataset!r}: not in the config's datasets ({', '.join(self.datasets)})"
            )
        return dict(sorted(self.config["datasets"][dataset].items()))

    def source_files(self, dataset: str) -> list[str]:
        """Local files a dataset is read from (a file: source and its manifest, a TabMWP table)."""
        spec = self.dataset_spec(dataset)
        kind, argument = spec["source"].split(":", 1)
        if kind == "file":
            return [argument] + ([spec["manifest"]] if spec.get("manifest") else [])
        if kind == "tabmwp":
            return [str(path) for path in tabmwp_input_files(argument)]
        return []

    def protocol_params(self) -> dict:
        """The protocol settings that shape every split (not `folds`, which only picks them, nor
        `seeds`, the fine-tuning replicates, nor `real_budget`, which the split's wildcard names:
        a budget's rows do not depend on the other budgets, data/splits.py)."""
        skip = ("folds", "seeds", "real_budget")
        return {key: value for key, value in sorted(self.config["protocol"].items()) if key not in skip}

    def split_files(self, dataset: str, fold: int, budget: int, *names: str) -> dict[str, str]:
        """``{name: results/splits/{dataset}/fold{fold}/real{budget}/{name}.parquet}`` (train, val, test)."""
        split = layout.fill(layout.SPLIT, dataset=dataset, fold=fold, budget=budget)
        return {name: f"{split}/{name}.parquet" for name in names}

    def split_dirs(self) -> list[str]:
        """The folder of every split of the grid, one per (dataset, fold, budget)."""
        return [layout.fill(layout.SPLIT, dataset=d, fold=f, budget=b) for d, f, b in self.grid.cells()]

    def split_metas(self) -> list[str]:
        return [f"{split}/meta.json" for split in self.split_dirs()]

    def meta_file(self, dataset: str) -> str:
        return layout.fill(layout.PREPARED, dataset=dataset) + ".meta.json"

    # --- fine-tuning stage --------------------------------------------------------------

    def weights_files(self) -> list[str]:
        return [f"{self.backbone_weights}/model.safetensors", f"{self.backbone_weights}/config.json"]

    def runs(self) -> list[Run]:
        return self.grid.runs()

    def run_dirs(self) -> list[str]:
        """Every run of the config, as its output folder."""
        return [
            layout.fill(layout.RUN, backbone=self.backbone, **_values(run)) for run in self.grid.runs()
        ]

    def metrics_files(self) -> list[str]:
        return [f"{run}/metrics.json" for run in self.run_dirs()]

    def finetune_inputs(self, method: str, dataset: str, fold: int, budget: int, size: int) -> dict:
        inputs = {
            **self.split_files(dataset, fold, budget, "train", "val", "test"),
            "meta": self.meta_file(dataset),
            "weights": self.weights_files(),
            "modules": self.code("finetune.py"),
        }
        spec = self.grid.method(method)
        if spec.generator:
            inputs["synthetic"] = layout.sample_file(
                spec.generator, dataset, fold, budget, self.grid.input_size(spec, size), "parquet"
            )
        return inputs

    def finetune_params(self) -> dict:
        """The settings a fine-tuning job computes with: not the methods (its wildcard) nor
        keep_weights (which files it writes: :meth:`run_file_names`), so neither reruns a run."""
        return {key: value for key, value in sorted(self.finetune.items()) if key not in ("methods", "keep_weights")}

    @property
    def keep_weights(self) -> bool:
        """finetune.keep_weights: whether a run keeps its fine-tuned weights (default: yes)."""
        return bool(self.finetune.get("keep_weights", True))

    def run_file_names(self) -> tuple[str, ...]:
        """The files of every run (the finetune rule's outputs), ``metrics.json`` last."""
        return run_files.run_file_names(self.keep_weights)

    def replicate_params(self) -> dict:
        """Fine-tuning replicates per run and the seed they derive from (protocol.seeds, .seed), and
        the synthetic rows a method selecting on SCM rows adds to its selection set."""
        return {"seeds": self.replicates, "seed": self.seed, "selection_rows": self.grid.selection_rows}

    # --- synthetic generators -----------------------------------------------------------

    def sample_targets(self) -> list[str]:
        """Samples and fidelity reports of every configured generator."""
        return self._samples(self.generators)

    def fidelity_files(self) -> list[str]:
        return [path for path in self._samples(self.generators) if path.endswith(".fidelity.json")]

    def _samples(self, generators: list[str]) -> list[str]:
        return [
            layout.sample_file(s.generator, s.dataset, s.fold, s.budget, s.size, ext)
            for s in self.grid.samples(generators)
            for ext in ("parquet", "fidelity.json")
        ]

    def generator_settings(self, generator: str) -> dict:
        """What a generator's fitted model depends on besides its input files (fit_generator params)."""
        needs = registry.needs(generator)
        settings = {
            "options": dict(sorted(self.config["synthetic"].get(generator, {}).items())),
            "seed": self.seed,
        }
        if "scm_quality" in needs:
            settings["quality"] = self.config["scm"].get("quality", "fast")
        if "backbone" in needs:
            settings["weights"] = self.backbone_weights
        return settings

    def generator_sample_settings(self) -> dict:
        """What a sample depends on besides its input files (sample_generator params)."""
        return {"sampling": self.sampling, "seed": self.seed}

    def generator_fit_inputs(self, generator: str, dataset: str, fold: int, budget: int) -> dict:
        """Train rows, meta, the generator's modules, and what its module's NEEDS names."""
        needs = registry.needs(generator)
        inputs = {
            **self.split_files(dataset, fold, budget, "train"),
            "meta": self.meta_file(dataset),
            "modules": self.code("fit_generator.py", registry.module_name(generator)),
        }
        if "dag" in needs:
            causal = layout.fill(layout.CAUSAL, dataset=dataset, fold=fold, budget=budget)
            inputs["dag"] = f"{causal}/dag.pkl"
            inputs["dag_checksum"] = f"{causal}/dag.pkl.sha256"
        if "backbone" in needs:
            inputs["weights"] = self.weights_files()
        return inputs

    def generator_sample_inputs(self, generator: str, dataset: str, fold: int, budget: int) -> dict:
        """The fitted generator and its report, train and validation rows, and the sampling modules."""
        fitted = layout.fill(layout.GENERATOR_FIT, generator=generator, dataset=dataset, fold=fold, budget=budget)
        inputs = {"meta": self.meta_file(dataset)}
        if "backbone" in registry.needs(generator):
            inputs["weights"] = self.weights_files()
        return {
            **inputs,
            "modules": self.code("sample_generator.py", registry.module_name(generator)),
            "fitted": f"{fitted}/generator.pkl",
            "checksum": f"{fitted}/generator.pkl.sha256",
            "report": f"{fitted}/report.json",
            **self.split_files(dataset, fold, budget, "train", "val"),
        }

    def benchmark_files(self) -> list[str]:
        """The benchmark file of every job of this config (the cost tables count these only, not
        what earlier configs left under results/benchmarks)."""
        bench = layout.BENCHMARKS
        files = [layout.job_file(bench, "prepare_dataset", ".tsv", dataset=d) for d in self.datasets]
        cells = self.grid.cells()
        files += [layout.job_file(bench, "split", ".tsv", dataset=d, fold=f, budget=b) for d, f, b in cells]
        samples = self.grid.samples()
        dag_cells = sorted({(s.dataset, s.fold, s.budget) for s in samples if "dag" in registry.needs(s.generator)})
        files += [layout.job_file(bench, "discover_dag", ".tsv", dataset=d, fold=f, budget=b) for d, f, b in dag_cells]
        fitted = sorted({(s.generator, s.dataset, s.fold, s.budget) for s in samples})
        files += [
            layout.job_file(bench, "fit_generator", ".tsv", generator=g, dataset=d, fold=f, budget=b)
            for g, d, f, b in fitted
        ]
        for s in samples:
            values = dict(generator=s.generator, dataset=s.dataset, fold=s.fold, budget=s.budget, size=s.size)
            files.append(layout.job_file(bench, "sample_generator", ".tsv", **values))
        if self.pretrain is not None:
            files.append(layout.job_file(bench, "pretrain_backbone", ".tsv", backbone=self.backbone))
        files += [
            layout.job_file(bench, "finetune", ".tsv", backbone=self.backbone, **_values(run)) for run in self.grid.runs()
        ]
        return files

    def generator_failures(self) -> list[dict]:
        """Current failure markers of this config's fit_generator and sample_generator jobs.

        A job that failed with a StageError (e.g. SMOTE on a class with one train row) left
        ``layout.FAILED_FIT`` or ``layout.FAILED_SAMPLE``; it counts while its inputs and
        settings are unchanged (:mod:`causalmixft.failures`). The aggregate stage reports the
        cells instead of waiting for them (a marker of the fit stands for every size).
        """
        found = []
        samples = self.grid.samples(self.generators)
        for generator, dataset, fold, budget in sorted({(s.generator, s.dataset, s.fold, s.budget) for s in samples}):
            cell = (generator, dataset, fold, budget)
            path = layout.failure_marker("fit_generator", *cell)
            marker = os.path.exists(path) and failures.current_marker(
                path, flat(self.generator_fit_inputs(*cell)), self.generator_settings(generator)
            )
            if marker:
                found.append({**marker, "budget": budget, "size": None})
                continue
            for sample in samples:
                if (sample.generator, sample.dataset, sample.fold, sample.budget) != cell:
                    continue
                path = layout.failure_marker("sample_generator", *cell, sample.size)
                marker = os.path.exists(path) and failures.current_marker(
                    path, flat(self.generator_sample_inputs(*cell)), self.generator_sample_settings()
                )
                if marker:
                    found.append({**marker, "budget": budget, "size": sample.size})
        return found


def flat(inputs: Mapping[str, Any]) -> list[str]:
    """The files of a named input dict (a value is a file or a list of files)."""
    files = []
    for value in inputs.values():
        files += [value] if isinstance(value, str) else list(value)
    return files


def _values(run: Run) -> dict:
    return dict(method=run.method, dataset=run.dataset, fold=run.fold, budget=run.budget, size=run.size)


def _labels(specs: Iterable[SizeSpec]) -> str:
    """Sizes as the config spells them: ``[0, 64, 4x]``."""
    return "[" + ", ".join(spec.label for spec in specs) + "]"


def _grid(config: Mapping, methods: list[Method], generators: list[str]) -> Grid:
    """The run grid of a config; what the schema cannot check about sizes and budgets fails here."""
    protocol, synthetic = config["protocol"], config["synthetic"]
    try:
        sizes = tuple(SizeSpec.parse(n) for n in synthetic["sizes"])
    except ValueError as error:
        raise ConfigError(f"config: synthetic.sizes: {error}") from None
    budgets = protocol["real_budget"]
    budgets = tuple(sorted({int(b) for b in (budgets if isinstance(budgets, list) else [budgets])}))
    val_fraction = float(protocol["val_fraction"])
    for budget in budgets:
        if train_rows(budget, val_fraction) < 2 or budget - train_rows(budget, val_fraction) < 1:
            raise ConfigError(
                f"config: protocol.real_budget {budget} with val_fraction {val_fraction} leaves "
                f"{train_rows(budget, val_fraction)} train and {budget - train_rows(budget, val_fraction)} "
                "validation rows; need at least 2 and 1"
            )
    by_generator = {}
    for generator, own in synthetic.get("sizes_by_generator", {}).items():
        if generator not in generators:
            raise ConfigError(
                f"config: synthetic.sizes_by_generator.{generator}: not one of synthetic.generators {generators}"
            )
        try:
            specs = tuple(SizeSpec.parse(n) for n in own)
        except ValueError as error:
            raise ConfigError(f"config: synthetic.sizes_by_generator.{generator}: {error}") from None
        outside = [spec for spec in specs if spec not in sizes or spec.value == 0]
        if outside:
            # a subset keeps every comparison between generators at sizes both have
            raise ConfigError(
                f"config: synthetic.sizes_by_generator.{generator}: {_labels(outside)} are not sizes above 0 of "
                f"synthetic.sizes {_labels(sizes)}"
            )
        by_generator[generator] = specs
    by_dataset = {}
    for name, spec in config["datasets"].items():
        if "budgets" in spec:
            own = tuple(sorted({int(b) for b in spec["budgets"]}))
            outside = sorted(set(own) - set(budgets))
            if outside:
                # a subset keeps every budget's comparison on datasets that have it
                raise ConfigError(
                    f"config: datasets.{name}.budgets: {outside} are not in protocol.real_budget {list(budgets)}"
                )
            by_dataset[name] = own
    grid = Grid(
        datasets=tuple(sorted(config["datasets"])),
        folds=tuple(sorted(protocol["folds"])),
        budgets=budgets,
        methods=tuple(methods),
        sizes=sizes,
        val_fraction=val_fraction,
        replicates=int(protocol.get("seeds", 1)),
        sizes_by_generator=by_generator,
        budgets_by_dataset=by_dataset,
        selection_rows=int(synthetic.get("selection_rows", 0)),
    )
    dropped = grid.dropped_methods()
    if dropped:
        raise ConfigError(
            f"config: finetune.methods {dropped} train on synthetic rows, but synthetic.sizes "
            f"{_labels(sizes)} give no size above 0 at any budget; add a size or drop them"
        )
    if any(m.selects_on_synthetic for m in methods) and grid.selection_rows < 1:
        names = [m.name for m in methods if m.selects_on_synthetic]
        raise ConfigError(f"config: finetune.methods {names} select on synthetic rows; set synthetic.selection_rows >= 1")
    return grid
