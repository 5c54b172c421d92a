"""The baselines in the workflow: rule scripts, failure markers, the aggregate's report of failed
cells, config validation, and the rules' files at parse time (throwaway Snakefiles in tmp dirs).

The end-to-end run (a generator that cannot fit one dataset, `--keep-going`, then `aggregate`)
is marked slow.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, load_yaml, run_snakemake, tiny_config, write_config
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate
from test_aggregate_fixtures import write_point

from causalmixft import failures, layout
from causalmixft.causal.simulate import schema_for
from causalmixft.errors import StageError
from causalmixft.analysis.collect import failure_rows, without_failed
from causalmixft.grid import Grid, SizeSpec
from causalmixft.methods import BUILTIN_METHODS
from causalmixft.analysis.outputs import paths as default_outputs
from causalmixft.analysis.report import AggregateJob, aggregate_results
from causalmixft.io import read_json, write_json, write_parquet

SCRIPTS = REPO / "workflow" / "scripts"
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
BASELINES = ["ctgan", "tabebm", "smote", "scm_randomdag", "scm_emptydag"]
ALL_METHODS = [
    "zeroshot",
    "finetune",
    "causalmixft",
    "scm_only",
    "ctgan",
    "ctgan_only",
    "tabebm",
    "smote",
    "scm_randomdag",
    "scm_emptydag",
]


def meta_of(schema) -> dict:
    return {
        "dataset": schema.dataset,
        "features": [f.to_dict() for f in schema.features],
        "classes": list(schema.classes),
        "target": "target",
    }


def write_split(root: Path, frame: pd.DataFrame, categorical: list[str], dataset: str, n_train: int) -> dict:
    schema = schema_for(frame, categorical, dataset)
    paths = {"train": root / "train.parquet", "val": root / "val.parquet", "meta": root / f"{dataset}.meta.json"}
    write_parquet(paths["train"], frame.iloc[:n_train])
    write_parquet(paths["val"], frame.iloc[n_train:])
    write_json(paths["meta"], meta_of(schema))
    return {k: str(v) for k, v in paths.items()}


def mixed_frame(n: int, seed: int, rare: int = 0) -> pd.DataFrame:
    """Two numeric and one categorical feature; ``rare`` rows of a third class 'r' at the start."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "z": np.round(rng.normal(size=n) * 3),
            "c": rng.choice(["p", "q", "s"], size=n).astype(object),
            "target": np.where(x + rng.normal(scale=0.5, size=n) > 0, "a", "b").astype(object),
        }
    )
    frame.loc[: rare - 1, "target"] = "r"
    return frame


class Files(SimpleNamespace):
    """Like Snakemake's input/output: named, and iterating over the files."""

    def __iter__(self):
        return iter(vars(self).values())


def run_script(name: str, tmp_path: Path, **fields) -> str:
    log = tmp_path / f"{name}.log"
    smk = SimpleNamespace(
        log=[str(log)], threads=1, **{k: Files(**v) if isinstance(v, dict) else v for k, v in fields.items()}
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)  # markers go to results/failed/ under the working directory
    try:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), init_globals={"snakemake": smk}, run_name="__main__")
    finally:
        os.chdir(cwd)
    return log.read_text()


SETTINGS = {"options": {"k_neighbors": 3}, "seed": 0}
SAMPLE_SETTINGS = {"sampling": {"fidelity_rows": 128}, "seed": 0}


