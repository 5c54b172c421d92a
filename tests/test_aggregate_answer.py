"""The answer tables (analysis/answer.py) on hand-made metric files; expected values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_aggregate import cell
from test_aggregate_fixtures import grid_files, with_budget, write_point, write_run

from causalmixft.analysis.aggregate import build_tables
from causalmixft.analysis.answer import answer_tables, null_auc_se
from causalmixft.analysis.answer_text import render_answer
from causalmixft.analysis.collect import load_runs, load_test_class_counts
from causalmixft.analysis.study import Study
from causalmixft.errors import StageError

METHODS_WITH_REAL = {"finetune", "causalmixft", "scm_emptydag", "scm_randomdag"}
SIZE_DEPENDENT = {"causalmixft", "scm_emptydag", "scm_randomdag"}
REAL_TRAIN = 204  # n_real_rows of every fixture run that trains on real rows


def answer_for(tmp_path, expected, metrics=("roc_auc",), groups=None):
    study = Study.from_params(expected, METHODS_WITH_REAL, SIZE_DEPENDENT, dataset_groups=groups, metrics=metrics)
    tables = build_tables(load_runs(with_budget(expected), grid_files(tmp_path, expected)), study)
    return {**tables, **answer_tables(tables, study)}


def write_grid(tmp_path, test_scores: dict, val_scores: dict | None = None) -> list:
    """test_scores[(method, size)][dataset] = test ROC-AUC per fold (one value: one fold); validation
    equals test unless val_scores gives it."""
    expected = []
    for (method, size), per_dataset in test_scores.items():
        for dataset, folds in per_dataset.items():
            for fold, test in enumerate(np.atleast_1d(folds)):
                val = test if val_scores is None else np.atleast_1d(val_scores[(method, size)][dataset])[fold]
                write_run(tmp_path, method, dataset, fold, size, [{"roc_auc": val}], [{"roc_auc": test}])
                expected.append((method, dataset, fold, size))
    return expected


def test_fitted_curve_peak_and_its_ratio_to_the_real_rows_by_hand(tmp_path):
    # Test ROC-AUC gains of causalmixft over finetune (0.70) at n = 64, 256, 1024 (log2 n = 6, 8, 10):
    #   D1 .00 .02 .00;  D2 .02 .04 .02;  D3 .01 .03 .01
    # Every dataset has the same sizes, so the pooled least-squares parabola goes through the means
    # (.01, .03, .01): fit(x) = .03 - .005 (x - 8)^2, peak at n = 256 = 256 / 204 real train rows.
    # Each resample's fit is the mean of its datasets' parabolas, all peaking at 256: the peak's
    # interval is one point, and the band at the peak is the bootstrap interval of the mean of
    # (.02, .04, .03), the same resamples as stats.bootstrap_mean_ci.
    gains = {"D1": (0.0, 0.02, 0.0), "D2": (0.02, 0.04, 0.02), "D3": (0.01, 0.03, 0.01)}
    scores = {("zeroshot", 0): {d: 0.6 for d in gains}, ("finetune", 0): {d: 0.7 for d in gains}}
    for i, size in enumerate((64, 256, 1024)):
        scores[("causalmixft", size)] = {d: 0.7 + g[i] for d, g in gains.items()}
    tables = answer_for(tmp_path, write_grid(tmp_path, scores))
    fit = tables["scaling_fit"]
    measured = fit[(fit["split"] == "test") & (fit["scale"] == "absolute") & (fit["subset"] == "all") & fit["measured"]]
    assert measured["size"].tolist() == pytest.approx([64, 256, 1024])
    assert measured["fit"].tolist() == pytest.approx([0.01, 0.03, 0.01])
    assert set(measured["degree"]) == {2}
    peak = cell(tables["scaling_peak"], group="all", subset="all", split="test", scale="absolute")
    assert (peak["peak_size"], peak["n_real_train"]) == pytest.approx((256, REAL_TRAIN))
    assert (peak["peak_ratio"], peak["ratio_ci_low"], peak["ratio_ci_high"]) == pytest.approx((256 / 204,) * 3)
    # A resample of the three datasets has mean .02 (all D1) or .04 (all D2) with probability
    # 1/27 = 3.7 % each, more than the 2.5 % in each tail: the 95 % band is [.02, .04].
    low, high = 0.02, 0.04
    assert (peak["peak_fit"], peak["peak_band_low"], peak["peak_band_high"]) == pytest.approx((0.03, low, high))
    assert peak["edge"] == "" and peak["n_datasets"] == 3
    # Normalized: % of finetune's 0.70, the same parabola scaled by 100 / 0.7.
    normalized = cell(tables["scaling_peak"], group="all", subset="all", split="test", scale="normalized")
    assert normalized["peak_fit"] == pytest.approx(100 * 0.03 / 0.7)
    # The Answer section prints these numbers with units and intervals: 256 / 204 = 1.25; 3 / 0.7 = 4.29 %.
    study = Study.from_params(
        list(
            tables["runs_long"][["method", "dataset", "fold", "size"]]
            .drop_duplicates()
            .itertuples(index=False, name=None)
        ),
        METHODS_WITH_REAL,
        SIZE_DEPENDENT,
    )
    text = "\n".join(render_answer(tables, study, lambda key: key))
    assert (
        f"peaks at n = 256 (1.25 [1.25, 1.25] x real), where real = the 204 real train rows; the fitted gain "
        f"there is +0.0300 [{low:+.4f}, {high:+.4f}] ROC-AUC (+4.29 % ["
    ) in text


def test_a_curve_still_rising_peaks_at_the_largest_size_and_one_size_has_no_peak(tmp_path):
    # Gains .01, .02 at n = 64, 256 on both datasets: two sizes give a line (degree 1), rising,
    # so its maximum is the largest size measured, and the table says so.
    scores = {
        ("zeroshot", 0): {"A": 0.6, "B": 0.6},
        ("finetune", 0): {"A": 0.7, "B": 0.8},
        ("causalmixft", 64): {"A": 0.71, "B": 0.81},
        ("causalmixft", 256): {"A": 0.72, "B": 0.82},
    }
    peak = cell(
        answer_for(tmp_path, write_grid(tmp_path, scores))["scaling_peak"],
        group="all",
        subset="all",
        split="test",
        scale="absolute",
    )
    assert (peak["degree"], peak["peak_size"], peak["peak_fit"], peak["edge"]) == (
        1,
        256,
        pytest.approx(0.02),
        "largest size",
    )
    one = {key: value for key, value in scores.items() if key != ("causalmixft", 256)}
    peak = cell(
        answer_for(tmp_path / "one", write_grid(tmp_path / "one", one))["scaling_peak"],
        group="all",
        subset="all",
        split="test",
        scale="absolute",
    )
    assert peak["degree"] == 0 and math.isnan(peak["peak_ratio"]) and peak["note"].startswith("one synthetic size")


def test_chance_by_a_t_interval_over_folds_and_the_fit_without_near_chance_datasets(tmp_path):
    # Test ROC-AUC over three folds. N: finetune .50 .52 .48 -> mean .50, SD .02,
    #   t(0.975, 2) = 4.3027 -> half-width 4.3027 x .02 / sqrt(3) = .04968: [.4503, .5497], not above .5;
    #   zeroshot .50 everywhere: [.50, .50], not above; causalmixft (chosen at n = 64) .51 .50 .49: not above.
    # Y: finetune .80 .82 .78 -> [.7503, .8497], above chance. N is "near chance".
    # Fits: gains over finetune at n = 64 / 256 are +.01 / +.02 on Y and -.01 / -.02 on N (fold means),
    #   so with N the line is flat (0) and without N it rises to +.02 at 256.
    scores = {
        ("zeroshot", 0): {"N": (0.5, 0.5, 0.5), "Y": (0.6, 0.6, 0.6)},
        ("finetune", 0): {"N": (0.5, 0.52, 0.48), "Y": (0.8, 0.82, 0.78)},
        ("causalmixft", 64): {"N": (0.49, 0.51, 0.47), "Y": (0.81, 0.83, 0.79)},
        ("causalmixft", 256): {"N": (0.48, 0.50, 0.46), "Y": (0.82, 0.84, 0.80)},
    }
    val = {
        key: {d: (0.9, 0.9, 0.9) if key == ("causalmixft", 64) else 0.1 + np.array(v) * 0 for d, v in per.items()}
        for key, per in scores.items()
    }
    tables = answer_for(tmp_path, write_grid(tmp_path, scores, val))
    chance = tables["chance"].set_index(["dataset", "method"])
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    row = chance.loc[("N", "finetune")]
    assert (row["n_folds"], row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (3, 0.5, 0.5 - half, 0.5 + half)
    )
    assert not row["above_chance"] and not chance.loc[("N", "zeroshot"), "above_chance"]
    assert chance.loc[("N", "causalmixft"), "mean"] == pytest.approx(0.49)  # at the validation-chosen n = 64
    assert chance.loc[("Y", "finetune"), "above_chance"]
    assert set(chance.loc["N", "dataset_status"]) == {"near chance"}
    assert set(chance.loc["Y", "dataset_status"]) == {"above chance"}
    peaks = tables["scaling_peak"]
    both = cell(peaks, subset="all", split="test", scale="absolute")
    assert both["n_datasets"] == 2 and both["peak_fit"] == pytest.approx(0.0, abs=1e-12)
    above = cell(peaks, subset="above_chance", split="test", scale="absolute")
    assert (above["n_datasets"], above["peak_size"], above["peak_fit"]) == (1, 256, pytest.approx(0.02))


def test_discovered_dag_against_controls_wilcoxon_and_holm_by_hand(tmp_path):
    # Six datasets, n = 64. causalmixft minus scm_emptydag: +.01 ... +.06, all positive: exact
    # two-sided Wilcoxon p = 2 / 2^6 = .03125. Minus scm_randomdag: +.01 -.02 +.03 -.04 +.05 -.06:
    # W+ = 1 + 3 + 5 = 9, W- = 12. One size: rows n = all and n = 64 hold the same differences, so the
    # Holm family (2 controls x 2 rows) has .03125 twice: adjusted max(4 x .03125, 3 x .03125) = .125.
    datasets = [f"D{i}" for i in range(1, 7)]
    scores = {
        ("zeroshot", 0): {d: 0.5 for d in datasets},
        ("finetune", 0): {d: 0.6 for d in datasets},
        ("causalmixft", 64): {d: 0.7 for d in datasets},
        ("scm_emptydag", 64): {d: 0.7 - 0.01 * (i + 1) for i, d in enumerate(datasets)},
        ("scm_randomdag", 64): {d: 0.7 - 0.01 * (i + 1) * (-1) ** i for i, d in enumerate(datasets)},
    }
    dag = answer_for(tmp_path, write_grid(tmp_path, scores))["dag_controls"]
    empty = cell(dag, control="scm_emptydag", size=64)
    assert (empty["n_better"], empty["n_worse"], empty["wilcoxon_p"]) == (6, 0, pytest.approx(2 / 64))
    assert empty["mean_difference"] == pytest.approx(0.035) and empty["median_difference"] == pytest.approx(0.035)
    assert empty["p_holm"] == pytest.approx(0.125) and not empty["significant"]
    random = cell(dag, control="scm_randomdag", size="all")
    assert (random["n_better"], random["n_worse"], random["wilcoxon_w"]) == (3, 3, 9)
    assert random["mean_difference"] == pytest.approx(-0.005)
    # Five datasets cannot reach alpha: the row says so instead of a p-value.
    five = {key: {d: v for d, v in per.items() if d != "D6"} for key, per in scores.items()}
    dag = answer_for(tmp_path / "five", write_grid(tmp_path / "five", five))["dag_controls"]
    assert cell(dag, control="scm_emptydag", size=64)["note"].startswith("too few datasets")


def test_size_selection_val_test_by_size_and_claims_by_hand(tmp_path):
    # causalmixft at n = 64 / 256 (val, test); finetune (n = 0) val .70 test .70; zeroshot .50 (val = test).
    #   A: 64 (.80, .60), 256 (.75, .80): validation picks 64, test 256 -> disagree, regret .20
    #   B: 64 (.70, .70), 256 (.80, .80): both pick 256 -> agree, regret 0
    #   C: 64 (.90, .90), 256 (.60, .60): both pick 64 -> agree, regret 0
    # agree: mean (0, 1, 1) = 2/3; regret mean (.2, 0, 0) = .2/3; n = 0 never chosen; chosen n per
    # dataset 64, 256, 64 -> median 64 / 204 real train rows.
    # Improvement over zeroshot (%), validation / test: n = 64: A (60, 20), B (40, 40), C (80, 80):
    #   ranks val (2, 1, 3), test (1, 2, 3): rho = 1 - 6 x 2 / 24 = .5;
    #   n = 256: A (50, 60), B (60, 60), C (20, 20): val ranks (2, 3, 1), test (2.5, 2.5, 1): rho = .866.
    #   n = 0 (finetune, 40 / 40 everywhere): constant, rho undefined.
    # Claims: finetune +40 % on every dataset -> median 40; causalmixft at its chosen size: A .60 -> +20,
    #   B .80 -> +60, C .90 -> +80: median +60.
    scores = {
        ("zeroshot", 0): {d: 0.5 for d in "ABC"},
        ("finetune", 0): {d: 0.7 for d in "ABC"},
        ("causalmixft", 64): {"A": 0.6, "B": 0.7, "C": 0.9},
        ("causalmixft", 256): {"A": 0.8, "B": 0.8, "C": 0.6},
    }
    val = {
        **scores,
        ("causalmixft", 64): {"A": 0.8, "B": 0.7, "C": 0.9},
        ("causalmixft", 256): {"A": 0.75, "B": 0.8, "C": 0.6},
    }
    tables = answer_for(tmp_path, write_grid(tmp_path, scores, val))
    selection = cell(tables["size_selection"], group="all", method="causalmixft")
    assert (selection["agree_mean"], selection["regret_mean"]) == pytest.approx((2 / 3, 0.2 / 3))
    assert (selection["zero_share"], selection["chosen_ratio_median"]) == pytest.approx((0.0, 64 / 204))
    by_size = tables["val_test_by_size"].set_index("size")
    assert by_size.loc[64, "spearman"] == pytest.approx(0.5)
    assert by_size.loc[256, "spearman"] == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(by_size.loc[0, "spearman"]) and by_size.loc[0, "source"] == "finetune"
    claims = tables["claims"].set_index("claim")["study"]
    assert claims.iloc[0] == pytest.approx(40.0) and claims.iloc[1] == pytest.approx(60.0)


def test_null_auc_se_is_the_mann_whitney_null_sd_and_its_multiclass_bound():
    # Binary 50/50: sqrt(101 / (12 x 50 x 50)) = .058022; both classes give the same value.
    assert null_auc_se([50, 50]) == pytest.approx(math.sqrt(101 / 30000))
    # Three classes 10/20/30 of 60: one-vs-rest SDs sqrt(61 / (12 x 10 x 50)), (12 x 20 x 40),
    # (12 x 30 x 30) = .100830, .079713, .075154; their mean .085232 bounds the macro mean's SD.
    expected = np.mean([math.sqrt(61 / (12 * a * (60 - a))) for a in (10, 20, 30)])
    assert null_auc_se([10, 20, 30]) == pytest.approx(expected) and expected == pytest.approx(0.085232, abs=1e-6)
    assert math.isnan(null_auc_se([40, 0]))  # one class present: no ROC-AUC


def test_chance_test_against_the_null_of_the_test_rows_with_holm_over_methods(tmp_path):
    # One fold is enough. A (one fold, test rows 50/50, null SD s = .058022): zeroshot .60 -> z = 1.7235,
    #   p = .04240; finetune .55 -> z = .86174, p = .19441; Holm over the two: .08480 and .19441, so
    #   neither is below .05 and A is "near chance" although .60 alone would pass.
    # B (two folds, 100/100 each: s = .040927 per fold, sqrt(2) s / 2 = .028940 for the mean):
    #   zeroshot .58 .60 -> z = 3.10993, p = .000936, Holm 2 x p = .001871: "above chance".
    scores = {
        ("zeroshot", 0): {"A": 0.60, "B": (0.58, 0.60)},
        ("finetune", 0): {"A": 0.55, "B": (0.52, 0.50)},
    }
    expected = write_grid(tmp_path, scores)
    study = Study.from_params(expected, METHODS_WITH_REAL, SIZE_DEPENDENT, metrics=("roc_auc",))
    tables = build_tables(load_runs(with_budget(expected), grid_files(tmp_path, expected)), study)
    counts = {("A", 0): [50, 50], ("B", 0): [100, 100], ("B", 1): [100, 100]}
    chance = answer_tables(tables, study, counts)["chance"].set_index(["dataset", "method"])
    a0, a1 = chance.loc[("A", "zeroshot")], chance.loc[("A", "finetune")]
    assert (a0["n_folds"], a0["null_se"], a0["z"]) == pytest.approx((1, 0.058022, 1.7235), abs=1e-4)
    assert (a0["p"], a1["p"]) == pytest.approx((0.04240, 0.19441), abs=1e-5)
    assert (a0["p_holm"], a1["p_holm"]) == pytest.approx((0.08480, 0.19441), abs=1e-5)
    assert math.isnan(a0["ci_low"])  # one fold: no t interval, the test still decides
    assert set(chance.loc["A", "dataset_status"]) == {"near chance"} and not chance.loc["A", "above_chance"].any()
    b0 = chance.loc[("B", "zeroshot")]
    assert (b0["null_se"], b0["z"], b0["p_holm"]) == pytest.approx((0.028940, 3.10993, 0.001871), abs=1e-5)
    assert b0["above_chance"] and not chance.loc[("B", "finetune"), "above_chance"]
    assert set(chance.loc["B", "dataset_status"]) == {"above chance"}
    # Without class counts one fold decides nothing: A is undetermined, B falls back to its t interval.
    fallback = answer_tables(tables, study)["chance"].drop_duplicates("dataset").set_index("dataset")
    assert fallback.loc["A", "dataset_status"] == "undetermined"


def test_test_class_counts_come_from_the_split_meta_and_a_bad_file_names_the_dataset(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"dataset": "D", "fold": 2, "counts": {"test": {"classes": {"0": 7, "1": 5}}}}))
    bad.write_text(json.dumps({"dataset": "E", "fold": 0, "counts": {}}))
    assert load_test_class_counts([good]) == {("D", 2): [7, 5]}
    with pytest.raises(StageError, match=r"\[aggregate\] E: .*bad.json: no test class counts"):
        load_test_class_counts([good, bad])
