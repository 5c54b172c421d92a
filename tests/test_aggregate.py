"""Aggregation formulas on hand-made metric files; every expected value is worked out by hand below."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from test_aggregate_fixtures import grid_files, with_budget, write_point, write_run

from causalmixft.analysis import stats
from causalmixft.analysis.aggregate import build_tables, cost_table
from causalmixft.analysis.collect import (
    load_benchmarks,
    load_fidelity,
    load_runs,
    runs_long,
    source_kind_groups,
)
from causalmixft.methods import BUILTIN_METHODS, Method
from causalmixft.errors import StageError
from causalmixft.analysis.study import Study
from causalmixft.io import write_json

METHODS_WITH_REAL = {"finetune", "causalmixft"}
SIZE_DEPENDENT = {"causalmixft", "scm_only"}


def tables_for(tmp_path, expected, metrics=("roc_auc", "accuracy"), groups=None, min_datasets=2):
    """The tables of a hand-made grid of 1-4 datasets: intervals and tests from 2 datasets on, to check
    their arithmetic (a study's own minimum, 5 by default, is tested in test_aggregate_report.py)."""
    study = Study.from_params(expected, METHODS_WITH_REAL, SIZE_DEPENDENT, dataset_groups=groups, metrics=metrics,
                              min_datasets=min_datasets)
    return build_tables(load_runs(with_budget(expected), grid_files(tmp_path, expected)), study), study


def cell(frame, **where):
    rows = frame
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, f"{len(rows)} rows match {where}"
    return rows.iloc[0]


# --- normalized improvement -----------------------------------------------------------------


def test_improvement_is_fold_mean_per_dataset_then_median_across_datasets(tmp_path):
    # test ROC-AUC (zeroshot, finetune) per fold and the improvement 100 (s / s_ref - 1):
    #   A: (0.80, 0.88) -> +10, (0.50, 0.55) -> +10, (0.50, 0.60) -> +20  => A = 40/3 (fold mean)
    #   B: (0.60, 0.66) -> +10, (0.60, 0.63) -> +5                      => B = +7.5
    #   C: (0.50, 0.45) -> -10, (0.50, 0.50) -> 0                       => C = -5
    # across datasets [-5, 7.5, 13.33]: median 7.5, q25 = -5 + 0.5 * 12.5 = 1.25,
    #   q75 = 7.5 + 0.5 * (40/3 - 7.5) = 125/12
    values = {
        "A": [(0.80, 0.88), (0.50, 0.55), (0.50, 0.60)],
        "B": [(0.60, 0.66), (0.60, 0.63)],
        "C": [(0.50, 0.45), (0.50, 0.50)],
    }
    expected = []
    for dataset, folds in values.items():
        for fold, (zero, fine) in enumerate(folds):
            write_point(tmp_path, "zeroshot", dataset, fold, 0, roc_auc=zero)
            write_point(tmp_path, "finetune", dataset, fold, 0, roc_auc=fine)
            expected += [("zeroshot", dataset, fold, 0), ("finetune", dataset, fold, 0)]
    tables, _ = tables_for(tmp_path, expected)
    per_dataset = tables["improvement_per_dataset"]
    for dataset, value, n_folds in (("A", 40 / 3, 3), ("B", 7.5, 2), ("C", -5.0, 2)):
        row = cell(per_dataset, method="finetune", dataset=dataset, split="test", metric="roc_auc")
        assert row["improvement"] == pytest.approx(value)
        assert row["n_folds"] == n_folds
    row = cell(tables["improvement"], group="all", method="finetune", size=0, split="test", metric="roc_auc")
    assert (row["median"], row["q25"], row["q75"]) == pytest.approx((7.5, 1.25, 125 / 12))
    assert (row["iqr"], row["min"], row["max"], row["n_datasets"]) == pytest.approx((125 / 12 - 1.25, -5.0, 40 / 3, 3))
    # The filler accuracy is the same for both methods: zero improvement, on both splits.
    assert cell(tables["improvement"], method="finetune", split="val", metric="accuracy")["median"] == pytest.approx(
        0.0
    )
    # The reference itself is not a row: its improvement is 0 by construction.
    assert "zeroshot" not in set(tables["improvement"]["method"])


def test_improvement_flips_the_sign_for_losses_and_is_undefined_without_a_reference(tmp_path):
    write_point(tmp_path, "zeroshot", "A", 0, 0, log_loss=0.5)
    write_point(tmp_path, "finetune", "A", 0, 0, log_loss=0.4)  # 100 (1 - 0.4 / 0.5) = +20
    write_point(tmp_path, "finetune", "A", 1, 0, log_loss=0.1)  # fold 1 has no zero-shot run
    write_point(tmp_path, "zeroshot", "B", 0, 0, log_loss=0.0)  # a zero reference: ratio undefined
    write_point(tmp_path, "finetune", "B", 0, 0, log_loss=0.3)
    expected = [("zeroshot", "A", 0, 0), ("finetune", "A", 0, 0), ("zeroshot", "A", 1, 0), ("finetune", "A", 1, 0)]
    expected += [("zeroshot", "B", 0, 0), ("finetune", "B", 0, 0)]
    tables, _ = tables_for(tmp_path, expected, metrics=("log_loss",))
    a = cell(tables["improvement_per_dataset"], dataset="A", split="test")
    assert a["improvement"] == pytest.approx(20.0)
    assert a["n_folds"] == 1
    b = cell(tables["improvement_per_dataset"], dataset="B", split="test")
    assert math.isnan(b["improvement"]) and b["n_folds"] == 0
    summary = cell(tables["improvement"], split="test")
    assert summary["n_datasets"] == 1 and summary["median"] == pytest.approx(20.0)
    assert list(tables["missing"][["method", "dataset", "fold"]].itertuples(index=False, name=None)) == [
        ("zeroshot", "A", 1)
    ]


# --- ranks, Friedman, Nemenyi ---------------------------------------------------------------


def test_per_size_ranks_friedman_and_nemenyi_by_hand(tmp_path):
    # test ROC-AUC (zeroshot, finetune, causalmixft n=64) and ranks (1 = best):
    #   D1 .70 .80 .90 -> 3 2 1;   D2 .70 .90 .80 -> 3 1 2;   D3 .75 .80 .85 -> 3 2 1
    #   D4 .80 .80 .90 -> 2.5 2.5 1 (tie);   D5 .70 .75 .80 -> 3 2 1
    # average ranks: zeroshot 14.5/5 = 2.9, finetune 9.5/5 = 1.9, causalmixft 6/5 = 1.2
    # Friedman: 12N/(k(k+1)) sum (R_j - 2)^2 = 5 (0.81 + 0.01 + 0.64) = 7.3,
    #   tie correction 1 - (2^3 - 2) / (N k (k^2 - 1)) = 1 - 6/120 = 0.95 -> chi2 = 7.3 / 0.95,
    #   df = 2: p = exp(-chi2 / 2). Nemenyi (Demsar's q_0.05 = 2.343 for k = 3): 2.343 sqrt(12/30).
    scores = {"D1": (0.70, 0.80, 0.90), "D2": (0.70, 0.90, 0.80), "D3": (0.75, 0.80, 0.85), "D4": (0.80, 0.80, 0.90),
              "D5": (0.70, 0.75, 0.80)}
    expected = []
    for dataset, (zero, fine, mix) in scores.items():
        for method, size, value in (("zeroshot", 0, zero), ("finetune", 0, fine), ("causalmixft", 64, mix)):
            write_point(tmp_path, method, dataset, 0, size, roc_auc=value)
            expected.append((method, dataset, 0, size))
    tables, _ = tables_for(tmp_path, expected, metrics=("roc_auc",))
    ranks = tables["ranks"][tables["ranks"]["selection"] == "per_size"]
    assert ranks["competitor"].tolist() == ["causalmixft n=64", "finetune", "zeroshot"]
    assert ranks["avg_rank"].tolist() == pytest.approx([1.2, 1.9, 2.9])
    test = cell(tables["rank_tests"], selection="per_size")
    chi2 = 7.3 / 0.95
    assert test["friedman_chi2"] == pytest.approx(chi2)
    assert test["friedman_p"] == pytest.approx(math.exp(-chi2 / 2))
    assert test["nemenyi_cd"] == pytest.approx(2.343 * math.sqrt(0.4), rel=1e-3)
    assert (test["n_competitors"], test["n_datasets"], test["note"]) == (3, 5, "")
    # Four datasets are too few: the test is not run, and says why.
    fewer = [key for key in expected if key[1] != "D5"]
    tables, _ = tables_for(tmp_path, fewer, metrics=("roc_auc",))
    test = cell(tables["rank_tests"], selection="per_size")
    assert math.isnan(test["friedman_p"]) and math.isnan(test["nemenyi_cd"])
    assert test["note"].startswith("too few datasets (4 with every competitor")
    # Paired tests: causalmixft n=64 vs finetune is better on 4 of 5 datasets, worse on 1 (D2); five
    # non-zero differences cannot reach p < 0.05 in an exact two-sided Wilcoxon test (2/32 = 0.0625).
    paired = cell(tables_for(tmp_path, expected, metrics=("roc_auc",))[0]["paired_tests"],
                  selection="per_size", competitor="causalmixft n=64")
    assert (paired["n_better"], paired["n_worse"], paired["n_datasets"]) == (4, 1, 5)
    assert math.isnan(paired["wilcoxon_p"]) and paired["note"].startswith("too few datasets")


def test_val_chosen_ranks_pick_the_size_by_validation_never_by_test(tmp_path):
    # causalmixft n=256 is better on test everywhere, but validation prefers n=64 on D1
    # (0.85 > 0.80, and > finetune's 0.80 at n=0) and ties on D2 (0.9 = 0.9: the smaller size
    # wins), so n=64 competes.
    #   D1 test: zeroshot .70, finetune .80, causalmixft@64 .75 -> ranks 3, 1, 2
    #   D2 test: zeroshot .70, finetune .80, causalmixft@64 .60 -> ranks 2, 1, 3
    runs = {
        ("zeroshot", 0): {"D1": (0.7, 0.7), "D2": (0.7, 0.7)},
        ("finetune", 0): {"D1": (0.8, 0.8), "D2": (0.8, 0.8)},
        ("causalmixft", 64): {"D1": (0.85, 0.75), "D2": (0.9, 0.6)},
        ("causalmixft", 256): {"D1": (0.80, 0.95), "D2": (0.9, 0.99)},
    }
    expected = []
    for (method, size), per_dataset in runs.items():
        for dataset, (val, test) in per_dataset.items():
            write_run(tmp_path, method, dataset, 0, size, [{"roc_auc": val}], [{"roc_auc": test}])
            expected.append((method, dataset, 0, size))
    tables, _ = tables_for(tmp_path, expected, metrics=("roc_auc",))
    chosen = tables["ranks"][tables["ranks"]["selection"] == "val_chosen"].set_index("competitor")
    assert chosen.loc["finetune", "avg_rank"] == pytest.approx(1.0)
    assert chosen.loc["causalmixft", "avg_rank"] == pytest.approx(2.5)
    assert chosen.loc["zeroshot", "avg_rank"] == pytest.approx(2.5)
    assert chosen.loc["causalmixft", "chosen_sizes"] == "D1: 64 (1); D2: 64 (1)"
    assert chosen.loc["causalmixft", "mean_score"] == pytest.approx(0.675)
    # The best-size table uses the same choice.
    best = tables["best_size"].set_index("dataset")
    assert best["chosen_sizes"].tolist() == ["64 (1)", "64 (1)"]
    assert best["test_at_chosen"].tolist() == pytest.approx([0.75, 0.6])
    # Two datasets: too few for the Friedman test.
    assert cell(tables["rank_tests"], selection="val_chosen")["note"].startswith("too few datasets")


def test_the_size_is_chosen_per_fold_and_replicate_from_that_folds_validation_rows(tmp_path):
    # D1, two folds. Validation ROC-AUC of causalmixft at n=64 / n=256 (finetune's n=0: 0.5 everywhere):
    #   fold 0: .90 / .70 -> per fold: 64 (test .80);   fold 1: .60 / .85 -> per fold: 256 (test .90)
    # Averaging validation over folds first (.75 / .775) would pick 256 for both folds, whose test
    # rows are the other fold's validation rows: test (.60 + .90) / 2 = .75. Per fold: (.80 + .90) / 2.
    # Fold 1 has two replicates that disagree: replicate 1 prefers 64 (val .95, test .70), so fold 1
    # reports (.90 + .70) / 2 = .80 and the dataset (.80 + .80) / 2 = .80.
    # D2: n=64 has the best validation score and no test score (NaN): it stays the choice.
    def one(val, test):
        return [{"roc_auc": val}], [{"roc_auc": test}], None

    fold1 = {64: [one(0.60, 0.70), one(0.95, 0.70)], 256: [one(0.85, 0.90), one(0.80, 0.50)]}
    fold0 = {64: [one(0.90, 0.80)] * 2, 256: [one(0.70, 0.60)] * 2}
    expected = []
    for fold, curve in ((0, fold0), (1, fold1)):
        for method, size in (("zeroshot", 0), ("finetune", 0)):
            write_run(tmp_path, method, "D1", fold, size, [], [], replicates=[one(0.5, 0.5)] * 2)
            expected.append((method, "D1", fold, size))
        for size, replicates in curve.items():
            write_run(tmp_path, "causalmixft", "D1", fold, size, [], [], replicates=replicates)
            expected.append(("causalmixft", "D1", fold, size))
    for method, size, val, test in (("zeroshot", 0, 0.5, 0.5), ("finetune", 0, 0.5, 0.5),
                                    ("causalmixft", 64, 0.9, None), ("causalmixft", 256, 0.8, 0.9)):
        write_run(tmp_path, method, "D2", 0, size, [{"roc_auc": val}], [{"roc_auc": test}])
        expected.append((method, "D2", 0, size))
    tables, _ = tables_for(tmp_path, expected, metrics=("roc_auc",))
    units = tables["size_choices"].set_index(["dataset", "fold", "replicate"])["chosen_size"]
    assert units.loc[("D1", 0, 0)] == 64 and units.loc[("D1", 1, 0)] == 256 and units.loc[("D1", 1, 1)] == 64
    best = tables["best_size"].set_index("dataset")
    assert best.loc["D1", "test_at_chosen"] == pytest.approx(0.80)
    assert best.loc["D1", "chosen_sizes"] == "64 (3), 256 (1)"
    assert best.loc["D2", "chosen_sizes"] == "64 (1)" and math.isnan(best.loc["D2", "test_at_chosen"])
    chosen = tables["ranks"][(tables["ranks"]["selection"] == "val_chosen")]
    # D2's NaN test score leaves its block incomplete: D2 is dropped from the ranks, D1 ranks.
    assert "causalmixft" in chosen["competitor"].tolist()
    assert cell(tables["rank_tests"], selection="val_chosen")["dropped_datasets"] == "D2"


def test_rank_blocks_drop_empty_competitors_then_incomplete_datasets(tmp_path):
    expected = []
    for dataset in ("D1", "D2", "D3"):
        for method, size in (("zeroshot", 0), ("finetune", 0), ("causalmixft", 64), ("scm_only", 64)):
            expected.append((method, dataset, 0, size))
            if method == "scm_only" or (method == "causalmixft" and dataset == "D3"):
                continue  # scm_only never ran; causalmixft failed on D3
            write_point(tmp_path, method, dataset, 0, size, roc_auc=0.7 + 0.01 * len(method))
    tables, _ = tables_for(tmp_path, expected, metrics=("roc_auc",))
    test = cell(tables["rank_tests"], selection="per_size")
    assert test["dropped_competitors"] == "scm_only n=64"
    assert test["dropped_datasets"] == "D3"
    assert (test["n_competitors"], test["n_datasets"]) == (3, 2)
    assert len(tables["missing"]) == 4


def test_friedman_and_page_report_why_they_do_not_apply():
    assert stats.friedman(np.array([[1.0, 2.0, 3.0]])).note.startswith("too few datasets (1 with")
    assert stats.friedman(np.array([[1.0, 2.0], [2.0, 1.0]])).note.startswith("needs at least 3 competitors")
    assert stats.friedman(np.ones((5, 3))).note == "all competitors tie on every dataset"
    assert stats.page_trend(np.array([[1.0, 2.0, 3.0]])).note.startswith("needs at least 2 complete datasets")
    assert math.isnan(stats.nemenyi_critical_difference(1, 5))


def test_wilcoxon_holm_and_bootstrap_by_hand():
    # Six positive differences: the most extreme outcome, exact two-sided p = 2 / 2^6.
    assert stats.wilcoxon_signed_rank(np.arange(1.0, 7.0)).pvalue == pytest.approx(2 / 64)
    five = stats.wilcoxon_signed_rank(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.0]))  # the zero is dropped
    assert math.isnan(five.pvalue) and five.note.startswith("too few datasets (5 non-zero")
    # Holm: sorted .01 .03 .04 -> 3 x .01 = .03, 2 x .03 = .06, max(.06, 1 x .04) = .06; NaN stays out.
    assert stats.holm(np.array([0.01, 0.04, 0.03, np.nan]))[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(stats.holm(np.array([0.01, np.nan]))[1])
    assert stats.holm(np.array([0.5, 0.6])) == pytest.approx([1.0, 1.0])
    mean, low, high = stats.bootstrap_mean_ci(np.array([0.2, 0.2, 0.2]))
    assert (mean, low, high) == pytest.approx((0.2, 0.2, 0.2))
    mean, low, high = stats.bootstrap_mean_ci(np.array([0.0, 1.0, np.nan]))
    assert mean == 0.5 and 0.0 <= low < 0.5 < high <= 1.0
    assert stats.bootstrap_mean_ci(np.array([0.0, 1.0]), seed=3) == stats.bootstrap_mean_ci(np.array([0.0, 1.0]), seed=3)
    assert math.isnan(stats.bootstrap_mean_ci(np.array([0.3]))[1])


def test_cd_cliques_are_maximal_runs_within_the_critical_difference():
    # ranks 1.0 1.5 2.6 3.0, CD 1.2: 1.0-1.5 (2.6 - 1.0 = 1.6 too far), 1.5-2.6 (1.1 < 1.2), 2.6-3.0
    assert stats.cd_cliques(np.array([1.0, 1.5, 2.6, 3.0]), 1.2) == [(0, 1), (1, 2), (2, 3)]
    assert stats.cd_cliques(np.array([1.0, 1.5, 2.6, 3.0]), 5.0) == [(0, 3)]
    assert stats.cd_cliques(np.array([1.0, 2.0, 3.0]), 0.5) == []
    assert stats.cd_cliques(np.array([1.0, 2.0]), float("nan")) == []


# --- validation-test gap and early-stopping regret ------------------------------------------


def test_gap_and_regret_by_hand(tmp_path):
    # ROC-AUC curve: val .6 .7 .8 .9, test .5 .8 .6 .7; validation selects the last step (30).
    #   Spearman: ranks (1 2 3 4) vs (1 4 2 3), d = (0 -2 1 1), sum d^2 = 6
    #   -> rho = 1 - 6*6 / (4*15) = 0.4 -> gap 0.6; regret = best test .8 (step 10) - .7 = 0.1
    # log-loss (lower is better): val .6 .5 .4 .3, test .5 .25 .45 .4: ranks (4 3 2 1) vs (4 1 3 2),
    #   sum d^2 = 6 -> rho 0.4 -> gap 0.6; regret = selected .4 - lowest .25 = 0.15
    val = [{"roc_auc": v, "log_loss": loss} for v, loss in ((0.6, 0.6), (0.7, 0.5), (0.8, 0.4), (0.9, 0.3))]
    test = [{"roc_auc": v, "log_loss": loss} for v, loss in ((0.5, 0.5), (0.8, 0.25), (0.6, 0.45), (0.7, 0.4))]
    write_run(tmp_path, "finetune", "A", 0, 0, val, test, selected=3)
    # A constant validation curve and a two-point curve: gap undefined, counted.
    write_run(
        tmp_path,
        "finetune",
        "A",
        1,
        0,
        [{"roc_auc": 0.7}] * 3,
        [{"roc_auc": 0.6}, {"roc_auc": 0.8}, {"roc_auc": 0.7}],
        selected=0,
    )
    write_run(
        tmp_path,
        "finetune",
        "B",
        0,
        0,
        [{"roc_auc": 0.7}, {"roc_auc": 0.8}],
        [{"roc_auc": 0.7}, {"roc_auc": 0.6}],
        selected=1,
    )
    write_point(tmp_path, "zeroshot", "A", 0, 0, roc_auc=0.7)
    expected = [("finetune", "A", 0, 0), ("finetune", "A", 1, 0), ("finetune", "B", 0, 0), ("zeroshot", "A", 0, 0)]
    tables, _ = tables_for(tmp_path, expected, metrics=("roc_auc", "log_loss"))
    runs = tables["gap_regret_runs"]
    first = cell(runs, method="finetune", dataset="A", fold=0, metric="roc_auc")
    assert (first["gap"], first["regret"], first["best_step"], first["selected_step"]) == pytest.approx(
        (0.6, 0.1, 10, 30)
    )
    assert first["n_points"] == 4
    loss = cell(runs, method="finetune", dataset="A", fold=0, metric="log_loss")
    assert (loss["gap"], loss["regret"]) == pytest.approx((0.6, 0.15))
    constant = cell(runs, method="finetune", dataset="A", fold=1, metric="roc_auc")
    assert math.isnan(constant["gap"]) and constant["gap_note"] == "constant validation or test curve"
    assert constant["regret"] == pytest.approx(0.8 - 0.6)
    short = cell(runs, method="finetune", dataset="B", fold=0, metric="roc_auc")
    assert math.isnan(short["gap"]) and short["gap_note"].startswith("2 evaluation point(s)")
    assert short["regret"] == pytest.approx(0.1)
    # Dataset first: A's gap is its one defined fold (0.6), B has none; regrets A (0.1 + 0.2) / 2, B 0.1.
    summary = cell(tables["gap_regret"], group="all", metric="roc_auc", method="finetune", size="all")
    assert (summary["n_runs"], summary["n_gap_defined"], summary["n_gap_undefined"]) == (3, 1, 2)
    assert summary["n_datasets"] == 1 and summary["gap_median"] == pytest.approx(0.6)
    assert summary["regret_median"] == pytest.approx(0.125)  # median over datasets of 0.15 and 0.1
    assert summary["regret_max"] == pytest.approx(0.15)
    zero = cell(tables["gap_regret"], metric="roc_auc", method="zeroshot")
    assert zero["n_gap_defined"] == 0 and zero["regret_median"] == 0.0


# --- scaling, trend tests and best size -----------------------------------------------------


def test_scaling_trend_and_best_size_by_hand(tmp_path):
    # test ROC-AUC along causalmixft's curve, n = 0 (finetune), 64, 256, 1024:
    #   D1 .70 .72 .74 .76 -> rho +1;  D2 .70 .71 .73 .72 -> rho 1 - 6*2/60 = +0.8;  D3 .80 .79 .78 .77 -> rho -1
    # sign test: 2 positive, 1 negative of 3 -> two-sided binomial p = 1.
    # Page's L: within-row ranks (1 2 3 4), (1 2 4 3), (4 3 2 1); column sums 6 7 9 8;
    #   L = 1*6 + 2*7 + 3*9 + 4*8 = 79.
    # median at n=256 over (.74, .73, .78) = .74, q25 .735, q75 .76.
    test = {"D1": (0.70, 0.72, 0.74, 0.76), "D2": (0.70, 0.71, 0.73, 0.72), "D3": (0.80, 0.79, 0.78, 0.77)}
    # validation: equal to test except D2 (prefers n=1024 while test prefers 256) and D3 (tie at n=0 and 64).
    val = {"D1": test["D1"], "D2": (0.70, 0.71, 0.72, 0.75), "D3": (0.80, 0.80, 0.70, 0.70)}
    sizes = (0, 64, 256, 1024)
    expected = []
    for dataset in test:
        write_point(tmp_path, "zeroshot", dataset, 0, 0, roc_auc=0.65)
        expected.append(("zeroshot", dataset, 0, 0))
        for i, size in enumerate(sizes):
            method = "finetune" if size == 0 else "causalmixft"
            write_run(
                tmp_path, method, dataset, 0, size, [{"roc_auc": val[dataset][i]}], [{"roc_auc": test[dataset][i]}]
            )
            expected.append((method, dataset, 0, size))
            if size:
                write_point(tmp_path, "scm_only", dataset, 0, size, roc_auc=0.6)
                expected.append(("scm_only", dataset, 0, size))
    tables, _ = tables_for(tmp_path, expected, metrics=("roc_auc",))
    per_dataset = tables["scaling_per_dataset"]
    anchor = cell(per_dataset, method="causalmixft", dataset="D1", size=0, split="test")
    assert anchor["source"] == "finetune" and anchor["value"] == pytest.approx(0.70)
    assert cell(per_dataset, method="scm_only", dataset="D1", size=0, split="test")["source"] == "zeroshot"
    at_256 = cell(tables["scaling"], group="all", method="causalmixft", size=256, split="test")
    assert (at_256["median"], at_256["q25"], at_256["q75"], at_256["n_datasets"]) == pytest.approx(
        (0.74, 0.735, 0.76, 3)
    )

    trend = cell(tables["trend"], method="causalmixft", split="test")
    assert trend["sizes"] == "0 64 256 1024"
    assert (trend["n_rho_positive"], trend["n_rho_negative"], trend["sign_test_p"]) == pytest.approx((2, 1, 1.0))
    assert trend["median_rho"] == pytest.approx(0.8)
    assert trend["page_L"] == pytest.approx(79)
    # Exact null distribution of L by enumeration: each dataset's ranks one of the 4! orders, all equally likely;
    # L for the decreasing prediction is 5 * 30 - L = 71, so its p is P(L <= 79).
    null = [sum(j * sum(col) for j, col in enumerate(zip(*rows), 1))
            for rows in itertools.product(itertools.permutations(range(1, 5)), repeat=3)]
    assert trend["page_p_increasing"] == pytest.approx(sum(v >= 79 for v in null) / len(null))
    assert trend["page_p_decreasing"] == pytest.approx(sum(v <= 79 for v in null) / len(null))
    # scm_only's curve is (.65 .6 .6 .6), n=0 being zero-shot: ranks (4 2 2 2) against (1 2 3 4)
    # give rho = -3 / sqrt(15) < 0 on all 3 datasets -> sign test p = 2 / 2^3 = 0.25.
    flat = cell(tables["trend"], method="scm_only", split="test")
    assert flat["n_rho_negative"] == 3 and flat["sign_test_p"] == pytest.approx(0.25)

    # Page's two-sided p doubles the smaller one-sided p; Holm runs over every trend p of the table.
    assert trend["page_p"] == pytest.approx(2 * min(trend["page_p_increasing"], trend["page_p_decreasing"]))
    assert trend["page_p_holm"] >= trend["page_p"] and trend["direction"] == "increasing"

    best = tables["best_size"].set_index(["method", "dataset"])
    d1 = best.loc[("causalmixft", "D1")]
    assert (d1["chosen_sizes"], d1["test_best_sizes"], d1["agree_share"]) == ("1024 (1)", "1024 (1)", 1.0)
    d2 = best.loc[("causalmixft", "D2")]
    assert (d2["chosen_sizes"], d2["test_best_sizes"], d2["agree_share"]) == ("1024 (1)", "256 (1)", 0.0)
    assert d2["regret"] == pytest.approx(0.73 - 0.72)
    assert best.loc[("causalmixft", "D3"), "chosen_sizes"] == "0 (1)"  # the tie goes to the smaller size


def test_dataset_groups_restrict_every_headline_table(tmp_path):
    expected = []
    for dataset, value in (("A", 0.8), ("B", 0.9), ("C", 0.7)):
        write_point(tmp_path, "zeroshot", dataset, 0, 0, roc_auc=0.5)
        write_point(tmp_path, "finetune", dataset, 0, 0, roc_auc=value)
        expected += [("zeroshot", dataset, 0, 0), ("finetune", dataset, 0, 0)]
    tables, study = tables_for(tmp_path, expected, metrics=("roc_auc",), groups={"tabmwp": ["B", "C"]})
    assert list(study.groups) == ["all", "tabmwp"]
    assert cell(tables["improvement"], group="all", split="test")["median"] == pytest.approx(60.0)  # (60, 80, 40)
    assert cell(tables["improvement"], group="tabmwp", split="test")["median"] == pytest.approx(60.0)  # (80, 40)
    assert cell(tables["improvement"], group="tabmwp", split="test")["n_datasets"] == 2
    assert set(tables["rank_tests"]["group"]) == {"all", "tabmwp"}
    with pytest.raises(ValueError, match="reserved"):
        Study.from_params(expected, METHODS_WITH_REAL, SIZE_DEPENDENT, dataset_groups={"all": ["A"]})


# --- fidelity, benchmarks, file checks --------------------------------------------------------


def fidelity_report(two_sample, tstr, marginal):
    """A report shaped like generators/fidelity.py's: nested, with per-feature and per-class detail."""
    return {
        "rows": {"real_train": 204, "synthetic": 64, "real_val": 52},
        "two_sample_auc": two_sample,
        "tstr": {"train_on_synthetic_auc": tstr, "train_on_real_auc": 0.8, "difference": None},
        "marginal_distance": {"mean": marginal, "per_feature": {"age": {"metric": "ks", "value": marginal}}},
        "label_distribution": {"real_train": {"no": 0.6}, "synthetic": {"no": 0.5}, "total_variation": 0.1},
    }


def test_fidelity_reports_are_flattened_and_tolerate_missing_keys(tmp_path):
    root = tmp_path / "synth" / "causalmixft"
    write_json(root / "A" / "fold0" / "real256" / "n64.fidelity.json", fidelity_report(0.6, 0.7, 0.1))
    write_json(root / "A" / "fold1" / "real256" / "n64.fidelity.json", {"two_sample_auc": 0.8, "notes": "text is ignored"})
    write_json(root / "B" / "fold0" / "real256" / "n64.fidelity.json", fidelity_report(0.5, None, 0.3))
    absent = root / "B" / "fold1" / "real256" / "n64.fidelity.json"
    fidelity, missing = load_fidelity(sorted(root.rglob("*.fidelity.json")) + [absent])
    expected = [("zeroshot", "A", 0, 0)]
    write_point(tmp_path / "runs", "zeroshot", "A", 0, 0)
    study = Study.from_params(expected, METHODS_WITH_REAL, SIZE_DEPENDENT)
    # the aggregate hands build_tables one budget's reports without the column (report._of_budget)
    fidelity = fidelity.drop(columns="real_budget")
    tables = build_tables(load_runs(with_budget(expected), grid_files(tmp_path / "runs", expected)), study, fidelity, missing)
    table = tables["fidelity"].set_index("key")
    # Row counts, per-feature distances and per-class shares are detail, not aggregated.
    assert set(table.index) == {
        "two_sample_auc",
        "tstr.train_on_synthetic_auc",
        "tstr.train_on_real_auc",
        "tstr.difference",
        "marginal_distance.mean",
        "label_distribution.total_variation",
    }
    # two-sample AUC: A = mean(0.6, 0.8) = 0.7, B = 0.5 -> median 0.6 over 2 datasets
    assert table.loc["two_sample_auc", ["median", "n_datasets"]].tolist() == pytest.approx([0.6, 2])
    # TSTR: A has 0.7 (fold 1 lacks the key), B's is null -> one dataset
    assert table.loc["tstr.train_on_synthetic_auc", ["median", "n_datasets"]].tolist() == pytest.approx([0.7, 1])
    assert table.loc["tstr.difference", "n_datasets"] == 0
    assert cell(tables["missing"], kind="fidelity")["dataset"] == "B"


def test_cost_table_from_benchmark_files(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "finetune" / "A").mkdir(parents=True)
    (tmp_path / "finetune" / "A" / "n0.tsv").write_text(header + "10\t0:00:10\t100\t1\t1\t1\t0\t0\t90\t8\n")
    # Two repeat() rows are one job: mean wall 30, cpu 20, rss 300.
    (tmp_path / "finetune" / "A" / "n64.tsv").write_text(
        header + "20\t0:00:20\t200\t1\t1\t1\t0\t0\t90\t10\n40\t0:00:40\t400\t1\t1\t1\t0\t0\t90\t30\n"
    )
    (tmp_path / "split.tsv").write_text(header + "1.5\t0:00:01\t-\t-\t-\t-\t-\t-\t-\t-\n")
    (tmp_path / "aggregate.tsv").write_text(header + "99\t0:01:39\t1\t1\t1\t1\t0\t0\t1\t1\n")
    benchmarks = load_benchmarks(tmp_path, exclude=[tmp_path / "aggregate.tsv"])
    cost = cost_table(benchmarks).set_index("rule")
    assert list(cost.index) == ["finetune", "split"]
    assert cost.loc[
        "finetune", ["jobs", "wall_s_median", "wall_s_total", "cpu_s_total", "max_rss_mib"]
    ].tolist() == pytest.approx([2, 20, 40, 28, 300])
    assert cost.loc["split", "wall_s_total"] == pytest.approx(1.5)
    assert math.isnan(cost.loc["split", "max_rss_mib"])
    assert load_benchmarks(tmp_path / "absent").empty


def test_a_misplaced_metrics_file_is_an_error_not_a_missing_run(tmp_path):
    path = write_point(tmp_path, "finetune", "A", 0, 0)
    target = path.parents[4] / "B" / "fold0" / "real256" / "n0" / "metrics.json"
    target.parent.mkdir(parents=True)
    path.rename(target)
    with pytest.raises(StageError, match=r"\[aggregate\] B: .* describes run"):
        load_runs(with_budget([("finetune", "B", 0, 0)]), [target])


def test_runs_long_has_one_row_per_run_split_metric(tmp_path):
    path = write_point(tmp_path, "finetune", "A", 0, 0, roc_auc=0.9)
    frame = runs_long(load_runs(with_budget([("finetune", "A", 0, 0)]), [path]).records)
    assert len(frame) == 2 * 4  # val/test x four metrics
    row = frame[(frame["split"] == "test") & (frame["metric"] == "roc_auc")].iloc[0]
    assert (row["value"], row["wall_time_s"], row["backbone"], row["selected_step"]) == (0.9, 1.5, "tfm-small", 0)


def test_runs_are_matched_to_the_grid_by_path(tmp_path):
    listed = write_point(tmp_path, "finetune", "A", 0, 0)
    outside = write_point(tmp_path, "finetune", "Z", 0, 0)  # not in the grid: ignored
    runs = load_runs(with_budget([("finetune", "A", 0, 0), ("zeroshot", "A", 0, 0)]), [listed, outside])
    assert [(r["method"], r["dataset"]) for r in runs.records] == [("finetune", "A")]
    assert runs.missing[["method", "path"]].values.tolist() == [["zeroshot", ""]]
    with pytest.raises(StageError, match="is not .*metrics.json"):
        load_runs([], [tmp_path / "metrics.json"])
    with pytest.raises(StageError, match="two metrics files for run"):
        load_runs([], [listed, tmp_path / "other" / "finetune" / "A" / "fold0" / "real256" / "n0" / "metrics.json"])


def test_source_kinds_become_groups_only_when_mixed():
    mixed = {"b": {"source": "tabmwp:x"}, "a": {"source": "openml:1"}, "c": {"source": "openml:2"}}
    assert source_kind_groups(mixed) == {"openml": ["a", "c"], "tabmwp": ["b"]}
    assert source_kind_groups({"a": {"source": "openml:1"}}) == {}
    # Files group by their folder: the shipped TabArena tables are "tabarena", a user's table its folder.
    files = {"t": {"source": "file:resources/tabarena/t.csv.gz"}, "u": {"source": "file:/data/mine/u.csv"}}
    assert source_kind_groups({**files, "m": {"source": "tabmwp:grade"}}) == {
        "mine": ["u"],
        "tabarena": ["t"],
        "tabmwp": ["m"],
    }
    assert source_kind_groups({"v": {"source": "file:v.csv"}, "w": {"source": "sklearn:iris"}}) == {
        "file": ["v"],
        "sklearn": ["w"],
    }


def test_an_undefined_trend_and_a_curve_without_its_anchor(tmp_path):
    # No finetune in the grid, so causalmixft's curve has no n=0 point; two sizes give no rho.
    expected = []
    for dataset in ("A", "B"):
        write_point(tmp_path, "zeroshot", dataset, 0, 0, roc_auc=0.7)
        expected.append(("zeroshot", dataset, 0, 0))
        for size in (64, 256):
            write_point(tmp_path, "causalmixft", dataset, 0, size, roc_auc=0.7 + size / 10_000)
            expected.append(("causalmixft", dataset, 0, size))
    tables, study = tables_for(tmp_path, expected, metrics=("roc_auc",))
    trend = cell(tables["trend"], group="all", method="causalmixft", split="test", metric="roc_auc")
    assert trend["sizes"] == "64 256" and trend["n_rho_defined"] == 0  # two sizes, no n = 0 anchor: no rho
    assert trend["note"] == "needs at least 2 complete datasets and 3 sizes, got 2 and 2"
    improvement = tables["improvement"].query("group == 'all' and split == 'test' and method == 'causalmixft'")
    # 100 (0.7064 / 0.7 - 1) = 0.914..., 100 (0.7256 / 0.7 - 1) = 3.657...; absolute 0.0064 and 0.0256
    assert improvement["mean"].tolist() == pytest.approx([100 * 0.0064 / 0.7, 100 * 0.0256 / 0.7])
    assert improvement["abs_mean"].tolist() == pytest.approx([0.0064, 0.0256])
    assert improvement["n_datasets"].tolist() == [2, 2] and "finetune" not in set(tables["improvement"]["method"])


def test_float_noise_neither_breaks_a_tie_nor_makes_a_sign():
    noisy = 0.1 + 0.2  # 0.30000000000000004: the same score averaged in another order
    assert stats.within_row_ranks(np.array([[noisy, 0.3, 0.2]]), True).tolist() == [[1.5, 1.5, 3.0]]
    assert stats.sign_test(np.array([noisy - 0.3, 0.3 - noisy, 0.01]))[:2] == (1, 0)
    # the four |d| of 0.3 share one rank whichever of them carries the noise
    tied = stats.wilcoxon_signed_rank(np.array([noisy, -0.3, 0.3, -noisy, 0.5, 0.6, 0.7]))
    untied = stats.wilcoxon_signed_rank(np.array([0.3, -0.3, 0.3, -0.3, 0.5, 0.6, 0.7]))
    assert (tied.statistic, tied.pvalue) == (untied.statistic, untied.pvalue)
    assert stats.page_trend(np.array([[0.3, noisy, 0.4], [0.2, 0.2, 0.5]])).statistic == \
        stats.page_trend(np.array([[0.3, 0.3, 0.4], [0.2, 0.2, 0.5]])).statistic
