"""Curve diagnostics per run: validation-test correlation gap and early-stopping regret.

Both read the whole evaluation curve of a fine-tuning replicate, not only its selected step: the
gap asks whether validation ranks the steps as test does, the regret what trusting validation
cost on test. Summaries go replicates -> folds -> datasets, then median and quartiles across
datasets, so a dataset with more runs does not weigh more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.analysis import stats
from causalmixft.analysis.collect import replicates_of
from causalmixft.analysis.study import ALL, Study, finite_max, ordered, quantile
from causalmixft.metrics import HIGHER_IS_BETTER

RUN_COLUMNS = (
    "method dataset fold size replicate metric n_points spearman gap gap_note selected_step test_selected best_step "
    "test_best regret"
).split()
SUMMARY_COLUMNS = (
    "group metric method size n_datasets n_runs n_gap_defined n_gap_undefined gap_median gap_q25 gap_q75 "
    "regret_median regret_q25 regret_q75 regret_max n_regret_positive"
).split()


def gap_regret_runs(records: list[dict], study: Study) -> pd.DataFrame:
    """Per run x replicate x metric: 1 - Spearman(val curve, test curve) and best test - test at
    the selected step."""
    rows = []
    for record, replicate in replicates_of(records):
        curve = replicate["curve"]
        steps = [point["step"] for point in curve]
        for metric in study.metrics:
            val = np.array([_score(point, "val", metric) for point in curve])
            test = np.array([_score(point, "test", metric) for point in curve])
            n_points = int((np.isfinite(val) & np.isfinite(test)).sum())
            rho = stats.spearman_or_nan(val, test)
            if np.isfinite(rho):
                note = ""
            elif n_points < 3:
                note = f"{n_points} evaluation point(s) with both scores, 3 needed"
            else:
                note = "constant validation or test curve"
            higher = HIGHER_IS_BETTER[metric]
            selected = _number(replicate["selected"]["test"].get(metric))
            finite = np.flatnonzero(np.isfinite(test))
            if len(finite):
                best_index = finite[np.argmax(test[finite]) if higher else np.argmin(test[finite])]
                best, best_step = test[best_index], steps[best_index]
            else:
                best, best_step = np.nan, None
            row = {key: record[key] for key in ("method", "dataset", "fold", "size")}
            row |= {"replicate": replicate.get("replicate", 0), "metric": metric, "n_points": n_points, "spearman": rho, "gap": 1.0 - rho, "gap_note": note}
            row |= {"selected_step": replicate["selected"].get("step", replicate.get("selected_step"))}
            row |= {"test_selected": selected, "best_step": best_step, "test_best": best}
            row["regret"] = (best - selected) if higher else (selected - best)
            rows.append(row)
    return ordered(pd.DataFrame(rows, columns=RUN_COLUMNS), study)


def _score(point: dict, split: str, metric: str) -> float:
    return _number((point.get(split) or {}).get(metric))


def _number(value) -> float:
    """JSON null (a metric that could not be computed) becomes NaN."""
    return float("nan") if value is None else float(value)


def gap_regret_summary(per_run: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per group x metric x method, pooled over sizes (size "all") and per size: gap and regret
    averaged over replicates, then folds (and sizes, for "all") per dataset, then median and
    quartiles across datasets. Run counts say how many curves each cell rests on."""
    rows = []
    for group, datasets in study.groups.items():
        members = per_run[per_run["dataset"].isin(datasets)]
        for metric in study.metrics:
            for method in study.methods:
                runs = members[(members["metric"] == metric) & (members["method"] == method)]
                for size, cell in _size_cells(runs):
                    gap = _dataset_means(cell, "gap")
                    regret = _dataset_means(cell, "regret")
                    row = {"group": group, "metric": metric, "method": method, "size": size,
                           "n_datasets": int(np.isfinite(gap).sum()), "n_runs": len(cell)}
                    defined = np.isfinite(cell["gap"].to_numpy(float))
                    row |= {"n_gap_defined": int(defined.sum()), "n_gap_undefined": int((~defined).sum())}
                    row |= {"gap_median": quantile(gap, 50), "gap_q25": quantile(gap, 25), "gap_q75": quantile(gap, 75)}
                    row |= {"regret_median": quantile(regret, 50), "regret_q25": quantile(regret, 25),
                            "regret_q75": quantile(regret, 75), "regret_max": finite_max(regret)}
                    row["n_regret_positive"] = int((cell["regret"].to_numpy(float) > 0).sum())
                    rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _size_cells(runs: pd.DataFrame):
    """(size, rows): every size pooled ("all"), then each size; a method with one size (zeroshot,
    finetune) needs no per-size breakdown. Empty cells are skipped."""
    sizes = sorted(runs["size"].unique().tolist())
    for size in [ALL] + (sizes if len(sizes) > 1 else []):
        cell = runs if size == ALL else runs[runs["size"] == size]
        if not cell.empty:
            yield size, cell


def _dataset_means(cell: pd.DataFrame, column: str) -> np.ndarray:
    """Per dataset: mean over replicates within each (fold, size), then over folds and sizes."""
    per_fold = cell.groupby(["dataset", "size", "fold"], sort=True)[column].mean()
    return per_fold.groupby(level="dataset").mean().to_numpy(float)


STOP_COLUMNS = (
    "group method size n_datasets n_replicates step0_share step0_chance selected_step_median evaluations_median"
).split()


def early_stopping_runs(records: list[dict]) -> pd.DataFrame:
    """Per run x replicate of a method that trains: the validation-selected step and how many
    evaluation points its curve had (a run without a curve, zero-shot, has one point and is left out)."""
    rows = []
    for record, replicate in replicates_of(records):
        n_evaluations = len(replicate.get("curve") or [])
        if n_evaluations <= 1:
            continue
        row = {key: record[key] for key in ("method", "dataset", "fold", "size")}
        row |= {"replicate": replicate.get("replicate", 0), "n_evaluations": n_evaluations,
                "selected_step": replicate["selected"].get("step", replicate.get("selected_step"))}
        rows.append(row)
    return pd.DataFrame(rows, columns="method dataset fold size replicate n_evaluations selected_step".split())


def early_stopping_summary(records: list[dict], study: Study) -> pd.DataFrame:
    """Per group x method, pooled over sizes (size "all") and per size: the share of replicates whose
    validation-selected step is 0 (the starting weights kept: fine-tuning changed nothing), averaged
    replicates -> folds (-> sizes) -> datasets, beside its chance reference, the same average of
    1 / the curve's evaluation points (the share a step drawn at random among them would give)."""
    runs = early_stopping_runs(records)
    runs = runs.assign(step0=(runs["selected_step"] == 0).astype(float), chance=1.0 / runs["n_evaluations"])
    rows = []
    for group, datasets in study.groups.items():
        members = runs[runs["dataset"].isin(datasets)]
        for method in study.methods:
            for size, cell in _size_cells(members[members["method"] == method]):
                rows.append({
                    "group": group, "method": method, "size": size, "n_datasets": cell["dataset"].nunique(),
                    "n_replicates": len(cell), "step0_share": _dataset_means(cell, "step0").mean(),
                    "step0_chance": _dataset_means(cell, "chance").mean(),
                    "selected_step_median": float(cell["selected_step"].median()),
                    "evaluations_median": float(cell["n_evaluations"].median()),
                })
    return pd.DataFrame(rows, columns=STOP_COLUMNS)
