"""workflow/rules/aggregate.smk: the rule's files match the package, and Snakemake runs it.

A throwaway Snakefile includes the real common.smk and aggregate.smk, as the workflow's
Snakefile does, and dumps what the rule declares at parse time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from conftest import REPO, tiny_config, write_config
from test_aggregate_fixtures import write_point

from causalmixft.analysis.outputs import BY_NAME, OUTPUTS, write_captions
from causalmixft.io import write_json

SNAKEFILE = f"""\
import json
from pathlib import Path

configfile: "config.yaml"

include: "{REPO / 'workflow' / 'rules' / 'common.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'aggregate.smk'}"

rule all:
    input:
        aggregate_targets(),

Path("declared.json").write_text(json.dumps({{
    "outputs": list(rules.aggregate.output.keys()),
    "output_files": list(rules.aggregate.output),
    "metrics": run_metrics_files(),
    "fidelity": list(rules.aggregate.input.fidelity),
    "grid": AGGREGATE_GRID,
    "groups": collect.source_kind_groups(config["datasets"]),
    "targets": all_targets(),
}}))
"""
SIZES = (64, 256, 1024)  # config.yaml's synthetic sizes above 0


def workdir(tmp_path: Path) -> Path:
    """The tiny config (diabetes from a file, iris from sklearn; 2 folds) with every run's metrics."""
    config = tiny_config()
    # scm_only too (the default runs it with make baselines): a purely synthetic curve anchored at zeroshot.
    config["finetune"]["methods"] = ["zeroshot", "finetune", "causalmixft", "scm_only"]
    write_config(tmp_path, config)
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    # common.smk resolves the package next to the Snakefile; the rule names its modules as inputs.
    (tmp_path / "src").symlink_to(REPO / "src")
    runs = tmp_path / "results" / "runs" / "tfm-small"
    for dataset in ("diabetes", "iris"):
        for fold in (0, 1):  # the split stage's meta.json: test class counts for the chance test
            meta = {"dataset": dataset, "fold": fold, "counts": {"test": {"classes": {"0": 40, "1": 35}}}}
            write_json(tmp_path / "results" / "splits" / dataset / f"fold{fold}" / "real48" / "meta.json", meta)
    for method, sizes in (("zeroshot", [0]), ("finetune", [0]), ("causalmixft", SIZES), ("scm_only", SIZES)):
        for dataset in ("diabetes", "iris"):
            for fold in (0, 1):
                for size in sizes:
                    score = 0.7 + 0.01 * fold + 0.00001 * size
                    metrics = write_point(runs, method, dataset, fold, size, budget=48, roc_auc=score)
                    write_weights(metrics.parent)
                    if method == "causalmixft":
                        synth = tmp_path / "results" / "synth" / "causalmixft" / dataset / f"fold{fold}" / "real48"
                        write_json(synth / f"n{size}.fidelity.json", {"two_sample_roc_auc": 0.6})
    return tmp_path


def write_weights(run: Path) -> None:
    """A run's model.safetensors and config.json: aggregate inputs beside metrics.json (checked whole)."""
    save_file({"w": torch.zeros(2)}, str(run / "model.safetensors"))
    write_json(run / "config.json", {})


def snakemake(directory: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "snakemake", "--cores", "1", *args]
    return subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=300)


def test_rule_declares_every_output_and_the_configured_grid(tmp_path):
    directory = workdir(tmp_path)
    result = snakemake(directory, "--dry-run", "all")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "aggregate" in result.stdout
    declared = json.loads((directory / "declared.json").read_text())
    # every output of the table, at its path, and manifest.json (written last)
    assert sorted(declared["outputs"]) == sorted([output.name for output in OUTPUTS] + ["manifest"])
    files = dict(zip(declared["outputs"], declared["output_files"]))
    assert {name: files[name] for name in files if name != "manifest"} == {
        output.name: f"results/{output.path}" for output in OUTPUTS
    }
    # The HTML report's captions, written at parse time from the same table: one per reported output.
    captions = directory / ".snakemake" / "captions"
    assert sorted(path.stem for path in captions.glob("*.rst")) == sorted(o.name for o in OUTPUTS if o.subcategory)
    assert (captions / "effects.rst").read_text() == BY_NAME["effects"].caption + "\n"
    # Registered with common.smk's stage_targets, so the workflow's `rule all` asks for every output.
    assert sorted(declared["targets"]) == sorted(declared["output_files"])
    # zeroshot and finetune at n=0 only, the others at every size above 0; 2 datasets x 2 folds.
    sizes = {}
    for method, _, _, budget, size in declared["grid"]:
        assert budget == 48  # the tiny config's one real budget
        sizes.setdefault(method, set()).add(size)
    assert sizes == {"zeroshot": {0}, "finetune": {0}, "causalmixft": set(SIZES), "scm_only": set(SIZES)}
    assert len(declared["grid"]) == 2 * 2 * (1 + 1 + 3 + 3)
    assert "results/runs/tfm-small/scm_only/iris/fold1/real48/n1024/metrics.json" in declared["metrics"]
    assert len(declared["fidelity"]) == 2 * 2 * 3
    assert "results/synth/causalmixft/diabetes/fold0/real48/n64.fidelity.json" in declared["fidelity"]
    assert declared["groups"] == {"sklearn": ["iris"], "tabarena": ["diabetes"]}


@pytest.mark.slow
def test_rule_runs_and_feeds_the_html_report(tmp_path):
    directory = workdir(tmp_path)
    result = snakemake(directory, "all")
    assert result.returncode == 0, result.stderr
    assert (
        "aggregated 32 runs; 0 expected files missing" in (directory / "results" / "logs" / "aggregate.log").read_text()
    )
    assert (directory / "results" / "benchmarks" / "aggregate.tsv").exists()
    summary = (directory / "results" / "report" / "summary.md").read_text()
    assert summary.startswith("# Answer: paired gains") and "32 of 32 expected runs are present" in summary
    groups = (directory / "results" / "tables" / "improvement.csv").read_text()
    assert ",sklearn," in groups  # the datasets' source kinds as groups (mixed file and sklearn sources)
    report = snakemake(directory, "--report", "report.html")
    assert report.returncode == 0, report.stderr
    html = (directory / "report.html").read_text()
    assert "critical_difference.png" in html and "improvement.csv" in html and "effects.csv" in html
    assert "whose files are absent: they contribute no value to any table" in html  # a caption of the table


def test_captions_are_written_once_and_rewritten_when_the_table_changes(tmp_path):
    files = write_captions(tmp_path)
    assert "runs_long" not in files and files["chance"] == tmp_path / "chance.rst"  # a file-only output: none
    before = files["chance"].stat().st_mtime_ns
    os.utime(files["chance"], ns=(before - 10**9, before - 10**9))  # one second older
    write_captions(tmp_path)
    assert files["chance"].stat().st_mtime_ns == before - 10**9  # the same text: not rewritten
    files["chance"].write_text("an old caption\n")
    write_captions(tmp_path)
    assert files["chance"].read_text() == BY_NAME["chance"].caption + "\n"
