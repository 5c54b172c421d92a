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
from causalmixft.analysis import collect
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
    assert wf.grid.budgets == (48,) and wf.grid.train_rows(48) == 36  # 48 - round(0.25 * 48)
    assert wf.grid.sample_sizes("causalmixft", 48) == [64, 256]
    assert (wf.seed, wf.replicates, wf.backbone) == (0, 1, "tfm-small")
    assert [m.name for m in wf.methods][:3] == ["zeroshot", "finetune", "causalmixft"]
    assert wf.generators == ["causalmixft", "smote", "tabebm", "scm_randomdag"]
    assert wf.sampling == {"clip_to_observed": True, "fidelity_rows": 1024, "match_label_distribution": True}
    # CausalMixFT is fitted like its controls: the fold's DAG and scm.quality
    fit = wf.generator_fit_inputs("causalmixft", "iris", 1, 48)
    assert fit["dag"] == "results/causal/iris/fold1/real48/dag.pkl" and "weights" not in fit
    assert wf.generator_settings("causalmixft") == {"options": {}, "seed": 0, "quality": "fast"}
    assert wf.generator_sample_inputs("causalmixft", "iris", 1, 48)["fitted"] == (
        "results/generators/causalmixft/iris/fold1/real48/generator.pkl"
    )
    assert wf.replicate_params() == {"seeds": 1, "seed": 0, "selection_rows": 0}
    assert "methods" not in wf.finetune_params() and wf.finetune_params()["steps"] == 60
    # real_budget is the split's wildcard, not a param: a budget's rows do not depend on the others
    protocol = {"n_folds": 2, "seed": 0, "test_max_rows": 40, "val_fraction": 0.25}
    assert wf.protocol_params() == protocol


def test_keep_weights_says_which_files_a_run_writes_and_is_not_a_setting_of_the_run():
    assert settings().run_file_names() == ("model.safetensors", "config.json", "metrics.json")
    config = tiny_config()
    config["finetune"]["keep_weights"] = False
    validate(config, str(SCHEMA))
    lean = WorkflowConfig.from_config(config, code=code)
    assert lean.run_file_names() == ("config.json", "metrics.json") and not lean.keep_weights
    # toggling it changes no run's params (so no finished run's metrics are redone for it)
    assert lean.finetune_params() == WorkflowConfig.from_config(tiny_config(), code=code).finetune_params()


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
        (
            lambda c: c["synthetic"].update(sizes=[0]),
            "config: finetune.methods ['causalmixft'] train on synthetic rows, but synthetic.sizes [0] give no size",
        ),
        (
            lambda c: c["datasets"]["iris"].update(budgets=[32]),
            "config: datasets.iris.budgets: [32] are not in protocol.real_budget [48]",
        ),
        (
            lambda c: c["finetune"].update(methods=["finetune", "causalmixft_synthval"]),
            "select on synthetic rows; set synthetic.selection_rows >= 1",
        ),
        (lambda c: c["synthetic"].update(sizes=[0, "4"]), "config: synthetic.sizes: synthetic size '4' is neither"),
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
    finetune = wf.finetune_inputs("smote", "iris", 1, 48, 64)
    assert finetune["synthetic"] == "results/synth/smote/iris/fold1/real48/n64.parquet"
    assert finetune["train"] == "results/splits/iris/fold1/real48/train.parquet"
    assert finetune["modules"] == ["code/finetune.py"]
    assert "synthetic" not in wf.finetune_inputs("finetune", "iris", 1, 48, 0)
    fit = wf.generator_fit_inputs("scm_randomdag", "iris", 1, 48)
    assert fit["dag"] == "results/causal/iris/fold1/real48/dag.pkl"
    assert fit["modules"] == ["code/fit_generator.py", "causalmixft.baselines.scm_randomdag"]
    sample = wf.generator_sample_inputs("tabebm", "iris", 1, 48)
    assert sample["fitted"] == "results/generators/tabebm/iris/fold1/real48/generator.pkl"
    assert sample["weights"][0].endswith("tfm-small/model.safetensors") and "dag" not in sample
    assert {"train", "val", "meta", "checksum", "report"} <= set(sample)
    assert wf.generator_settings("scm_randomdag") == {"options": {}, "seed": 0, "quality": "fast"}
    assert wf.generator_sample_settings() == {"sampling": wf.sampling, "seed": 0}


