"""The validation-chosen size: one definition, used by every table and plot that needs it.

For a size-dependent method the candidates are the points of its scaling curve: n = 0 (its
anchor: plain fine-tuning for methods that train on real plus synthetic rows, the zero-shot
model for purely synthetic ones; "no synthetic rows" is a legitimate answer) and every synthetic
size it ran at. The choice is made per (dataset, fold, replicate) from that fold's own
validation rows, and that fold's test score at the chosen size is reported; only then are the
results averaged (replicates -> folds -> datasets). Choosing from validation scores averaged
over folds would look at test data: fold j's validation rows are other folds' test rows.

A candidate needs a finite validation score; a NaN test score never removes one (the unit then
reports NaN test). Ties go to the smallest size, the cheapest of equally good choices. The
test-best size (an oracle no user has) is found the same way on test, only to measure the
regret of trusting validation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalmixft.analysis.study import Study, ordered
from causalmixft.metrics import HIGHER_IS_BETTER

UNIT = ["method", "dataset", "fold", "replicate"]
CHOICE_COLUMNS = [*UNIT, "metric", "n_candidates", "chosen_size", "val_at_chosen", "test_at_chosen",
                  "test_best_size", "test_best", "regret", "agree"]


def curve_points(replicate_scores: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Replicate-level scores along every size-dependent method's curve, n = 0 from its anchor.

    Columns: method, source, dataset, fold, replicate, size, split, metric, value; ``source``
    names the method whose run gives the point.
    """
    parts = []
    for method in study.curve_methods:
        own = replicate_scores[(replicate_scores["method"] == method) & (replicate_scores["size"] > 0)]
        anchor = replicate_scores[replicate_scores["method"] == study.anchor(method)]
        parts.append(own.assign(source=method))
        parts.append(anchor.assign(method=method, source=study.anchor(method), size=0))
    if not parts:
        return replicate_scores.iloc[:0].assign(source=pd.Series(dtype=str))
    return pd.concat(parts, ignore_index=True)


def _best(frame: pd.DataFrame, column: str, metric: str) -> pd.DataFrame:
    """Per unit, the row with the best finite ``column`` (ties: the smallest size)."""
    usable = frame[np.isfinite(frame[column].to_numpy(float))]
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    usable = usable.assign(_key=sign * usable[column]).sort_values([*UNIT, "_key", "size"], kind="mergesort")
    return usable.groupby(UNIT, sort=True).head(1).drop(columns="_key").set_index(UNIT)


def size_choices(replicate_scores: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per size-dependent method x dataset x fold x replicate x metric: the validation-chosen size,
    its validation and test scores, the test-best size and score, the regret and whether both agree."""
    points = curve_points(replicate_scores, study)
    rows = []
    for metric in study.metrics:
        wide = points[points["metric"] == metric].pivot_table(
            index=[*UNIT, "size"], columns="split", values="value", aggfunc="first", dropna=False
        )
        wide = wide.reindex(columns=["val", "test"]).reset_index()
        if wide.empty:
            continue
        by_val, by_test = _best(wide, "val", metric), _best(wide, "test", metric)
        counts = wide[np.isfinite(wide["val"].to_numpy(float))].groupby(UNIT).size()
        higher = HIGHER_IS_BETTER[metric]
        for unit, chosen in by_val.iterrows():
            best = by_test.loc[unit] if unit in by_test.index else None
            test_best = np.nan if best is None else float(best["test"])
            regret = (test_best - chosen["test"]) if higher else (chosen["test"] - test_best)
            rows.append({
                **dict(zip(UNIT, unit)),
                "metric": metric,
                "n_candidates": int(counts.loc[unit]),
                "chosen_size": int(chosen["size"]),
                "val_at_chosen": float(chosen["val"]),
                "test_at_chosen": float(chosen["test"]),
                "test_best_size": np.nan if best is None else int(best["size"]),
                "test_best": test_best,
                "regret": regret,
                "agree": best is not None and int(best["size"]) == int(chosen["size"]),
            })
    return ordered(pd.DataFrame(rows, columns=CHOICE_COLUMNS), study)


def size_counts(sizes: pd.Series) -> str:
    """``"0 (3), 64 (5)"``: how often each size was chosen."""
    counts = sizes.dropna().astype(int).value_counts().sort_index()
    return ", ".join(f"{size} ({n})" for size, n in counts.items())


def choices_per_dataset(choices: pd.DataFrame) -> pd.DataFrame:
    """Replicate means, then fold means, per method x dataset x metric, with how often each size won."""
    keys = ["method", "dataset", "metric"]
    values = ["val_at_chosen", "test_at_chosen", "test_best", "regret"]
    if choices.empty:
        return pd.DataFrame(columns=[*keys, "n_folds", "n_units", *values, "agree_share", "chosen_sizes",
                                     "test_best_sizes"])
    frame = choices.assign(agree=choices["agree"].astype(float))
    per_fold = frame.groupby([*keys, "fold"], sort=True)[[*values, "agree"]].mean()
    means = per_fold.groupby(keys, sort=True).mean().rename(columns={"agree": "agree_share"})
    grouped = frame.groupby(keys, sort=True)
    means["n_folds"] = per_fold.groupby(keys).size()
    means["n_units"] = grouped.size()
    means["chosen_sizes"] = grouped["chosen_size"].agg(size_counts)
    means["test_best_sizes"] = grouped["test_best_size"].agg(size_counts)
    return means.reset_index()[[*keys, "n_folds", "n_units", *values, "agree_share", "chosen_sizes",
                                "test_best_sizes"]]
