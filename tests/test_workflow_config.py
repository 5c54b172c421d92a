"""The workflow's settings, input functions and result paths as plain Python (causalmixft.workflow_config,
causalmixft.layout): what the rules, the aggregate stage and the failure scan read."""

from __future__ import annotations

import os
import time

import pytest
from conftest import REPO, load_yaml, tiny_config
from snakemake.utils import update_config, validate

from causalmixft import failures, layout
from causalmixft.errors import StageError
from causalmixft.experiment import collect
from causalmixft.workflow_config import ConfigError, WorkflowConfig, flat

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def code(script: str, *modules: str) -> list[str]:
    return [f"code/{script}", *modules]


def settings(**synthetic) -> WorkflowConfig:
    config = tiny_config()
    config["synthetic"].update(generators=["causalmixft", "smote", "tabebm", "scm_randomdag"], **synthetic)
    config["finetune"]["methods"] = ["zeroshot", "finetune", "causalmixft", "smote", "tabebm", "scm_randomdag"]
    validate(config, str(SCHEMA))
    return WorkflowConfig.from_config(config, code=code)


def test_the_config_is_normalised_once():
    wf = settings(sizes=[256, 0, 64])
    assert (wf.datasets, wf.folds) == (["diabetes", "iris"], [0, 1])
    assert (wf.sizes, wf.sample_sizes) == ([256, 0, 64], [64, 256])
    assert (wf.seed, wf.replicates, wf.backbone) == (0, 1, "tfm-small")
    assert [m.name for m in wf.methods][:3] == ["zeroshot", "finetune", "causalmixft"]
    assert wf.baseline_generators == ["smote", "tabebm", "scm_randomdag"]
    assert wf.sampling == {"clip_to_observed": True, "fidelity_rows": 1024, "match_label_distribution": True}
    assert wf.replicate_params() == {"seeds": 1, "seed": 0}
    assert "methods" not in wf.finetune_params() and wf.finetune_params()["steps"] == 60
    protocol = {"n_folds": 2, "real_budget": 48, "seed": 0, "test_max_rows": 40, "val_fraction": 0.25}
    assert wf.protocol_params() == protocol


def test_a_pretrained_backbone_is_read_from_the_workflows_own_model_folder():
    config = tiny_config()
    config["backbone"]["pretrain"] = {"steps": 1}
    wf = WorkflowConfig.from_config(config)
    assert wf.backbone_weights == "results/models/tfm-small"
    assert wf.weights_files() == ["results/models/tfm-small/model.safetensors", "results/models/tfm-small/config.json"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["protocol"].update(folds=[0, 2]), "config: protocol.folds [2] must be below protocol.n_folds (2)"),
        (lambda c: c["datasets"].update(iris={"source": "kaggle:iris"}), "config: datasets.iris.source: [prepare] iris:"),
        (lambda c: c["synthetic"].update(generators=["nope"]), "synthetic.generators ['nope'] are not generators"),
        (lambda c: c["finetune"].update(methods=["no_such"]), "config: finetune.methods: unknown method 'no_such'"),
        (lambda c: c["finetune"].update(methods=["smote"]), "method 'smote' trains on samples of generator 'smote'"),
        (
            lambda c: c["synthetic"].update(sizes_by_generator={"smote": [64]}),
            "config: synthetic.sizes_by_generator.smote: not one of synthetic.generators ['causalmixft']",
        ),
        (
            lambda c: c["synthetic"].update(sizes=[0, 64], sizes_by_generator={"causalmixft": [64, 128]}),
            "config: synthetic.sizes_by_generator.causalmixft: [128] are not sizes above 0 of synthetic.sizes [0, 64]",
        ),
    ],
)
def test_what_the_schema_cannot_say_fails_naming_the_key(edit, message):
    config = tiny_config()
    edit(config)
    with pytest.raises(ConfigError) as error:
        WorkflowConfig.from_config(config)
    assert message in str(error.value)


