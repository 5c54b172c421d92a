"""Entry point of the aggregate stage: read every run, write the tables, plots and summary.

``aggregate_results`` takes plain data only (what a Snakemake rule passes as params), so the
workflow script stays a one-call wrapper and the stage runs the same from a notebook.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from causalmixft.analysis import cost, effects, plots
from causalmixft.analysis.aggregate import build_tables
from causalmixft.analysis.answer import answer_tables
from causalmixft.analysis.collect import (
    MISSING_COLUMNS,
    Runs,
    load_benchmarks,
    load_fidelity,
    load_runs,
    load_test_class_counts,
)
from causalmixft.analysis.study import Study
from causalmixft.analysis.summary import render_summary
from causalmixft.io import atomic_path

# The tables of the summary's Answer section (answer.py), computed from the others.
# The v3 answer (effects.py): paired gains with intervals, MDE and TOST; size selection vs chance.
EFFECT_TABLES = ("effects", "size_selection_chance")
ANSWER_TABLES = (*EFFECT_TABLES, "scaling_fit", "scaling_peak", "size_selection", "val_test_by_size", "chance", "dag_controls", "claims")
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
    "plot_effect_heatmap",
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
    benchmark_files: Iterable[str | Path] | None = None,
    config: Mapping | None = None,
    alpha: float = 0.05,
    failed: Iterable[Iterable] = (),
    meta_root: str | Path | None = None,
    projection: Mapping | None = None,
    split_metas: Iterable[str | Path] = (),
) -> dict[str, pd.DataFrame]:
    """Write every output named in ``OUTPUTS`` to ``outputs[name]``; return the tables.

    ``expected`` lists every (method, dataset, fold, budget, size) the config asks for and
    ``metrics_files`` their ``.../{method}/{dataset}/fold{fold}/real{budget}/n{size}/metrics.json``
    files (matched by path); expected runs without an existing file are reported as missing.
    Every table but the effects and the cost is built per real budget and carries a
    ``real_budget`` column; the per-budget figures show the largest budget.
    ``config`` is dumped into the summary as the configuration that produced it. ``failed``
    (:func:`causalmixft.analysis.collect.failure_rows`) lists runs and fidelity reports that a
    recorded generator failure rules out; they are reported as missing with the error.
    ``meta_root`` holds the prepared datasets' ``{dataset}.meta.json`` (feature counts for the
    cost's growth fits) and ``projection`` is a target grid (``cost.projection_spec``) to project
    the measured cost to. ``split_metas`` are the split stage's meta.json files, whose test class
    counts the chance test needs (without them: answer.chance_table's fallback).
    """
    absent = [name for name in OUTPUTS if name not in outputs]
    if absent:
        raise ValueError(f"outputs lack {absent}; default_outputs() lists every name")
    expected = [[str(m), str(d), int(f), int(b), int(n)] for m, d, f, b, n in expected]
    runs = load_runs(expected, metrics_files, failed)
    fidelity, fidelity_missing = load_fidelity(fidelity_files)
    failed_fidelity = pd.DataFrame([row for row in failed if row[0] == "fidelity"], columns=MISSING_COLUMNS)
    if not failed_fidelity.empty:
        fidelity_missing = pd.concat([fidelity_missing, failed_fidelity], ignore_index=True)
    benchmarks = load_benchmarks(benchmarks_root, benchmark_exclude, benchmark_files)
    class_counts = load_test_class_counts(split_metas)
    budgets = sorted({b for _, _, _, b, _ in expected})
    by_budget, studies = {}, {}
    for budget in budgets:
        study = Study.from_params(
            [[m, d, f, n] for m, d, f, b, n in expected if b == budget],
            methods_with_real,
            size_dependent,
            dataset_groups=dataset_groups,
            metrics=metrics,
            reference=reference,
            baseline=baseline,
            alpha=alpha,
        )
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
            benchmarks,
        )
        tables.update(answer_tables(tables, study, class_counts))
        by_budget[budget], studies[budget] = tables, study
    tables = {name: _stack(by_budget, name) for name in by_budget[budgets[-1]]}
    local_steps = cost.job_steps(config) if config else None
    n_features = cost.load_feature_counts(meta_root)
    costs = cost.cost_tables(benchmarks, n_features, projection, local_steps, tables["runs_long"])
    tables.update(costs)
    analysis = effects.Analysis.from_config(config)
    tables["effects"] = effects.effects(tables["runs_long"], analysis, baseline)
    candidates = effects.selection_candidates(tables["runs_long"], size_dependent, baseline)
    tables["size_selection_chance"] = effects.size_selection([candidates], analysis)

    for name in TABLES:
        write_csv(outputs[name], tables[name])
    shown, study = by_budget[budgets[-1]], studies[budgets[-1]]
    plots.plot_scaling(shown["scaling"], study, outputs["plot_scaling"])
    plots.plot_scaling_improvement(shown["improvement"], study, outputs["plot_scaling_improvement"])
    for split, metric in plots.SCALING_PANELS:
        target = outputs[f"plot_scaling_per_dataset_{split}_{metric}"]
        plots.plot_scaling_per_dataset(shown["scaling_per_dataset"], study, split, metric, target)
    plots.plot_critical_difference(shown["ranks"], shown["rank_tests"], study, outputs["plot_critical_difference"])
    plots.plot_val_vs_test(shown["improvement_per_dataset"], study, outputs["plot_val_vs_test"])
    plots.plot_scaling_fit(shown["scaling_fit"], study, outputs["plot_scaling_fit"])
    plots.plot_effect_heatmap(tables["effects"], outputs["plot_effect_heatmap"])

    # A JSON round trip turns Snakemake's config containers into plain data for the YAML dump.
    plain_config = json.loads(json.dumps(config, default=str)) if config else None
    target = projection.get("name") if projection else None
    parts = [effects_summary(tables["effects"], tables["size_selection_chance"], analysis, outputs)]
    for budget in budgets:
        body = render_summary({**by_budget[budget], **costs}, studies[budget], outputs, sum(1 for key in expected if key[3] == budget), plain_config if budget == budgets[-1] else None, target)
        parts.append(f"# Appendix: real budget {budget} rows\n\n" + body)
    with atomic_path(outputs["summary"]) as tmp:
        tmp.write_text("\n\n".join(parts))
    return tables


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


def effects_summary(table: pd.DataFrame, selection: pd.DataFrame, analysis, outputs: Mapping[str, str | Path]) -> str:
    """The summary's first section: the paired effects on test rows and the size choice vs chance."""
    here = Path(outputs["summary"]).parent
    lines = [
        "# Answer: paired gains over plain fine-tuning",
        "",
        f"Per real budget, method and synthetic size: the mean over datasets of the paired difference "
        f"to `finetune` (replicates -> folds -> datasets), its {1 - analysis.alpha:.0%} t interval, "
        f"Holm over each named family (split x metric), the minimum detectable effect (MDE) at "
        f"{analysis.power:.0%} power from the observed SD, and TOST against the margin "
        f"+-{analysis.equivalence_margin:g} fixed in the config. Fewer than {analysis.min_datasets} "
        f"datasets: '{effects.TOO_FEW}'.",
        "",
        f"![gain heat map]({_link(outputs['plot_effect_heatmap'], here)})",
        "",
        f"Every cell, on validation and test, ROC-AUC and accuracy: [effects.csv]({_link(outputs['effects'], here)}).",
        "",
        "| budget | method | n | n/real | metric | datasets | gain [CI] | Holm p | MDE | TOST p | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    headline = ("roc_auc", "accuracy")  # the others stay in effects.csv
    test = table[(table["split"] == "test") & table["metric"].isin(headline)]
    for row in test.itertuples():
        interval = "" if pd.isna(row.ci_low) else f" [{row.ci_low:+.4f}, {row.ci_high:+.4f}]"
        cells = [
            row.real_budget, row.method, row.size, f"{row.size_ratio:.2g}", row.metric, row.n_datasets,
            f"{row.mean_diff:+.4f}{interval}", _fmt(row.p_holm, ".3f"), _fmt(row.mde, ".4f"), _fmt(row.tost_p, ".3f"),
            row.verdict,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "## Validation-chosen size against chance",
        "",
        "Agreement: the size validation picks is a test-best one; regret: best test score minus the test "
        "score at the chosen size. References: a size drawn at random from the same candidates, and "
        f"always n = 0 (plain fine-tuning). Table: [size_selection_chance.csv]({_link(outputs['size_selection_chance'], here)}).",
        "",
        "| budget | method | metric | datasets | agree [CI] | random | regret [CI] | random | always n=0 | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in selection[selection["metric"].isin(headline)].itertuples():
        agree = f"{row.agree:.2f}" + ("" if pd.isna(row.agree_ci_low) else f" [{row.agree_ci_low:.2f}, {row.agree_ci_high:.2f}]")
        regret = f"{row.regret:.4f}" + ("" if pd.isna(row.regret_ci_low) else f" [{row.regret_ci_low:.4f}, {row.regret_ci_high:.4f}]")
        cells = [row.real_budget, row.method, row.metric, row.n_datasets, agree, f"{row.agree_random:.2f}", regret,
                 f"{row.regret_random:.4f}", _fmt(row.regret_zero, ".4f"), row.note]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _link(path: str | Path, here: Path) -> str:
    return Path(os.path.relpath(path, here)).as_posix()


def _fmt(value, spec: str) -> str:
    return "" if value is None or pd.isna(value) else format(float(value), spec)


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    # Fixed float formatting keeps the files byte-identical across reruns and platforms.
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