def test_the_rule_scripts_fit_and_sample_and_time_a_generator(tmp_path):
    split = write_split(tmp_path, mixed_frame(160, 0), ["c"], "mixed", 120)
    fitted = tmp_path / "gen" / "generator.pkl"
    log = run_script(
        "fit_generator",
        tmp_path,
        input={"train": split["train"], "meta": split["meta"]},
        output={"fitted": str(fitted), "report": str(tmp_path / "gen" / "report.json")},
        params={"settings": SETTINGS, "marker": layout.failure_marker("fit_generator", "smote", "mixed", 0, 120)},
        wildcards={"generator": "smote", "dataset": "mixed", "fold": "0", "budget": "120"},
    )
    assert "smote fitted on mixed fold 0 (120 rows)" in log
    report = read_json(tmp_path / "gen" / "report.json")
    assert report["fit_time_s"] >= 0 and report["fit_cpu_s"] >= 0 and report["peak_rss_mib"] > 0
    assert report["report"]["k_neighbors"] == 3
    assert (tmp_path / "gen" / "generator.pkl.sha256").exists()
    parquet, fidelity = tmp_path / "synth" / "n64.parquet", tmp_path / "synth" / "n64.fidelity.json"
    log = run_script(
        "sample_generator",
        tmp_path,
        input={**split, "fitted": str(fitted), "report": str(tmp_path / "gen" / "report.json")},
        output={"synth": str(parquet), "fidelity": str(fidelity)},
        params={
            "settings": SAMPLE_SETTINGS,
            "marker": layout.failure_marker("sample_generator", "smote", "mixed", 0, 120, 64),
        },
        wildcards={"generator": "smote", "dataset": "mixed", "fold": "0", "budget": "120", "size": "64"},
    )
    assert "smote mixed fold 0 n=64" in log
    assert len(pd.read_parquet(parquet)) == 64
    scores = read_json(fidelity)
    assert scores["fit_time_s"] == report["fit_time_s"] and scores["sample_time_s"] >= 0
    assert scores["sample_cpu_s"] >= 0 and scores["sample_peak_rss_mib"] > 0
    assert (scores["generator"], scores["size"]) == ("smote", 64) and 0 <= scores["two_sample_auc"] <= 1
    assert not (tmp_path / "results" / "failed").exists()


def test_a_generator_that_cannot_fit_fails_with_a_message_and_leaves_a_marker(tmp_path):
    split = write_split(tmp_path, mixed_frame(80, 1, rare=1), ["c"], "rare", 60)
    inputs = {"train": split["train"], "meta": split["meta"]}
    with pytest.raises(StageError, match="class 'r' has 1 train row"):
        run_script(
            "fit_generator",
            tmp_path,
            input=inputs,
            output={"fitted": str(tmp_path / "g.pkl"), "report": str(tmp_path / "r.json")},
            params={"settings": SETTINGS, "marker": layout.failure_marker("fit_generator", "smote", "rare", 0, 40)},
            wildcards={"generator": "smote", "dataset": "rare", "fold": "0", "budget": "40"},
        )
    assert "class 'r' has 1 train row" in (tmp_path / "fit_generator.log").read_text()
    marker_path = tmp_path / failures.marker_path("fit_generator", "smote", "rare", "fold0", "real40")
    marker = read_json(marker_path)
    assert marker["message"].startswith("[fit] rare: smote interpolates")
    assert (marker["generator"], marker["dataset"], marker["fold"], marker["budget"]) == ("smote", "rare", 0, 40)
    assert marker["inputs"] == sorted(inputs.values()) and marker["settings"] == SETTINGS

    # current while inputs and settings are unchanged; stale after an edit or other settings
    assert failures.current_marker(marker_path, inputs.values(), SETTINGS)["path"] == str(marker_path)
    assert failures.current_marker(marker_path, inputs.values(), {**SETTINGS, "seed": 1}) is None
    assert failures.current_marker(marker_path, [split["train"]], SETTINGS) is None
    later = marker_path.stat().st_mtime + 5
    os.utime(split["train"], (later, later))
    assert failures.current_marker(marker_path, inputs.values(), SETTINGS) is None