def test_input_functions_name_the_files_each_rule_reads():
    wf = settings()
    assert wf.dataset_spec("iris") == {"source": "sklearn:iris"}
    with pytest.raises(ConfigError, match=r"unknown dataset 'nope': not in the config's datasets \(diabetes, iris\)"):
        wf.dataset_spec("nope")
    assert wf.source_files("iris") == [] and wf.source_files("diabetes")[0].endswith("diabetes.csv.gz")
    finetune = wf.finetune_inputs("smote", "iris", 1, 64)
    assert finetune["synthetic"] == "results/synth/smote/iris/fold1/n64.parquet"
    assert finetune["train"] == "results/splits/iris/fold1/train.parquet"
    assert finetune["modules"] == ["code/finetune.py"]
    assert "synthetic" not in wf.finetune_inputs("finetune", "iris", 1, 0)
    fit = wf.generator_fit_inputs("scm_randomdag", "iris", 1)
    assert fit["dag"] == "results/causal/iris/fold1/dag.pkl"
    assert fit["modules"] == ["code/fit_generator.py", "causalmixft.baselines.scm_randomdag"]
    sample = wf.generator_sample_inputs("tabebm", "iris", 1)
    assert sample["fitted"] == "results/generators/tabebm/iris/fold1/generator.pkl"
    assert sample["weights"][0].endswith("tfm-small/model.safetensors") and "dag" not in sample
    assert {"train", "val", "meta", "checksum", "report"} <= set(sample)
    assert wf.generator_settings("scm_randomdag") == {"options": {}, "seed": 0, "quality": "fast"}
    assert wf.generator_sample_settings() == {"sampling": wf.sampling, "seed": 0}


def test_targets_and_runs_cover_the_grid_and_size_zero_has_no_sample():
    wf = settings(sizes=[0, 64, 256])
    assert len(wf.causal_targets()) == 2 * 2 * 2 * 2  # datasets x folds x sizes > 0 x (parquet, fidelity)
    assert "results/synth/causalmixft/iris/fold1/n256.fidelity.json" in wf.causal_targets()
    assert not any("/n0." in path for path in wf.causal_targets() + wf.baseline_targets())
    assert len(wf.baseline_targets()) == 3 * 2 * 2 * 2 * 2
    runs = wf.run_dirs()
    assert "results/runs/tfm-small/zeroshot/iris/fold0/n0" in runs
    assert "results/runs/tfm-small/smote/iris/fold0/n0" not in runs
    assert len(runs) == 2 * 2 * (2 + 4 * 2)  # datasets x folds x (zeroshot, finetune at n0 + 4 methods x 2 sizes)


def test_a_generator_sampled_at_some_sizes_runs_its_methods_at_those_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wf = settings(sizes=[0, 64, 256], sizes_by_generator={"scm_randomdag": [64], "smote": [256]})
    assert wf.generator_sample_sizes("scm_randomdag") == [64] and wf.generator_sample_sizes("causalmixft") == [64, 256]
    samples = wf.baseline_targets()
    assert "results/synth/scm_randomdag/iris/fold0/n64.parquet" in samples
    assert not any("scm_randomdag" in path and "/n256." in path for path in samples)
    assert not any("smote" in path and "/n64." in path for path in samples)
    assert len(samples) == 2 * 2 * (2 + 1 + 1) * 2  # datasets x folds x (tabebm 2 sizes, smote 1, random 1) x files
    runs = wf.run_dirs()
    assert "results/runs/tfm-small/scm_randomdag/iris/fold0/n64" in runs
    assert "results/runs/tfm-small/scm_randomdag/iris/fold0/n256" not in runs
    assert "results/runs/tfm-small/causalmixft/iris/fold0/n256" in runs
    assert len(runs) == 2 * 2 * (2 + 2 + 1 + 2 + 1)  # zeroshot+finetune, causalmixft, smote, tabebm, random
    grid = collect.expected_runs(wf.methods, wf.datasets, wf.folds, wf.sizes, wf.sizes_by_generator)
    assert sorted(layout.fill(layout.RUN, backbone="tfm-small", method=m, dataset=d, fold=f, size=n)
                  for m, d, f, n in grid) == sorted(runs)
    fidelity = collect.fidelity_files(wf.methods, wf.datasets, wf.folds, wf.sizes, by_generator=wf.sizes_by_generator)
    assert sorted(fidelity) == sorted(p for p in wf.causal_targets() + samples if p.endswith(".fidelity.json"))
    # a failed fit rules out the generator's own sizes, not every size of the grid
    found = [{"generator": "scm_randomdag", "dataset": "iris", "fold": 0, "size": None, "path": "m.json", "message": "x"}]
    rows = collect.failure_rows(wf.methods, grid, wf.sizes, found, wf.backbone, by_generator=wf.sizes_by_generator)
    assert sorted(row[5] for row in rows) == [
        "results/runs/tfm-small/scm_randomdag/iris/fold0/n64/metrics.json",
        "results/synth/scm_randomdag/iris/fold0/n64.fidelity.json",
    ]


