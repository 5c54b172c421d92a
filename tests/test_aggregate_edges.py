"""Aggregation on the inputs the study meets and balanced fixtures hide: negative and zero
correlations, replicates and folds of unequal number, NaN scores and single-class folds, losses.

Each expected value is worked out by hand in the comment above it; none calls the function under
test. bench/mutants.py lists the one-line mistakes these tests are meant to catch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causalmixft.analysis import stats
from causalmixft.analysis.aggregate import build_tables, replicate_spread
from causalmixft.analysis.collect import MISSING_COLUMNS, Runs
from causalmixft.analysis.curves import RUN_COLUMNS, early_stopping_summary, gap_regret_runs, gap_regret_summary
from causalmixft.analysis.selection import choices_per_dataset, size_choices
from causalmixft.analysis.study import Study, dataset_means, fold_scores, spread

WITH_REAL = ("finetune", "causalmixft")
SIZE_DEPENDENT = ("causalmixft",)


def study(expected, metrics=("roc_auc",)) -> Study:
    return Study.from_params(expected, WITH_REAL, SIZE_DEPENDENT, metrics=metrics)


def replicate(number: int, curve: list[tuple[dict, dict]], selected: int | None = None) -> dict:
    """A replicate whose curve has one point per (val, test) pair, evaluated every 10 steps;
    ``selected`` indexes the validation-selected point (default: the last)."""
    index = len(curve) - 1 if selected is None else selected
    points = [{"step": 10 * i, "val": val, "test": test} for i, (val, test) in enumerate(curve)]
    return {"replicate": number, "seed": number, "steps_run": points[-1]["step"], "selected_step": points[index]["step"],
            "stop_reason": "step_cap", "real_share": 0.5, "curve": points,
            "selected": {"step": points[index]["step"], "val": points[index]["val"], "test": points[index]["test"]}}


def record(method: str, dataset: str, fold: int, size: int, replicates: list[dict]) -> dict:
    return {"backbone": "tfm-small", "method": method, "dataset": dataset, "fold": fold, "real_budget": 256,
            "size": size, "n_real_rows": 0 if method == "zeroshot" else 204, "n_synthetic_rows": size,
            "device": "cpu", "wall_time_s": 1.0, "replicates": replicates}


def point(**scores) -> tuple[dict, dict]:
    """A one-point curve with the same scores on validation and test."""
    return (scores, scores)


def tables_of(records: list[dict], metrics=("roc_auc",)) -> dict[str, pd.DataFrame]:
    expected = [(r["method"], r["dataset"], r["fold"], r["size"]) for r in records]
    runs = Runs(records, pd.DataFrame(columns=MISSING_COLUMNS), len(records))
    return build_tables(runs, study(expected, metrics))


def only(frame: pd.DataFrame, **where) -> pd.Series:
    rows = frame
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, f"{len(rows)} rows match {where}"
    return rows.iloc[0]


# --- validation-test gap: the sign of the correlation matters ------------------------------


@pytest.mark.parametrize(
    "test, rho",
    [
        # val ranks (1 2 3 4) throughout.
        ((0.8, 0.7, 0.6, 0.5), -1.0),  # test ranks (4 3 2 1): perfectly reversed
        # test ranks (4 1 3 2): d = (-3 1 0 2), sum d^2 = 14, rho = 1 - 6*14 / (4*15) = -0.4
        ((0.8, 0.5, 0.7, 0.6), -0.4),
        # test ranks (1.5 3.5 3.5 1.5); centred val ranks (-1.5 -.5 .5 1.5) . (-1 1 1 -1) = 0 -> rho 0
        ((0.7, 0.8, 0.8, 0.7), 0.0),
    ],
)
def test_the_gap_is_one_minus_rho_for_negative_and_zero_correlations(test, rho):
    curve = [({"roc_auc": v}, {"roc_auc": t}) for v, t in zip((0.6, 0.7, 0.8, 0.9), test)]
    runs = [record("finetune", "A", 0, 0, [replicate(0, curve)])]
    (row,) = gap_regret_runs(runs, study([("finetune", "A", 0, 0), ("zeroshot", "A", 0, 0)])).to_dict("records")
    assert row["spearman"] == pytest.approx(rho, abs=1e-12)
    assert row["gap"] == pytest.approx(1.0 - rho, abs=1e-12)  # 2.0, 1.4, 1.0: a gap above 1 is anti-correlation
    assert row["gap_note"] == "" and row["n_points"] == 4


def test_gap_summary_averages_replicates_within_a_fold_before_folds():
    # Dataset A, size 64: fold 0 has three replicates with gaps 0.0, 0.0, 0.6 (fold mean 0.2),
    # fold 1 one replicate with gap 1.0 -> dataset 0.6 (a flat mean over the 4 runs: 0.4).
    # Regrets 0.3, 0.0, 0.0 (fold mean 0.1) and 0.5 -> 0.3 (flat: 0.2).
    # Size 128 adds fold 0 only: gap 1.2, regret 0.1. Pooled over sizes ("all"): mean over the
    # (size, fold) cells (0.2, 1.0, 1.2) = 0.8, regret (0.1, 0.5, 0.1) = 0.7 / 3.
    cells = [(64, 0, 0, 0.0, 0.3), (64, 0, 1, 0.0, 0.0), (64, 0, 2, 0.6, 0.0), (64, 1, 0, 1.0, 0.5),
             (128, 0, 0, 1.2, 0.1)]
    rows = [{"method": "causalmixft", "dataset": "A", "fold": fold, "size": size, "replicate": rep,
             "metric": "roc_auc", "n_points": 4, "spearman": 1 - gap, "gap": gap, "gap_note": "",
             "selected_step": 30, "test_selected": 0.7, "best_step": 30, "test_best": 0.7 + regret,
             "regret": regret} for size, fold, rep, gap, regret in cells]
    per_run = pd.DataFrame(rows, columns=RUN_COLUMNS)
    expected = [("zeroshot", "A", f, 0) for f in (0, 1)] + [("finetune", "A", f, 0) for f in (0, 1)]
    expected += [("causalmixft", "A", f, s) for f in (0, 1) for s in (64, 128)]
    summary = gap_regret_summary(per_run, study(expected))
    at_64 = only(summary, method="causalmixft", size=64)
    assert at_64["gap_median"] == pytest.approx(0.6)
    assert at_64["regret_median"] == pytest.approx(0.3)
    assert (at_64["n_runs"], at_64["n_regret_positive"]) == (4, 2)
    pooled = only(summary, method="causalmixft", size="all")
    assert pooled["gap_median"] == pytest.approx(0.8)
    assert pooled["regret_median"] == pytest.approx(0.7 / 3)


def test_gap_counts_finite_pairs_only_and_a_loss_curve_takes_its_lowest_test_point():
    # log-loss: val (.6 NaN .4 .3 .2), test (.5 .1 .45 .4 .3): the NaN point leaves 4 pairs,
    # val ranks (4 3 2 1) vs test ranks (4 3 2 1) -> rho 1, gap 0. Selected: the last point
    # (test .3); the best test point is step 10 (.1), so the regret is .3 - .1 = .2.
    val = [0.6, None, 0.4, 0.3, 0.2]
    test = [0.5, 0.1, 0.45, 0.4, 0.3]
    curve = [({"log_loss": v}, {"log_loss": t}) for v, t in zip(val, test)]
    runs = [record("finetune", "A", 0, 0, [replicate(0, curve)])]
    row = only(gap_regret_runs(runs, study([("finetune", "A", 0, 0), ("zeroshot", "A", 0, 0)], ("log_loss",))),
               metric="log_loss")
    assert (row["n_points"], row["best_step"], row["selected_step"]) == (4, 10, 40)
    assert row["gap"] == pytest.approx(0.0, abs=1e-12)
    assert row["regret"] == pytest.approx(0.2)


def test_early_stopping_share_at_step_0_is_averaged_replicates_folds_datasets_beside_its_chance():
    # finetune on A: fold 0 has replicates selecting steps 0, 0, 20 of 4-point curves (share 2/3),
    # fold 1 one replicate at step 0 of a 2-point curve (share 1) -> A: (2/3 + 1) / 2 = 5/6;
    # chance 1/4 (fold 0) and 1/2 (fold 1) -> 3/8. On B one replicate at step 10 of 5 points ->
    # share 0, chance 1/5. Over datasets: 5/12 and (3/8 + 1/5) / 2 = 23/80; a flat mean over the
    # 5 replicates would give 3/5. Zero-shot (a one-point curve) is left out; median selected
    # step of (0 0 20 0 10) is 0; median evaluations of (4 4 4 2 5) is 4.
    four, two, five = ([point(roc_auc=0.5)] * n for n in (4, 2, 5))
    records = [
        record("finetune", "A", 0, 0, [replicate(0, four, 0), replicate(1, four, 0), replicate(2, four, 2)]),
        record("finetune", "A", 1, 0, [replicate(0, two, 0)]),
        record("finetune", "B", 0, 0, [replicate(0, five, 1)]),
        record("zeroshot", "A", 0, 0, [replicate(0, [point(roc_auc=0.5)], 0)]),
    ]
    expected = [(r["method"], r["dataset"], r["fold"], r["size"]) for r in records]
    summary = early_stopping_summary(records, study(expected))
    assert set(summary["method"]) == {"finetune"}
    row = only(summary, method="finetune", size="all")
    assert row["step0_share"] == pytest.approx(5 / 12)
    assert row["step0_chance"] == pytest.approx(23 / 80)
    assert (row["n_datasets"], row["n_replicates"]) == (2, 5)
    assert (row["selected_step_median"], row["evaluations_median"]) == (0.0, 4.0)


# --- size selection with unequal replicates per fold ---------------------------------------

# (fold, replicate): (finetune val, test), (causalmixft n=64 val, test)
UNEQUAL = {
    (0, 0): ((0.70, 0.60), (0.80, 0.90)),  # val picks 64 -> test .90; test best 64; regret 0
    (0, 1): ((0.80, 0.70), (0.75, 0.80)),  # val picks 0 -> test .70; test best 64 (.80); regret .10
    (1, 0): ((0.70, 0.50), (0.90, 0.60)),  # val picks 64 -> test .60; test best 64; regret 0
}


def replicate_frame(cells: dict) -> pd.DataFrame:
    rows = []
    for (fold, rep), points in cells.items():
        for (method, size), (val, test) in zip((("finetune", 0), ("causalmixft", 64)), points):
            for split, value in (("val", val), ("test", test)):
                rows.append({"method": method, "dataset": "A", "fold": fold, "size": size, "replicate": rep,
                             "split": split, "metric": "roc_auc", "value": value})
    return pd.DataFrame(rows)


def grid(folds=(0, 1)) -> list[tuple]:
    return [(m, "A", f, s) for f in folds for m, s in (("zeroshot", 0), ("finetune", 0), ("causalmixft", 64))]


def test_the_chosen_size_is_averaged_over_replicates_then_folds():
    choices = size_choices(replicate_frame(UNEQUAL), study(grid()))
    assert choices["chosen_size"].tolist() == [64, 0, 64] and choices["agree"].tolist() == [True, False, True]
    (row,) = choices_per_dataset(choices).to_dict("records")
    # test at the chosen size: fold 0 (.90 + .70) / 2 = .80, fold 1 .60 -> .70 (flat: 2.2 / 3 = .733)
    assert row["test_at_chosen"] == pytest.approx(0.70)
    # validation at the chosen size: fold 0 (.80 + .80) / 2 = .80, fold 1 .90 -> .85 (flat .833)
    assert row["val_at_chosen"] == pytest.approx(0.85)
    # regret: fold 0 (0 + .10) / 2 = .05, fold 1 0 -> .025 (flat .0333); agreement (.5 + 1) / 2 = .75 (flat 2/3)
    assert row["regret"] == pytest.approx(0.025)
    assert row["agree_share"] == pytest.approx(0.75)
    assert (row["n_folds"], row["n_units"]) == (2, 3)
    assert (row["chosen_sizes"], row["test_best_sizes"]) == ("0 (1), 64 (2)", "64 (3)")


def test_a_size_without_a_validation_score_is_no_candidate_and_a_tie_goes_to_the_smaller_size():
    cells = {
        (0, 0): ((0.70, 0.60), (np.nan, 0.95)),  # n=64 has no validation score: only n=0 competes
        (1, 0): ((0.80, 0.60), (0.80, 0.70)),  # validation tie: n=0 wins, test best is n=64
        (2, 0): ((0.60, 0.55), (0.90, np.nan)),  # NaN test stays a candidate; the unit reports NaN test
    }
    choices = size_choices(replicate_frame(cells), study(grid((0, 1, 2)))).set_index("fold")
    assert choices["n_candidates"].tolist() == [1, 2, 2]
    assert choices["chosen_size"].tolist() == [0, 0, 64]
    assert choices.loc[0, "test_at_chosen"] == pytest.approx(0.60)
    assert choices.loc[1, "test_best_size"] == 64 and choices.loc[1, "regret"] == pytest.approx(0.10)
    assert math.isnan(choices.loc[2, "test_at_chosen"])


# --- fold scores, dataset means and the seed spread ----------------------------------------


def long_rows(values: dict) -> pd.DataFrame:
    """runs_long-like rows of finetune on dataset A: {(fold, replicate): test ROC-AUC}."""
    return pd.DataFrame([{"method": "finetune", "dataset": "A", "fold": f, "size": 0, "replicate": r,
                          "split": "test", "metric": "roc_auc", "value": v} for (f, r), v in values.items()])


def test_a_fold_is_the_mean_of_its_replicates_and_a_dataset_the_mean_of_its_finite_folds():
    # fold 0: (.6 + .8) / 2 = .7; fold 1: .5; fold 2: (.9 + .9 + 1.0) / 3 = .9333; fold 3 single-class
    # test rows, ROC-AUC undefined (NaN). Dataset: (.7 + .5 + .9333) / 3 = .7111 over 3 finite folds
    # (the median of the folds would be .7).
    values = {(0, 0): 0.6, (0, 1): 0.8, (1, 0): 0.5, (2, 0): 0.9, (2, 1): 0.9, (2, 2): 1.0, (3, 0): np.nan}
    scores = fold_scores(long_rows(values), study(grid()))
    assert scores["value"].tolist()[:3] == pytest.approx([0.7, 0.5, 2.8 / 3])
    assert math.isnan(scores["value"].iloc[3])
    (mean,) = dataset_means(scores).to_dict("records")
    assert mean["value"] == pytest.approx((0.7 + 0.5 + 2.8 / 3) / 3)
    assert mean["n_folds"] == 3


def test_seed_spread_is_the_sample_sd_within_each_fold_then_the_mean_over_folds():
    # fold 0 (.6, .8): sample SD sqrt(((-.1)^2 + .1^2) / 1) = .14142; fold 1 (.9, .9): 0; fold 2 one
    # replicate: no SD. Mean over folds .070711. (One SD of all five values: .1304; population SDs: .05.)
    values = {(0, 0): 0.6, (0, 1): 0.8, (1, 0): 0.9, (1, 1): 0.9, (2, 0): 0.7}
    (row,) = replicate_spread(long_rows(values), study(grid((0, 1, 2)))).to_dict("records")
    assert row["median"] == pytest.approx(math.sqrt(0.02) / 2)
    assert row["n_datasets"] == 1


def test_spread_quartiles_by_linear_interpolation():
    # 1..5: positions (n - 1) q = 1, 2, 3 -> q25 2, median 3, q75 4, IQR 2; NaN ignored
    assert spread([5.0, 1.0, np.nan, 3.0, 2.0, 4.0]) == {"n_datasets": 5, "median": 3.0, "q25": 2.0, "q75": 4.0,
                                                          "iqr": 2.0, "min": 1.0, "max": 5.0}


# --- losses: lower is better everywhere -----------------------------------------------------


def test_a_lower_loss_is_a_positive_improvement_and_wins_the_paired_test():
    # Six datasets; finetune's log-loss .50, zeroshot's .60, causalmixft n=64's 0.40 + 0.01 i (i = 0..5).
    # Improvement of finetune over zeroshot: 100 (1 - .5/.6) = 16.667 %, absolute .6 - .5 = .1.
    # causalmixft against finetune: differences (finetune - causalmixft) .10, .09, ..., .05 all > 0:
    # W = 0 (no negative ranks), exact two-sided p = 2 / 2^6 = .03125.
    records = []
    for i in range(6):
        dataset = f"D{i}"
        records += [record("zeroshot", dataset, 0, 0, [replicate(0, [point(log_loss=0.6)])]),
                    record("finetune", dataset, 0, 0, [replicate(0, [point(log_loss=0.5)])]),
                    record("causalmixft", dataset, 0, 64, [replicate(0, [point(log_loss=0.40 + 0.01 * i)])])]
    tables = tables_of(records, metrics=("log_loss",))
    gain = only(tables["improvement"], group="all", split="test", method="finetune")
    assert (gain["median"], gain["abs_median"]) == pytest.approx((100 * (1 - 0.5 / 0.6), 0.1))
    paired = only(tables["paired_tests"], selection="per_size", competitor="causalmixft n=64")
    assert (paired["n_better"], paired["n_worse"]) == (6, 0)
    assert paired["median_difference"] == pytest.approx(0.075)  # median of .05 ... .10
    assert (paired["wilcoxon_w"], paired["wilcoxon_p"]) == pytest.approx((0.0, 2 / 2**6))
    # Ranks: causalmixft best (1) on every dataset, finetune 2, zeroshot 3.
    ranks = tables["ranks"][tables["ranks"]["selection"] == "per_size"].set_index("competitor")["avg_rank"]
    assert ranks.to_dict() == {"causalmixft n=64": 1.0, "finetune": 2.0, "zeroshot": 3.0}


# --- statistics on the cases the study has ---------------------------------------------------


def test_wilcoxon_counts_only_non_zero_differences_and_holm_keeps_the_adjusted_order():
    # (0, 0, 0, 1, 2, 3, 4, 5): five non-zero differences, so even all positive the exact p would be
    # 2 / 2^5 = .0625 > .05: not run. Counting the zeros (8) would run it.
    too_few = stats.wilcoxon_signed_rank(np.array([0.0, 0.0, 0.0, 1, 2, 3, 4, 5]))
    assert math.isnan(too_few.pvalue) and too_few.note.startswith("too few datasets (5 non-zero")
    # (0, 0, 1, ..., 6): six positive differences, W- = 0, exact two-sided p = 2 / 2^6.
    assert stats.wilcoxon_signed_rank(np.array([0.0, 0.0, 1, 2, 3, 4, 5, 6])).pvalue == pytest.approx(2 / 64)
    # Holm on (.01, .04, .03): sorted .01 * 3 = .03, .03 * 2 = .06, .04 * 1 = .04 -> running max .06.
    assert stats.holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])


def test_the_bootstrap_interval_is_the_central_95_percent():
    # Values (0, 1, 0): a resample's mean is k / 3 with k ~ Binomial(3, 1/3); P(k = 3) = 1/27 = 3.7 %
    # of the 4000 draws (sd 0.3 %), P(k = 0) = 8/27. The 2.5th percentile is 0 and the 97.5th is 1
    # (3.7 % > 2.5 % of the draws are 1); a 90 % interval's 95th percentile would be 2/3.
    mean, low, high = stats.bootstrap_mean_ci(np.array([0.0, 1.0, 0.0]))
    assert mean == pytest.approx(1 / 3)
    assert (low, high) == pytest.approx((0.0, 1.0))