def test_only_stage_errors_leave_markers_and_a_rerun_clears_the_old_one(tmp_path):
    marker = tmp_path / "failed" / "x.json"
    with pytest.raises(RuntimeError):
        with failures.recorded_failure(marker, [], {}):
            raise RuntimeError("a bug, not a data problem")
    assert not marker.exists()
    with pytest.raises(StageError):
        with failures.recorded_failure(marker, [], {}, generator="g"):
            raise StageError("sample", "d", "cannot")
    assert read_json(marker)["problem"] == "cannot"
    with failures.recorded_failure(marker, [], {}):
        pass
    assert not marker.exists()


GRID = Grid(
    datasets=("A", "B", "C"),
    folds=(0, 1),
    budgets=(256,),
    methods=tuple(BUILTIN_METHODS[m] for m in ALL_METHODS),
    sizes=(SizeSpec(0), SizeSpec(64), SizeSpec(256)),
    val_fraction=0.2,
)


def write_runs(root: Path, failed_cell=("smote", "A", 0)) -> list[list]:
    grid = []
    for run in GRID.runs():
        method, dataset, fold, _, size = run.key()
        grid.append(list(run.key()))
        if (BUILTIN_METHODS[method].generator, dataset, fold) == failed_cell:
            continue
        score = 0.7 + 0.01 * ALL_METHODS.index(method) + 0.001 * fold + 0.0001 * size
        write_point(root, method, dataset, fold, size, roc_auc=score, accuracy=score - 0.1)
    return grid


def test_the_aggregate_reports_every_method_and_the_cells_a_failure_rules_out(tmp_path):
    runs = tmp_path / "results" / "runs" / "tfm-small"
    grid = write_runs(runs)
    methods = [BUILTIN_METHODS[m] for m in ALL_METHODS]
    marker = {
        "generator": "smote",
        "dataset": "A",
        "fold": 0,
        "budget": 256,
        "size": None,
        "path": "results/failed/fit_generator/smote/A/fold0/real256.json",
        "message": "[fit] A: smote ... class 'r' has 1 train row",
    }
    failed = failure_rows(GRID, [marker], "tfm-small", results=str(tmp_path / "results"))
    assert sorted(tuple(row[:6]) for row in failed) == [
        ("fidelity", "smote", "A", 0, 256, 64),
        ("fidelity", "smote", "A", 0, 256, 256),
        ("run", "smote", "A", 0, 256, 64),
        ("run", "smote", "A", 0, 256, 256),
    ]
    metrics = [str(runs / m / d / f"fold{f}" / f"real{b}" / f"n{s}" / "metrics.json") for m, d, f, b, s in grid]
    assert len(without_failed(metrics, failed)) == len(metrics) - 2
    outputs = default_outputs(tmp_path / "out")
    tables = aggregate_results(AggregateJob(
        expected=grid,
        metrics_files=without_failed(metrics, failed),
        methods_with_real=[m.name for m in methods if m.uses_real],
        size_dependent=[m.name for m in methods if m.size_dependent],
        outputs=outputs,
        failed=failed,
    ))
    missing = pd.read_csv(outputs["missing"])
    assert len(missing) == 4 and set(missing["kind"]) == {"run", "fidelity"}
    assert missing["reason"].str.contains("generator smote failed .*class 'r' has 1 train row").all()
    assert set(missing.loc[missing["kind"] == "run", "path"]) == {
        str(tmp_path / f"results/runs/tfm-small/smote/A/fold0/real256/n{n}/metrics.json") for n in (64, 256)
    }
    ranks = tables["ranks"]
    chosen = ranks[(ranks["group"] == "all") & (ranks["selection"] == "val_chosen")]
    assert set(chosen["competitor"]) == set(ALL_METHODS)
    assert set(tables["scaling"]["method"]) >= {m for m in ALL_METHODS if m not in ("zeroshot", "finetune")}
    summary = outputs["summary"].read_text()
    assert all(method in summary for method in ALL_METHODS)
    assert "generator smote failed" in summary
    assert outputs["plot_scaling"].stat().st_size > 0