def test_targets_and_runs_cover_the_grid_and_size_zero_has_no_sample():
    wf = settings(sizes=[0, 64, 256])
    targets = wf.sample_targets()
    assert len(targets) == 4 * 2 * 2 * 2 * 2  # generators x datasets x folds x sizes > 0 x (parquet, fidelity)
    assert "results/synth/causalmixft/iris/fold1/real48/n256.fidelity.json" in targets
    assert "results/synth/smote/iris/fold1/real48/n256.parquet" in targets
    assert not any("/n0." in path for path in targets)
    runs = wf.run_dirs()
    assert "results/runs/tfm-small/zeroshot/iris/fold0/real48/n0" in runs
    assert "results/runs/tfm-small/smote/iris/fold0/real48/n0" not in runs
    assert len(runs) == 2 * 2 * (2 + 4 * 2)  # datasets x folds x (zeroshot, finetune at n0 + 4 methods x 2 sizes)


def test_budgets_and_ratio_sizes_multiply_the_grid_and_a_dataset_may_skip_budgets():
    config = tiny_config()
    config["protocol"]["real_budget"] = [16, 48]
    config["datasets"]["iris"]["budgets"] = [16]
    config["synthetic"].update(sizes=[0, "1x", 24, "2x"], selection_rows=8)
    config["finetune"]["methods"] = ["finetune", "causalmixft", "causalmixft_synthval"]
    validate(config, str(SCHEMA))
    wf = WorkflowConfig.from_config(config, code=code)
    # train rows: 16 - round(0.25 * 16) = 12, 48 - 12 = 36; 1x and 2x resolve per budget
    assert wf.grid.sample_sizes("causalmixft", 16) == [12, 24]  # 1x = 12, 24, 2x = 24: once each
    assert wf.grid.sample_sizes("causalmixft", 48) == [24, 36, 72]
    assert wf.grid.size_label(wf.grid.method("causalmixft"), 16, 24) == "24=2x"
    assert wf.grid.cells() == [("diabetes", 0, 16), ("diabetes", 0, 48), ("diabetes", 1, 16), ("diabetes", 1, 48),
                               ("iris", 0, 16), ("iris", 1, 16)]
    runs = wf.runs()
    # per cell: finetune at n0 + 2 methods x its sizes (2 at budget 16, 3 at 48)
    assert len(runs) == 2 * (1 + 2 * 2) + 2 * (1 + 2 * 3) + 2 * (1 + 2 * 2)
    # the synthval run at n trains on rows 0..n of the nested draw and reads 8 more to select on
    inputs = wf.finetune_inputs("causalmixft_synthval", "diabetes", 0, 48, 36)
    assert inputs["synthetic"] == "results/synth/causalmixft/diabetes/fold0/real48/n44.parquet"
    samples = {(s.budget, s.size) for s in wf.grid.samples(["causalmixft"]) if (s.dataset, s.fold) == ("diabetes", 0)}
    assert samples == {(16, 12), (16, 24), (16, 20), (16, 32), (48, 24), (48, 36), (48, 72), (48, 32), (48, 44), (48, 80)}
    assert "results/splits/iris/fold1/real16/meta.json" in wf.split_metas()
    assert not any("iris/fold1/real48" in path for path in wf.split_metas())


def test_a_generator_sampled_at_some_sizes_runs_its_methods_at_those_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wf = settings(sizes=[0, 64, 256], sizes_by_generator={"scm_randomdag": [64], "smote": [256]})
    assert wf.grid.sample_sizes("scm_randomdag", 48) == [64] and wf.grid.sample_sizes("causalmixft", 48) == [64, 256]
    samples = [path for path in wf.sample_targets() if "/causalmixft/" not in path]
    assert "results/synth/scm_randomdag/iris/fold0/real48/n64.parquet" in samples
    assert not any("scm_randomdag" in path and "/n256." in path for path in samples)
    assert not any("smote" in path and "/n64." in path for path in samples)
    assert len(samples) == 2 * 2 * (2 + 1 + 1) * 2  # datasets x folds x (tabebm 2 sizes, smote 1, random 1) x files
    runs = wf.run_dirs()
    assert "results/runs/tfm-small/scm_randomdag/iris/fold0/real48/n64" in runs
    assert "results/runs/tfm-small/scm_randomdag/iris/fold0/real48/n256" not in runs
    assert "results/runs/tfm-small/causalmixft/iris/fold0/real48/n256" in runs
    assert len(runs) == 2 * 2 * (2 + 2 + 1 + 2 + 1)  # zeroshot+finetune, causalmixft, smote, tabebm, random
    assert sorted(wf.fidelity_files()) == sorted(p for p in wf.sample_targets() if p.endswith(".fidelity.json"))
    # a failed fit rules out the generator's own sizes, not every size of the grid
    found = [{"generator": "scm_randomdag", "dataset": "iris", "fold": 0, "budget": 48, "size": None,
              "path": "m.json", "message": "x"}]
    rows = collect.failure_rows(wf.grid, found, wf.backbone)
    assert sorted(row[6] for row in rows) == [
        "results/runs/tfm-small/scm_randomdag/iris/fold0/real48/n64/metrics.json",
        "results/synth/scm_randomdag/iris/fold0/real48/n64.fidelity.json",
    ]


