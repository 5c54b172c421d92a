"""The answer's statistics (analysis/effects.py) on hand-made runs with answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causalmixft.analysis import effects

ANALYSIS = effects.Analysis(equivalence_margin=0.05, alpha=0.05, power=0.8, min_datasets=5)


def long_rows(method, dataset, fold, replicate, value, size=0, budget=64, split="test", metric="roc_auc"):
    return {"real_budget": budget, "method": method, "dataset": dataset, "fold": fold, "replicate": replicate,
            "size": size, "n_real_rows": 51, "split": split, "metric": metric, "value": value}


def paired(diffs, budget=64):
    rows = []
    for i, d in enumerate(diffs):
        rows.append(long_rows("finetune", f"d{i}", 0, 0, 0.70, budget=budget))
        rows.append(long_rows("causalmixft", f"d{i}", 0, 0, 0.70 + d, size=51, budget=budget))
    return pd.DataFrame(rows)


def test_a_paired_effect_over_five_datasets_has_its_hand_computed_interval_test_mde_and_tost():
    table = effects.effects(paired([0.01, 0.02, 0.03, 0.04, 0.05]), ANALYSIS)
    row = table.iloc[0]
    # mean 0.03; sd = sqrt(sum((d - 0.03)^2) / 4) = sqrt(0.001 / 4) = 0.0158114; se = sd / sqrt(5) = 0.00707107
    assert row["mean_diff"] == pytest.approx(0.03)
    assert row["sd_diff"] == pytest.approx(0.0158114, rel=1e-5)
    # t_{0.975, 4} = 2.776445: half width 0.0196324
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.0103676, rel=1e-5), pytest.approx(0.0496324, rel=1e-5))
    # t = 0.03 / 0.00707107 = 4.24264 on 4 df: two-sided p = 0.013236; one test in the family, Holm = p
    assert row["p_value"] == pytest.approx(0.013236, rel=1e-3) and row["p_holm"] == row["p_value"]
    # MDE = (t_{0.975,4} + t_{0.8,4}) * se = (2.776445 + 0.940965) * 0.00707107 = 0.0262866
    assert row["mde"] == pytest.approx(0.0262866, rel=1e-4)
    # TOST at +-0.05: upper one-sided t = (0.03 - 0.05) / se = -2.828427, P(T4 <= -2.828) = 0.023710
    assert row["tost_p"] == pytest.approx(0.023710, rel=1e-3)
    assert row["verdict"] == "better" and (row["n_better"], row["n_worse"]) == (5, 0)
    assert row["size_ratio"] == pytest.approx(1.0)  # 51 synthetic rows / 51 real train rows


def test_a_null_effect_inside_the_margin_is_called_equivalent_and_a_wide_one_inconclusive():
    narrow = effects.effects(paired([-0.002, 0.001, 0.0, 0.002, -0.001]), ANALYSIS).iloc[0]
    assert narrow["p_holm"] > 0.05 and narrow["tost_p"] < 0.05 and narrow["verdict"] == "equivalent within +-0.05"
    wide = effects.effects(paired([-0.2, 0.15, 0.05, -0.1, 0.12]), ANALYSIS).iloc[0]
    assert wide["verdict"] == "inconclusive" and wide["mde"] > 0.05


def test_fewer_than_five_datasets_give_no_interval_or_test():
    row = effects.effects(paired([0.01, 0.02, 0.03, 0.04]), ANALYSIS).iloc[0]
    assert row["verdict"] == effects.TOO_FEW and row["n_datasets"] == 4
    assert all(pd.isna(row[c]) for c in ("ci_low", "ci_high", "p_value", "p_holm", "mde", "mde_holm", "tost_p",
                                          "tost_p_holm"))


def test_holm_runs_once_over_the_family_of_every_budget_method_and_size():
    frame = pd.concat([paired([0.01, 0.02, 0.03, 0.04, 0.05], budget=64),
                       paired([0.01, 0.02, 0.03, 0.04, 0.05], budget=256)], ignore_index=True)
    table = effects.effects(frame, ANALYSIS)
    assert len(table) == 2 and table["family"].nunique() == 1
    # two equal p values in one family: Holm multiplies the smaller by 2 and keeps the running max
    assert table["p_holm"].tolist() == pytest.approx([2 * 0.013236] * 2, rel=1e-3)


def test_replicates_then_folds_then_datasets_weigh_each_level_equally():
    rows = []
    for i in range(5):
        rows += [long_rows("finetune", f"d{i}", f, r, 0.5) for f in (0, 1) for r in (0, 1)]
        # dataset d0: fold 0 has replicates gaining 0.10 and 0.00 (mean 0.05), fold 1 one replicate gaining 0.01
        gains = {(0, 0): 0.10, (0, 1): 0.00, (1, 0): 0.01} if i == 0 else {(f, r): 0.02 for f in (0, 1) for r in (0, 1)}
        rows += [long_rows("causalmixft", f"d{i}", f, r, 0.5 + g, size=51) for (f, r), g in gains.items()]
    per_dataset = effects.dataset_differences(pd.DataFrame(rows))
    d0 = per_dataset[per_dataset["dataset"] == "d0"]["diff"].iloc[0]
    # folds: (0.10 + 0.00) / 2 = 0.05 and 0.01; dataset: 0.03 (a flat mean of the 3 replicates would be 0.0367)
    assert d0 == pytest.approx(0.03)


def test_equivalence_is_holm_corrected_over_the_family_and_the_mde_is_given_at_holms_first_level():
    # two cells of one family (budgets 64 and 256) with the same near-null differences: each TOST p
    # is p0; Holm doubles the smaller (running max: both 2 x p0)
    diffs = [-0.03, 0.02, 0.0, 0.03, -0.02]
    frame = pd.concat([paired(diffs, budget=64), paired(diffs, budget=256)], ignore_index=True)
    table = effects.effects(frame, ANALYSIS)
    single = effects.effects(paired(diffs), ANALYSIS).iloc[0]
    p0 = single["tost_p"]  # mean 0, se = 0.0114018: t = 0.05 / se = 4.3853 on 4 df, p = 0.005913
    assert p0 == pytest.approx(0.005913, rel=1e-3) and single["tost_p_holm"] == p0
    assert table["tost_p_holm"].tolist() == pytest.approx([2 * p0] * 2)
    # MDE at Holm's first step, alpha / 2: (t_{1-0.0125,4} + t_{0.8,4}) x se = (3.495406 + 0.940965) x se
    se = float(np.std(diffs, ddof=1) / math.sqrt(5))
    assert table["mde_holm"].tolist() == pytest.approx([(3.495406 + 0.940965) * se] * 2, rel=1e-5)
    assert single["mde_holm"] == pytest.approx(single["mde"])  # a family of one: no correction


def test_a_cell_equivalent_alone_is_inconclusive_once_holm_counts_the_family():
    # se = 0.0202485: TOST t = 0.05 / se = 2.46932 on 4 df, p = 0.03450 alone (< 0.05); with a second
    # equal cell in the family Holm gives 2 x 0.03450 = 0.0690 > 0.05
    diffs = [-0.05, 0.04, 0.0, 0.05, -0.04]
    alone = effects.effects(paired(diffs), ANALYSIS).iloc[0]
    assert alone["tost_p"] == pytest.approx(0.03450, rel=1e-3) and alone["verdict"].startswith("equivalent")
    frame = pd.concat([paired(diffs, budget=64), paired(diffs, budget=256)], ignore_index=True)
    both = effects.effects(frame, ANALYSIS)
    assert (both["tost_p_holm"] > 0.05).all() and (both["verdict"] == "inconclusive").all()
    assert not both["equivalent"].astype(bool).any()


def test_only_the_metric_the_margin_was_fixed_for_gets_an_equivalence_test():
    # the same near-null accuracy differences: no margin was fixed for accuracy, so no TOST
    frame = paired([-0.002, 0.001, 0.0, 0.002, -0.001]).assign(metric="accuracy")
    row = effects.effects(frame, ANALYSIS).iloc[0]
    assert pd.isna(row["tost_p"]) and pd.isna(row["tost_p_holm"]) and row["verdict"] == "inconclusive"
    assert row["mde"] > 0  # the MDE is given for every metric
    assert effects.Analysis(equivalence_margin=0.01).margin_text() == "+-0.01 ROC-AUC"


def test_the_size_ratio_is_one_per_cell_where_datasets_differ_in_their_train_rows():
    # a table short of the budget has fewer real train rows: the cell's ratio is the median over runs
    frame = paired([0.01, 0.02, 0.03, 0.04, 0.05])
    frame.loc[(frame["dataset"] == "d0") & (frame["method"] == "finetune"), "n_real_rows"] = 17
    table = effects.effects(frame, ANALYSIS)
    assert len(table) == 1 and table.iloc[0]["size_ratio"] == pytest.approx(1.0)  # median of 3, 1, 1, 1, 1


def test_a_run_whose_real_validation_score_is_undefined_drops_out_instead_of_pairing_its_selection_set():
    rows = []
    for i in range(5):
        real = float("nan") if i == 0 else 0.81
        rows += [long_rows("finetune", f"d{i}", 0, 0, 0.80, split="val"),
                 long_rows("causalmixft_synthval", f"d{i}", 0, 0, 0.60, size=51, split="val"),
                 long_rows("causalmixft_synthval", f"d{i}", 0, 0, real, size=51, split="val_real")]
    row = effects.effects(pd.DataFrame(rows), ANALYSIS).iloc[0]
    assert row["n_datasets"] == 4 and row["mean_diff"] == pytest.approx(0.01)  # d0's 0.60 - 0.80 is not in


def test_the_mde_shrinks_with_the_square_root_of_the_datasets():
    assert effects.mde(0.02, 5, 0.05, 0.8) == pytest.approx((2.776445 + 0.940965) * 0.02 / math.sqrt(5), rel=1e-5)
    assert effects.mde(0.02, 1, 0.05, 0.8) != effects.mde(0.02, 1, 0.05, 0.8)  # NaN: one dataset has no SD


def test_the_chosen_size_stands_beside_a_random_choice_and_always_n0():
    rows = []
    for i in range(5):
        for size, val, test in ((0, 0.70, 0.72), (64, 0.80, 0.70), (256, 0.75, 0.74)):
            method = "finetune" if size == 0 else "causalmixft"
            rows += [long_rows(method, f"d{i}", 0, 0, val, size=size, split="val"),
                     long_rows(method, f"d{i}", 0, 0, test, size=size, split="test")]
    candidates = effects.selection_candidates(pd.DataFrame(rows), ["causalmixft"])
    row = effects.size_selection([candidates], ANALYSIS).iloc[0]
    # validation picks 64 (0.80), test's best is 256 (0.74): no agreement, regret 0.74 - 0.70 = 0.04
    assert (row["agree"], row["regret"]) == (0.0, pytest.approx(0.04))
    # a random candidate hits the best 1 time in 3; its regret is mean(0.02, 0.04, 0) = 0.02; n = 0 gives 0.02
    assert row["agree_random"] == pytest.approx(1 / 3) and row["regret_random"] == pytest.approx(0.02)
    assert row["regret_zero"] == pytest.approx(0.02) and row["n_datasets"] == 5
    assert row["regret_ci_low"] == pytest.approx(0.04) and row["note"] == ""  # no spread: a point interval


def test_a_size_equal_to_the_test_best_up_to_float_noise_agrees_and_has_no_regret():
    # validation picks 64, whose test score equals 256's up to 1e-16 (the same weights averaged in
    # another order): that is agreement with zero regret, not a miss of 1e-16
    rows = []
    for i in range(5):
        for size, val, test in ((0, 0.70, 0.20), (64, 0.80, 0.1 + 0.2), (256, 0.75, 0.3)):
            method = "finetune" if size == 0 else "causalmixft"
            rows += [long_rows(method, f"d{i}", 0, 0, val, size=size, split="val"),
                     long_rows(method, f"d{i}", 0, 0, test, size=size, split="test")]
    assert 0.1 + 0.2 != 0.3
    row = effects.size_selection([effects.selection_candidates(pd.DataFrame(rows), ["causalmixft"])], ANALYSIS).iloc[0]
    assert row["agree"] == 1.0 and row["regret"] == 0.0 and row["agree_random"] == pytest.approx(2 / 3)


def test_the_intervals_of_agreement_and_regret_stay_inside_their_ranges():
    # 4 datasets where validation picks the test-best size (agree 1, regret 0), 1 where it misses by 0.04:
    # mean agreement 0.8, t interval 0.8 +- 2.776 x 0.4472 / sqrt(5) = [0.245, 1.355] -> [0.245, 1];
    # mean regret 0.008, 0.008 +- 2.776 x 0.01789 / sqrt(5) = [-0.0142, 0.0302] -> [0, 0.0302]
    rows = []
    for i in range(5):
        best_test = 0.74 if i == 0 else 0.70  # d0: validation's pick (64) is 0.04 below the test-best (256)
        for size, val, test in ((0, 0.70, 0.60), (64, 0.80, 0.70), (256, 0.75, best_test)):
            method = "finetune" if size == 0 else "causalmixft"
            rows += [long_rows(method, f"d{i}", 0, 0, val, size=size, split="val"),
                     long_rows(method, f"d{i}", 0, 0, test, size=size, split="test")]
    candidates = effects.selection_candidates(pd.DataFrame(rows), ["causalmixft"])
    row = effects.size_selection([candidates], ANALYSIS).iloc[0]
    assert row["agree"] == pytest.approx(0.8) and row["regret"] == pytest.approx(0.008)
    assert row["agree_ci_low"] == pytest.approx(0.8 - 2.776445 * 0.4472136 / math.sqrt(5), rel=1e-5)
    assert row["agree_ci_high"] == 1.0 and row["regret_ci_low"] == 0.0
    assert row["regret_ci_high"] == pytest.approx(0.008 + 2.776445 * 0.0178885 / math.sqrt(5), rel=1e-5)


def test_without_plain_fine_tuning_there_is_nothing_to_pair_and_no_size_to_choose():
    # zeroshot and causalmixft at one size: no finetune run, so no difference and no n = 0 candidate
    rows = [long_rows("zeroshot", f"d{i}", 0, 0, 0.7) for i in range(5)]
    rows += [long_rows("causalmixft", f"d{i}", 0, 0, 0.72, size=16, split=split) for i in range(5)
             for split in ("val", "test")]
    frame = pd.DataFrame(rows)
    assert effects.effects(frame, ANALYSIS).empty
    candidates = effects.selection_candidates(frame, ["causalmixft"])
    table = effects.size_selection([candidates], ANALYSIS)
    assert table.empty and list(table.columns) == effects.SELECTION_COLUMNS


def test_validation_gains_pair_the_real_validation_rows_of_a_run_that_chose_on_scm_rows():
    # finetune scores 0.80 on the real validation rows; causalmixft_synthval 0.81 on the same rows
    # (val_real) and 0.60 on its selection set (val: real + SCM rows, what chose its step).
    rows = []
    for i in range(5):
        rows += [long_rows("finetune", f"d{i}", 0, 0, 0.80, split="val"),
                 long_rows("causalmixft_synthval", f"d{i}", 0, 0, 0.60, size=51, split="val"),
                 long_rows("causalmixft_synthval", f"d{i}", 0, 0, 0.81, size=51, split="val_real")]
    long = pd.DataFrame(rows)
    table = effects.effects(long, ANALYSIS).set_index("split")
    assert list(table.index) == ["val"]  # one validation row: val_real is not a split of its own
    assert table.loc["val", "mean_diff"] == pytest.approx(0.01)  # 0.81 - 0.80, not 0.60 - 0.80
    # the size choice still reads the set that chose (n = 0, finetune's, has only the real rows)
    candidates = effects.selection_candidates(long, ["causalmixft_synthval"]).set_index("size")
    assert candidates.loc[51, "val"].tolist() == [pytest.approx(0.60)] * 5
    assert candidates.loc[0, "val"].tolist() == [pytest.approx(0.80)] * 5


def test_source_groups_are_tested_apart_in_holm_families_of_their_own():
    # tabarena: d0-d4, gains 0.01..0.05 (as the first test: p = 0.013236); tabmwp: d5-d7, 3 datasets
    frame = pd.concat([paired([0.01, 0.02, 0.03, 0.04, 0.05]),
                       paired([0.0, 0.0, 0.0]).replace({"dataset": {"d0": "d5", "d1": "d6", "d2": "d7"}})])
    groups = {"tabarena": ["d0", "d1", "d2", "d3", "d4"], "tabmwp": ["d5", "d6", "d7"]}
    table = effects.effects(frame, ANALYSIS, groups=groups).set_index("group")
    assert list(table.index) == ["all", "tabarena", "tabmwp"]
    assert table.loc["all", "n_datasets"] == 8 and table.loc["all", "mean_diff"] == pytest.approx(0.15 / 8)
    assert table.loc["tabarena", "mean_diff"] == pytest.approx(0.03)
    # one cell per family: Holm leaves each p as it is, and no group's test enters another's family
    assert table.loc["tabarena", "p_holm"] == pytest.approx(0.013236, rel=1e-3)
    assert table.loc["tabarena", "family"] == "vs finetune: test roc_auc (tabarena)"
    assert table.loc["all", "family"] == "vs finetune: test roc_auc"
    assert table.loc["tabmwp", "verdict"] == effects.TOO_FEW and np.isnan(table.loc["tabmwp", "ci_low"])
    assert effects.overall(table.reset_index())["group"].tolist() == ["all"]
