"""The fitted curve and the chance test (analysis/fitted.py) on hand-made metric files; expected values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_aggregate import cell
from test_aggregate_fixtures import grid_files, with_budget, write_run

from causalmixft.analysis.aggregate import build_tables
from causalmixft.analysis.collect import load_runs, load_test_class_counts
from causalmixft.analysis.fitted import fitted_tables, null_auc_se
from causalmixft.analysis.study import Study
from causalmixft.errors import StageError

METHODS_WITH_REAL = {"finetune", "causalmixft", "scm_emptydag", "scm_randomdag"}
SIZE_DEPENDENT = {"causalmixft", "scm_emptydag", "scm_randomdag"}


def fitted_for(tmp_path, expected, metrics=("roc_auc",), groups=None):
    # bands from 2 datasets on, to check their arithmetic on hand-made grids (the study's minimum: test_aggregate_report)
    study = Study.from_params(expected, METHODS_WITH_REAL, SIZE_DEPENDENT, dataset_groups=groups, metrics=metrics,
                              min_datasets=2)
    tables = build_tables(load_runs(with_budget(expected), grid_files(tmp_path, expected)), study)
    return {**tables, **fitted_tables(tables, study)}


def fit_at(fit, size, subset="all", scale="absolute"):
    """The fitted curve's row at a measured size (test ROC-AUC, group all)."""
    rows = fit[(fit["split"] == "test") & (fit["scale"] == scale) & (fit["subset"] == subset) & fit["measured"]]
    return cell(rows, size=size)


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


def test_fitted_curve_and_its_band_by_hand(tmp_path):
    # Test ROC-AUC gains of causalmixft over finetune (0.70) at n = 64, 256, 1024 (log2 n = 6, 8, 10):
    #   D1 .00 .02 .00;  D2 .02 .04 .02;  D3 .01 .03 .01
    # Every dataset has the same sizes, so the pooled least-squares parabola goes through the means
    # (.01, .03, .01): fit(x) = .03 - .005 (x - 8)^2. Each resample's fit is the mean of its datasets'
    # parabolas, so the band at n = 256 is the bootstrap interval of the mean of (.02, .04, .03).
    gains = {"D1": (0.0, 0.02, 0.0), "D2": (0.02, 0.04, 0.02), "D3": (0.01, 0.03, 0.01)}
    scores = {("zeroshot", 0): {d: 0.6 for d in gains}, ("finetune", 0): {d: 0.7 for d in gains}}
    for i, size in enumerate((64, 256, 1024)):
        scores[("causalmixft", size)] = {d: 0.7 + g[i] for d, g in gains.items()}
    fit = fitted_for(tmp_path, write_grid(tmp_path, scores))["scaling_fit"]
    assert [fit_at(fit, n)["fit"] for n in (64, 256, 1024)] == pytest.approx([0.01, 0.03, 0.01])
    assert set(fit["degree"]) == {2} and set(fit["n_datasets"]) == {3}
    # 33 log2-spaced sizes from 6 to 10 hold the measured 6, 8 and 10: 33 rows per curve
    assert len(fit[(fit["split"] == "test") & (fit["scale"] == "absolute") & (fit["subset"] == "all")]) == 33
    # A resample of the three datasets has mean .02 (all D1) or .04 (all D2) with probability
    # 1/27 = 3.7 % each, more than the 2.5 % in each tail: the 95 % band at 256 is [.02, .04].
    top = fit_at(fit, 256)
    assert (top["band_low"], top["band_high"]) == pytest.approx((0.02, 0.04))
    # Normalized: % of finetune's 0.70, the same parabola scaled by 100 / 0.7.
    assert fit_at(fit, 256, scale="normalized")["fit"] == pytest.approx(100 * 0.03 / 0.7)


def test_two_sizes_fit_a_line_and_one_size_a_constant(tmp_path):
    # Gains .01, .02 at n = 64, 256 on both datasets: two sizes give a line (degree 1) through them.
    scores = {
        ("zeroshot", 0): {"A": 0.6, "B": 0.6},
        ("finetune", 0): {"A": 0.7, "B": 0.8},
        ("causalmixft", 64): {"A": 0.71, "B": 0.81},
        ("causalmixft", 256): {"A": 0.72, "B": 0.82},
    }
    fit = fitted_for(tmp_path, write_grid(tmp_path, scores))["scaling_fit"]
    assert (fit_at(fit, 64)["degree"], fit_at(fit, 64)["fit"], fit_at(fit, 256)["fit"]) == (
        1, pytest.approx(0.01), pytest.approx(0.02))
    one = {key: value for key, value in scores.items() if key != ("causalmixft", 256)}
    fit = fitted_for(tmp_path / "one", write_grid(tmp_path / "one", one))["scaling_fit"]
    assert (fit_at(fit, 64)["degree"], fit_at(fit, 64)["fit"]) == (0, pytest.approx(0.01))


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
    tables = fitted_for(tmp_path, write_grid(tmp_path, scores, val))
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
    fit = tables["scaling_fit"]
    both = fit_at(fit, 256)
    assert both["n_datasets"] == 2 and both["fit"] == pytest.approx(0.0, abs=1e-12)
    above = fit_at(fit, 256, subset="above_chance")
    assert (above["n_datasets"], above["fit"]) == (1, pytest.approx(0.02))


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
    chance = fitted_tables(tables, study, counts)["chance"].set_index(["dataset", "method"])
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
    fallback = fitted_tables(tables, study)["chance"].drop_duplicates("dataset").set_index("dataset")
    assert fallback.loc["A", "dataset_status"] == "undetermined"


def test_test_class_counts_come_from_the_split_meta_and_a_bad_file_names_the_dataset(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"dataset": "D", "fold": 2, "counts": {"test": {"classes": {"0": 7, "1": 5}}}}))
    bad.write_text(json.dumps({"dataset": "E", "fold": 0, "counts": {}}))
    assert load_test_class_counts([good]) == {("D", 2): [7, 5]}
    with pytest.raises(StageError, match=r"\[aggregate\] E: .*bad.json: no test class counts"):
        load_test_class_counts([good, bad])