def test_the_failure_scan_finds_current_markers_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wf = settings(sizes=[0, 64])
    inputs = flat(wf.generator_fit_inputs("smote", "iris", 0, 48))
    for name in inputs:  # the fit's inputs exist and are older than the marker
        if not os.path.isabs(name):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).touch()
    time.sleep(0.05)
    marker = layout.failure_marker("fit_generator", "smote", "iris", 0, 48)
    assert marker == failures.marker_path("fit_generator", "smote", "iris", "fold0", "real48")
    failures.write_marker(
        marker, StageError("fit", "iris", "cannot"), inputs, wf.generator_settings("smote"),
        generator="smote", dataset="iris", fold=0, budget=48,
    )
    found = wf.generator_failures()
    assert [(m["generator"], m["dataset"], m["fold"], m["budget"], m["size"]) for m in found] == [
        ("smote", "iris", 0, 48, None)
    ]
    rows = collect.failure_rows(wf.grid, found, wf.backbone)
    assert sorted(row[6] for row in rows) == [
        "results/runs/tfm-small/smote/iris/fold0/real48/n64/metrics.json",
        "results/synth/smote/iris/fold0/real48/n64.fidelity.json",
    ]
    other = settings(sizes=[0, 64], smote={"k_neighbors": 2})  # other settings: the marker is stale
    assert other.generator_failures() == []


def test_the_path_patterns_format_and_parse_the_same_files():
    path = layout.sample_file("smote", "iris", 1, 48, 64, "fidelity.json")
    assert path == "results/synth/smote/iris/fold1/real48/n64.fidelity.json"
    keys = {"generator": "smote", "dataset": "iris", "fold": "1", "budget": "48", "size": "64"}
    assert layout.FIDELITY.search(path).groupdict() == keys
    metrics = layout.metrics_file("tfm-small", "finetune", "iris", 0, 48, 0, results="/elsewhere/results")
    assert metrics == "/elsewhere/results/runs/tfm-small/finetune/iris/fold0/real48/n0/metrics.json"
    assert collect.run_key(metrics) == ("finetune", "iris", 0, 48, 0)
    assert layout.fill(layout.SAMPLE, generator="causalmixft") == (
        "results/synth/causalmixft/{dataset}/fold{fold}/real{budget}/n{size}"
    )
    assert layout.job_file(layout.LOGS, "split", ".log") == (
        "results/logs/split/{dataset}/fold{fold}/real{budget}.log"
    )
    marker = layout.failure_marker("sample_generator", "smote", "iris", 0, 48, 64)
    assert marker == "results/failed/sample_generator/smote/iris/fold0/real48/n64.json"
    with pytest.raises(ValueError, match="no failure marker for rule 'finetune'"):
        layout.failure_marker("finetune", "smote", "iris", 0, 48)


@pytest.mark.parametrize("overlay", [None, *sorted(p.name for p in (REPO / "config").glob("*.yaml"))])
def test_the_shipped_configs_normalise(overlay):
    config = load_yaml(REPO / "config.yaml")
    if overlay:
        update_config(config, load_yaml(REPO / "config" / overlay))
    validate(config, str(SCHEMA))
    wf = WorkflowConfig.from_config(config)
    assert wf.datasets and wf.methods and wf.generators


def test_the_cost_counts_the_benchmarks_of_this_configs_jobs_only(tmp_path):
    from causalmixft.analysis.collect import load_benchmarks

    wf = settings(sizes=[0, 64])
    files = wf.benchmark_files()
    # 2 datasets, 2 folds, 1 budget: prepare 2, split 4, discover 4 (causalmixft and scm_randomdag need
    # the DAG), fit_generator 4 generators x 4, samples 4 x 4 (one size each), runs 4 x (2 + 4)
    assert len(files) == 2 + 4 + 4 + 16 + 16 + 24 and len(set(files)) == len(files)
    assert "results/benchmarks/finetune/tfm-small/smote/iris/fold1/real48/n64.tsv" in files
    assert "results/benchmarks/fit_generator/causalmixft/iris/fold1/real48.tsv" in files
    assert "results/benchmarks/sample_generator/causalmixft/iris/fold1/real48/n64.tsv" in files
    root = tmp_path / "results" / "benchmarks"
    ours = tmp_path / files[-1]
    older = root / "finetune" / "tfm-small" / "finetune" / "iris" / "fold0" / "n0.tsv"  # an earlier config's job
    for path in (ours, older):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("s\tcpu_time\tmax_rss\n2.0\t1.5\t100\n")
    assert len(load_benchmarks(root)) == 2
    counted = load_benchmarks(root, only=[tmp_path / f for f in files])
    assert counted["file"].tolist() == [str(ours.relative_to(root))]
