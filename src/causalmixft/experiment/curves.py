"""Curve diagnostics per run: validation-test correlation gap and early-stopping regret.

Both read the whole evaluation curve of a run, not only its selected step: the gap asks whether
validation ranks the steps as test does, the regret what trusting validation cost on test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.experiment import stats
from causalmixft.experiment.study import ALL, Study, finite_max, finite_mean, ordered, quantile
from causalmixft.metrics import HIGHER_IS_BETTER

RUN_COLUMNS = (
    "method dataset fold size metric n_points spearman gap gap_note selected_step test_selected best_step test_best regret"
).split()
SUMMARY_COLUMNS = (
    "group metric method size n_runs n_gap_defined n_gap_undefined gap_median gap_q25 gap_q75 "
    "regret_median regret_mean regret_max n_regret_positive"
).split()


def gap_regret_runs(records: list[dict], study: Study) -> pd.DataFrame:
    """Per run x metric: 1 - Spearman(val curve, test curve) and best test - test at the selected step."""
    rows = []
    for record in records:
        curve = record["curve"]
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
            selected = _number(record["selected"]["test"].get(metric))
            finite = np.flatnonzero(np.isfinite(test))
            if len(finite):
                best_index = finite[np.argmax(test[finite]) if higher else np.argmin(test[finite])]
                best, best_step = test[best_index], steps[best_index]
            else:
                best, best_step = np.nan, None
            row = {key: record[key] for key in ("method", "dataset", "fold", "size")}
            row |= {"metric": metric, "n_points": n_points, "spearman": rho, "gap": 1.0 - rho, "gap_note": note}
            row |= {"selected_step": record["selected"].get("step", record.get("selected_step"))}
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
    """Medians over runs per group x metric x method, pooled over sizes (size "all") and per size."""
    rows = []
    for group, datasets in study.groups.items():
        members = per_run[per_run["dataset"].isin(datasets)]
        for metric in study.metrics:
            for method in study.methods:
                runs = members[(members["metric"] == metric) & (members["method"] == method)]
                sizes = sorted(runs["size"].unique().tolist())
                # A method with one size (zeroshot, finetune) needs no per-size breakdown.
                for size in [ALL] + (sizes if len(sizes) > 1 else []):
                    cell = runs if size == ALL else runs[runs["size"] == size]
                    if cell.empty:
                        continue
                    gap, regret = cell["gap"].to_numpy(float), cell["regret"].to_numpy(float)
                    row = {"group": group, "metric": metric, "method": method, "size": size, "n_runs": len(cell)}
                    row |= {
                        "n_gap_defined": int(np.isfinite(gap).sum()),
                        "n_gap_undefined": int((~np.isfinite(gap)).sum()),
                    }
                    row |= {"gap_median": quantile(gap, 50), "gap_q25": quantile(gap, 25), "gap_q75": quantile(gap, 75)}
                    row |= {"regret_median": quantile(regret, 50), "regret_mean": finite_mean(regret)}
                    row |= {"regret_max": finite_max(regret), "n_regret_positive": int((regret > 0).sum())}
                    rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
