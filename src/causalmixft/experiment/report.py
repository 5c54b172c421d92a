"""Entry point of the aggregate stage: read every run, write the tables, plots and summary.

``aggregate_results`` takes plain data only (what a Snakemake rule passes as params), so the
workflow script stays a one-call wrapper and the stage runs the same from a notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from causalmixft.experiment import cost, plots
from causalmixft.experiment.aggregate import build_tables
from causalmixft.experiment.answer import answer_tables
from causalmixft.experiment.collect import (
    MISSING_COLUMNS,
    load_benchmarks,
    load_fidelity,
    load_runs,
    load_test_class_counts,
)
from causalmixft.experiment.study import Study
from causalmixft.experiment.summary import render_summary
from causalmixft.io import atomic_path

# The tables of the summary's Answer section (answer.py), computed from the others.
ANSWER_TABLES = ("scaling_fit", "scaling_peak", "size_selection", "val_test_by_size", "chance", "dag_controls", "claims")
TABLES = (
    "runs_long",
    "missing",
    "improvement",
    "improvement_per_dataset",
    "ranks",
    "rank_tests",
    "paired_tests",
    "replicate_spread",
    "size_choices",
    "gap_regret",
    "gap_regret_runs",
    "scaling",
    "scaling_per_dataset",
    "trend",
    "best_size",
    "fidelity",
    "cost",
    "cost_scaling",
    "cost_projection",
    *ANSWER_TABLES,
)
PLOTS = (
    "plot_scaling",
    "plot_scaling_improvement",
    *(f"plot_scaling_per_dataset_{split}_{metric}" for split, metric in plots.SCALING_PANELS),
    "plot_critical_difference",
    "plot_val_vs_test",
    "plot_scaling_fit",
)
OUTPUTS = (*TABLES, *PLOTS, "summary")


def default_outputs(results_dir: str | Path = "results") -> dict[str, Path]:
    """The stage's files under ``results_dir``: tables/{name}.csv, plots/{name}.png, report/summary.md."""
    root = Path(results_dir)
    paths = {name: root / "tables" / f"{name}.csv" for name in TABLES}
    paths |= {name: root / "plots" / f"{name.removeprefix('plot_')}.png" for name in PLOTS}
    paths["summary"] = root / "report" / "summary.md"
    return paths


def aggregate_results(
    *,
    expected: Iterable[Iterable],
    metrics_files: Iterable[str | Path],
    methods_with_real: Iterable[str],
    size_dependent: Iterable[str],
    outputs: Mapping[str, str | Path],
    reference: str = "zeroshot",
    baseline: str = "finetune",
    metrics: Iterable[str] = ("roc_auc", "accuracy"),
    dataset_groups: Mapping[str, Iterable[str]] | None = None,
    fidelity_files: Iterable[str | Path] = (),
    benchmarks_root: str | Path | None = None,
    benchmark_exclude: Iterable[str | Path] = (),
    config: Mapping | None = None,
    alpha: float = 0.05,
    failed: Iterable[Iterable] = (),
    meta_root: str | Path | None = None,
    projection: Mapping | None = None,
    split_metas: Iterable[str | Path] = (),
) -> dict[str, pd.DataFrame]:
    """Write every output named in ``OUTPUTS`` to ``outputs[name]``; return the tables.

    ``expected`` lists every (method, dataset, fold, size) the config asks for and
    ``metrics_files`` their ``.../{method}/{dataset}/fold{fold}/n{size}/metrics.json`` files
    (matched by path); expected runs without an existing file are reported as missing.
    ``config`` is dumped into the summary as the configuration that produced it. ``failed``
    (:func:`causalmixft.experiment.collect.failure_rows`) lists runs and fidelity reports that a
    recorded generator failure rules out; they are reported as missing with the error.
    ``meta_root`` holds the prepared datasets' ``{dataset}.meta.json`` (feature counts for the
    cost's growth fits) and ``projection`` is a target grid (``cost.projection_spec``) to project
    the measured cost to. ``split_metas`` are the split stage's meta.json files, whose test class
    counts the chance test needs (without them: answer.chance_table's fallback).
    """
    absent = [name for name in OUTPUTS if name not in outputs]
    if absent:
        raise ValueError(f"outputs lack {absent}; default_outputs() lists every name")
    study = Study.from_params(
        expected,
        methods_with_real,
        size_dependent,
        dataset_groups=dataset_groups,
        metrics=metrics,
        reference=reference,
        baseline=baseline,
        alpha=alpha,
    )
    runs = load_runs(study.expected, metrics_files, failed)
    fidelity, fidelity_missing = load_fidelity(fidelity_files)
    failed_fidelity = pd.DataFrame([row for row in failed if row[0] == "fidelity"], columns=MISSING_COLUMNS)
    if not failed_fidelity.empty:
        fidelity_missing = pd.concat([fidelity_missing, failed_fidelity], ignore_index=True)
    benchmarks = load_benchmarks(benchmarks_root, benchmark_exclude)
    tables = build_tables(runs, study, fidelity, fidelity_missing, benchmarks)
    local_steps = cost.job_steps(config) if config else None
    n_features = cost.load_feature_counts(meta_root)
    tables.update(cost.cost_tables(benchmarks, n_features, projection, local_steps, tables["runs_long"]))
    tables.update(answer_tables(tables, study, load_test_class_counts(split_metas)))

    for name in TABLES:
        write_csv(outputs[name], tables[name])
    plots.plot_scaling(tables["scaling"], study, outputs["plot_scaling"])
    plots.plot_scaling_improvement(tables["improvement"], study, outputs["plot_scaling_improvement"])
    for split, metric in plots.SCALING_PANELS:
        target = outputs[f"plot_scaling_per_dataset_{split}_{metric}"]
        plots.plot_scaling_per_dataset(tables["scaling_per_dataset"], study, split, metric, target)
    plots.plot_critical_difference(tables["ranks"], tables["rank_tests"], study, outputs["plot_critical_difference"])
    plots.plot_val_vs_test(tables["improvement_per_dataset"], study, outputs["plot_val_vs_test"])
    plots.plot_scaling_fit(tables["scaling_fit"], study, outputs["plot_scaling_fit"])

    # A JSON round trip turns Snakemake's config containers into plain data for the YAML dump.
    plain_config = json.loads(json.dumps(config, default=str)) if config else None
    target = projection.get("name") if projection else None
    text = render_summary(tables, study, outputs, runs.n_expected, plain_config, target)
    with atomic_path(outputs["summary"]) as tmp:
        tmp.write_text(text)
    return tables


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    # Fixed float formatting keeps the files byte-identical across reruns and platforms.
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