SNAKEFILE = f"""\
import json
from pathlib import Path
from types import SimpleNamespace

configfile: "config.yaml"

include: "{REPO / 'workflow' / 'rules' / 'common.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'data.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'causal.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'generators.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'finetune.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'aggregate.smk'}"

rule all:
    input:
        all_targets(),

from causalmixft.workflow_config import flat

keys = SimpleNamespace(generator="smote", dataset="diabetes", fold=0, budget=48)
Path("declared.json").write_text(json.dumps({{
    "fit_inputs": generator_fit_inputs(SimpleNamespace(generator="scm_randomdag", dataset="iris", fold=1, budget=48)),
    "tabebm_inputs": generator_fit_inputs(SimpleNamespace(generator="tabebm", dataset="iris", fold=1, budget=48)),
    "smote_inputs": sorted(flat(generator_fit_inputs(keys))),
    "smote_settings": WF.generator_settings("smote"),
    "sample_targets": WF.sample_targets(),
    "failed": AGGREGATE_FAILED,
    "metrics": run_metrics_files(),
}}))
"""


def baseline_config(**synthetic) -> dict:
    config = tiny_config()
    config["synthetic"].update(generators=["causalmixft", *BASELINES], **synthetic)
    config["finetune"]["methods"] = ALL_METHODS
    return config


def snakemake(directory: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "rules", *args]
    return subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=300)