def test_the_failure_scan_finds_current_markers_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wf = settings(sizes=[0, 64])
    inputs = flat(wf.generator_fit_inputs("smote", "iris", 0))
    for name in inputs:  # the fit's inputs exist and are older than the marker
        if not os.path.isabs(name):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).touch()
    time.sleep(0.05)
    marker = layout.failure_marker("fit_generator", "smote", "iris", 0)
    assert marker == failures.marker_path("fit_generator", "smote", "iris", "fold0")
    failures.write_marker(
        marker, StageError("fit", "iris", "cannot"), inputs, wf.generator_settings("smote"),
        generator="smote", dataset="iris", fold=0,
    )
    found = wf.generator_failures()
    assert [(m["generator"], m["dataset"], m["fold"], m["size"]) for m in found] == [("smote", "iris", 0, None)]
    grid = collect.expected_runs(wf.methods, wf.datasets, wf.folds, wf.sizes)
    rows = collect.failure_rows(wf.methods, grid, wf.sizes, found, wf.backbone)
    assert sorted(row[5] for row in rows) == [
        "results/runs/tfm-small/smote/iris/fold0/n64/metrics.json",
        "results/synth/smote/iris/fold0/n64.fidelity.json",
    ]
    other = settings(sizes=[0, 64], smote={"k_neighbors": 2})  # other settings: the marker is stale
    assert other.generator_failures() == []


def test_the_path_patterns_format_and_parse_the_same_files():
    path = layout.sample_file("smote", "iris", 1, 64, "fidelity.json")
    assert path == "results/synth/smote/iris/fold1/n64.fidelity.json"
    keys = {"generator": "smote", "dataset": "iris", "fold": "1", "size": "64"}
    assert layout.FIDELITY.search(path).groupdict() == keys
    metrics = layout.metrics_file("tfm-small", "finetune", "iris", 0, 0, results="/elsewhere/results")
    assert metrics == "/elsewhere/results/runs/tfm-small/finetune/iris/fold0/n0/metrics.json"
    assert collect.run_key(metrics) == ("finetune", "iris", 0, 0)
    metrics = collect.metrics_path("/x/runs/b", "finetune", "iris", 0, 0)
    assert metrics.as_posix() == "/x/runs/b/finetune/iris/fold0/n0/metrics.json"
    assert layout.fill(layout.SAMPLE, generator="causalmixft") == "results/synth/causalmixft/{dataset}/fold{fold}/n{size}"
    assert layout.sample_sizes([256, 0, 64, 64]) == [64, 256]
    marker = layout.failure_marker("sample_generator", "smote", "iris", 0, 64)
    assert marker == "results/failed/sample_generator/smote/iris/fold0/n64.json"
    with pytest.raises(ValueError, match="no failure marker for rule 'finetune'"):
        layout.failure_marker("finetune", "smote", "iris", 0)


@pytest.mark.parametrize("overlay", [None, *sorted(p.name for p in (REPO / "config").glob("*.yaml"))])
def test_the_shipped_configs_normalise(overlay):
    config = load_yaml(REPO / "config.yaml")
    if overlay:
        update_config(config, load_yaml(REPO / "config" / overlay))
    validate(config, str(SCHEMA))
    wf = WorkflowConfig.from_config(config)
    assert wf.datasets and wf.methods and set(wf.baseline_generators) <= set(wf.generators)
