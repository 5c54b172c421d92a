"""Entry point of the aggregate stage: read every run, write the tables, plots and summary.

``aggregate_results`` takes one ``AggregateJob`` of plain data (what the Snakemake rule passes as
inputs and params), so the workflow script stays a one-call wrapper and the stage runs the same
from a notebook. Which files it writes, by name: ``outputs.OUTPUTS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from causalmixft.analysis import effects, plots
from causalmixft.analysis.aggregate import build_tables, cost_table
from causalmixft.analysis.collect import (
    MISSING_COLUMNS,
    Runs,
    load_benchmarks,
    load_fidelity,
    load_runs,
    load_test_class_counts,
)
from causalmixft.analysis.fitted import fitted_tables
from causalmixft.analysis.outputs import OUTPUTS, PLOTS, TABLES
from causalmixft.analysis.study import Study
from causalmixft.analysis.summary import render_summary
from causalmixft.io import atomic_path


@dataclass(frozen=True)
class AggregateJob:
    """What the aggregate stage reads and where it writes.

    ``expected`` lists every (method, dataset, fold, budget, size) the config asks for and
    ``metrics_files`` their ``.../{method}/{dataset}/fold{fold}/real{budget}/n{size}/metrics.json``
    files (matched by path); expected runs without an existing file are reported as missing, and so
    are those ``failed`` lists (:func:`causalmixft.analysis.collect.failure_rows`: runs and fidelity
    reports a recorded generator failure rules out), with the error. ``outputs`` maps every name of
    ``outputs.OUTPUTS`` to its file (``outputs.paths()``). ``config`` is dumped into the summary as
    the configuration that produced it and gives the effects' settings (its ``analysis`` block).
    ``split_metas`` are the split stage's meta.json files, whose test class counts the chance test
    needs (without them: ``fitted.chance_table``'s fallback). The cost table reads the benchmark
    files under ``benchmarks_root`` (only ``benchmark_files`` where given, never ``benchmark_exclude``).
    """

    expected: Sequence[Sequence]
    metrics_files: Sequence[str | Path]
    methods_with_real: Sequence[str]
    size_dependent: Sequence[str]
    outputs: Mapping[str, str | Path]
    config: Mapping | None = None
    dataset_groups: Mapping[str, Sequence[str]] | None = None
    failed: Sequence[Sequence] = ()
    fidelity_files: Sequence[str | Path] = ()
    split_metas: Sequence[str | Path] = ()
    benchmarks_root: str | Path | None = None
    benchmark_exclude: Sequence[str | Path] = ()
    benchmark_files: Sequence[str | Path] | None = None
    reference: str = "zeroshot"
    baseline: str = "finetune"
    metrics: Sequence[str] = ("roc_auc", "accuracy")
    alpha: float = 0.05

    def study(self, budget: int) -> Study:
        """The grid of one real budget, as the per-budget tables see it."""
        return Study.from_params(
            [[m, d, f, n] for m, d, f, b, n in self.grid() if b == budget],
            self.methods_with_real,
            self.size_dependent,
            dataset_groups=self.dataset_groups,
            metrics=self.metrics,
            reference=self.reference,
            baseline=self.baseline,
            alpha=self.alpha,
            min_datasets=effects.Analysis.from_config(self.config).min_datasets,
        )

    def grid(self) -> list[list]:
        return [[str(m), str(d), int(f), int(b), int(n)] for m, d, f, b, n in self.expected]


def aggregate_results(job: AggregateJob) -> dict[str, pd.DataFrame]:
    """Write every output named in ``outputs.OUTPUTS`` to ``job.outputs[name]``; return the tables.

    Every table but the effects, the size choice against chance and the cost is built per real
    budget and carries a ``real_budget`` column; the per-budget figures show the largest budget.
    """
    absent = [output.name for output in OUTPUTS if output.name not in job.outputs]
    if absent:
        raise ValueError(f"outputs lack {absent}; outputs.paths() lists every name")
    expected = job.grid()
    runs = load_runs(expected, job.metrics_files, job.failed)
    fidelity, fidelity_missing = load_fidelity(job.fidelity_files)
    failed_fidelity = pd.DataFrame([row for row in job.failed if row[0] == "fidelity"], columns=MISSING_COLUMNS)
    if not failed_fidelity.empty:
        fidelity_missing = pd.concat([fidelity_missing, failed_fidelity], ignore_index=True)
    class_counts = load_test_class_counts(job.split_metas)
    budgets = sorted({b for _, _, _, b, _ in expected})
    by_budget, studies = {}, {}
    for budget in budgets:
        study = job.study(budget)
        own = Runs(
            [r for r in runs.records if r["real_budget"] == budget],
            runs.missing[runs.missing["real_budget"] == budget].reset_index(drop=True),
            sum(1 for key in expected if key[3] == budget),
        )
        tables = build_tables(
            own,
            study,
            _of_budget(fidelity, budget),
            fidelity_missing[fidelity_missing["real_budget"] == budget].reset_index(drop=True),
        )
        tables.update(fitted_tables(tables, study, class_counts))
        by_budget[budget], studies[budget] = tables, study
    tables = {name: _stack(by_budget, name) for name in by_budget[budgets[-1]]}
    tables["cost"] = cost_table(load_benchmarks(job.benchmarks_root, job.benchmark_exclude, job.benchmark_files))
    analysis = effects.Analysis.from_config(job.config)
    tables["effects"] = effects.effects(tables["runs_long"], analysis, job.baseline, job.dataset_groups)
    candidates = effects.selection_candidates(tables["runs_long"], job.size_dependent, job.baseline)
    tables["size_selection_chance"] = effects.size_selection([candidates], analysis)

    for name in TABLES:
        write_csv(job.outputs[name], tables[name])
    draw_plots(tables, by_budget[budgets[-1]], studies[budgets[-1]], job.outputs)
    # A JSON round trip turns Snakemake's config containers into plain data for the YAML dump.
    config = json.loads(json.dumps(job.config, default=str)) if job.config else None
    text = render_summary(tables, studies[budgets[-1]], analysis, job.outputs, expected, config)
    with atomic_path(job.outputs["summary"]) as tmp:
        tmp.write_text(text)
    return tables


def draw_plots(tables: Mapping[str, pd.DataFrame], shown: Mapping[str, pd.DataFrame], study: Study,
               outputs: Mapping[str, str | Path]) -> None:
    """Every figure of ``outputs.PLOTS``: the effects over all budgets, the others of ``shown`` (one budget)."""
    drawn = {
        "plot_effect_heatmap": lambda path: plots.plot_effect_heatmap(tables["effects"], path),
        "plot_scaling_fit": lambda path: plots.plot_scaling_fit(shown["scaling_fit"], study, path),
        "plot_scaling": lambda path: plots.plot_scaling(shown["scaling"], study, path),
        "plot_scaling_improvement": lambda path: plots.plot_scaling_improvement(shown["improvement"], study, path),
        "plot_critical_difference": lambda path: plots.plot_critical_difference(
            shown["ranks"], shown["rank_tests"], study, path),
        "plot_val_vs_test": lambda path: plots.plot_val_vs_test(shown["improvement_per_dataset"], study, path),
    }
    for split, metric in plots.SCALING_PANELS:
        drawn[f"plot_scaling_per_dataset_{split}_{metric}"] = (
            lambda path, split=split, metric=metric: plots.plot_scaling_per_dataset(
                shown["scaling_per_dataset"], study, split, metric, path))
    assert set(drawn) == set(PLOTS), f"figures without a drawing: {set(PLOTS) ^ set(drawn)}"
    for name in PLOTS:
        drawn[name](outputs[name])


def _of_budget(frame: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The rows of one real budget, without the column (the per-budget tables add it back)."""
    return frame[frame["real_budget"] == budget].drop(columns="real_budget").reset_index(drop=True)


def _stack(by_budget: Mapping[int, Mapping[str, pd.DataFrame]], name: str) -> pd.DataFrame:
    """Table ``name`` of every budget, one below the other, ``real_budget`` first."""
    frames = []
    for budget, tables in by_budget.items():
        frame = tables[name]
        if "real_budget" in frame.columns:
            frame = frame.drop(columns="real_budget")
        frames.append(frame.assign(real_budget=budget)[["real_budget", *frame.columns]])
    return pd.concat(frames, ignore_index=True)


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    # Fixed float formatting keeps the files byte-identical across reruns and platforms.
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