def test_rules_name_their_inputs_and_a_current_marker_takes_cells_out_of_the_aggregate(tmp_path):
    write_config(tmp_path, baseline_config(smote={"k_neighbors": 3}))
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "src").symlink_to(REPO / "src")
    result = snakemake(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr + result.stdout
    declared = json.loads((tmp_path / "declared.json").read_text())
    fit = declared["fit_inputs"]
    assert fit["dag"] == "results/causal/iris/fold1/real48/dag.pkl"
    assert any(m.endswith("baselines/scm_randomdag.py") for m in fit["modules"])
    assert any(m.endswith("causal/scm.py") for m in fit["modules"])
    assert not any(m.endswith("baselines/ctgan.py") for m in fit["modules"])  # ctgan edits do not touch it
    assert declared["tabebm_inputs"]["weights"][0].endswith("tfm-small/model.safetensors")
    assert declared["smote_settings"] == {"options": {"k_neighbors": 3}, "seed": 0}
    # 6 generators (causalmixft and 5 baselines) x 2 datasets x 2 folds x 3 sizes x (parquet, fidelity)
    assert len(declared["sample_targets"]) == 6 * 2 * 2 * 3 * 2 and declared["failed"] == []
    assert "results/runs/tfm-small/smote/diabetes/fold0/real48/n64/metrics.json" in declared["metrics"]
    assert "fit_generator" in result.stdout and "sample_generator" in result.stdout

    # A current marker of fit_generator(smote, diabetes, 0): its inputs exist and are older.
    for name in declared["smote_inputs"]:
        if not Path(name).is_absolute():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("")
    time.sleep(0.05)
    failures.write_marker(
        tmp_path / failures.marker_path("fit_generator", "smote", "diabetes", "fold0", "real48"),
        StageError("sample", "diabetes", "smote cannot"),
        declared["smote_inputs"],
        declared["smote_settings"],
        generator="smote",
        dataset="diabetes",
        fold=0,
        budget=48,
    )
    result = snakemake(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    declared = json.loads((tmp_path / "declared.json").read_text())
    assert len(declared["failed"]) == 2 * 3  # (fidelity, run) x 3 sizes
    assert all("smote cannot" in row[7] for row in declared["failed"])
    assert not any("/smote/diabetes/fold0/" in path for path in declared["metrics"])

    # Other settings make the marker stale: the cells are awaited again.
    write_config(tmp_path, baseline_config(smote={"k_neighbors": 2}))
    assert snakemake(tmp_path, "--dry-run").returncode == 0
    assert json.loads((tmp_path / "declared.json").read_text())["failed"] == []


def test_a_method_whose_generator_is_not_sampled_fails_validation(tmp_path):
    config = tiny_config()
    config["finetune"]["methods"] = ["zeroshot", "ctgan"]
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert "method 'ctgan' trains on samples of generator 'ctgan'" in result.stdout + result.stderr
    config["synthetic"]["generators"] = ["causalmixft", "nope"]
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "--dry-run", check=False)
    assert "synthetic.generators ['nope'] are not generators" in result.stdout + result.stderr


def test_generator_options_are_validated_and_the_baselines_config_validates():
    merged = load_yaml(REPO / "config.yaml")
    update_config(merged, load_yaml(REPO / "config" / "baselines.yaml"))  # what --configfile does
    validate(merged, SCHEMA)
    assert set(merged["synthetic"]["generators"]) == {"causalmixft", *BASELINES}
    assert set(merged["finetune"]["methods"]) == set(ALL_METHODS)
    broken = yaml.safe_load(yaml.safe_dump(merged))
    broken["synthetic"]["smote"] = {"k": 3}
    with pytest.raises(WorkflowError, match="'k' was unexpected"):
        validate(broken, SCHEMA)


RARE_CSV = "x,z,c,label\n" + "".join(
    f"{x:.3f},{z},{c},{label}\n"
    for x, z, c, label in zip(
        np.random.default_rng(0).normal(size=120),
        np.random.default_rng(1).integers(0, 9, size=120),
        np.random.default_rng(2).choice(["p", "q", "s"], size=120),
        ["r", "r"] + ["a", "b"] * 59,
    )
)


@pytest.mark.slow
def test_a_failing_generator_fails_its_job_and_the_aggregate_reports_its_cells(tmp_path):
    """`make run`'s sequence: snakemake --keep-going (fails: smote cannot fit 'rare'), then the
    aggregate from what exists, with the failed cells in missing.csv."""
    (tmp_path / "rare.csv").write_text(RARE_CSV)
    config = tiny_config()
    config["datasets"] = {"rare": {"source": f"file:{tmp_path / 'rare.csv'}", "target": "label"}}
    config["protocol"] = {"n_folds": 2, "folds": [0], "test_max_rows": 20, "real_budget": 40, "val_fraction": 0.25}
    config["synthetic"].update(
        generators=["causalmixft", *BASELINES],
        sizes=[0, 32],
        ctgan={"epochs": 2, "batch_size": 20},
        tabebm={"sgld_steps": 2},
    )
    config["finetune"].update(methods=ALL_METHODS, steps=2, eval_every=1, patience=1)
    write_config(tmp_path, config)
    first = run_snakemake(tmp_path, "--keep-going", check=False)
    assert first.returncode != 0
    assert "class 'r' has 1 train row" in first.stdout + first.stderr
    assert (tmp_path / "results/failed/fit_generator/smote/rare/fold0/real40.json").exists()
    for name in ("ctgan", "tabebm", "scm_randomdag", "scm_emptydag"):
        assert (tmp_path / f"results/benchmarks/fit_generator/{name}/rare/fold0/real40.tsv").exists()
        assert (tmp_path / f"results/synth/{name}/rare/fold0/real40/n32.fidelity.json").exists()
    second = run_snakemake(tmp_path, "aggregate", check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    missing = pd.read_csv(tmp_path / "results" / "tables" / "missing.csv")
    assert sorted(missing["kind"] + ":" + missing["method"]) == ["fidelity:smote", "run:smote"]
    assert missing["reason"].str.contains("class 'r' has 1 train row").all()
    ranks = pd.read_csv(tmp_path / "results" / "tables" / "ranks.csv")
    assert set(ranks["competitor"]) >= set(ALL_METHODS) - {"smote"}
    cost = pd.read_csv(tmp_path / "results" / "tables" / "cost.csv")
    assert {"fit_generator", "sample_generator"} <= set(cost["rule"])
