"""Splits: outer stratified folds, capped test set, stratified real budget, seeds and errors."""

import numpy as np
import pandas as pd
import pytest
from conftest import MANIFEST, TABARENA

from causalmixft.data.prepare import prepare_dataset, read_prepared, write_prepared
from causalmixft.data.schema import TARGET
from causalmixft.data.splits import PARTS, Protocol, _allocate, make_split, write_split
from causalmixft.errors import StageError
from causalmixft.seeding import derive_seed

PROTOCOL = Protocol(n_folds=3, real_budget=256, val_fraction=0.2, seed=0, test_max_rows=500)


@pytest.fixture(scope="module")
def anneal():
    """898 rows, five classes, the rarest with 8 rows."""
    spec = {"source": f"file:{TABARENA / 'anneal.csv.gz'}", "manifest": str(MANIFEST)}
    return prepare_dataset("anneal", spec)[0]


def toy(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"x": np.arange(len(labels), dtype=float), TARGET: labels})


def test_parts_are_disjoint_sized_and_stratified(anneal):
    split = make_split("anneal", anneal, 1, PROTOCOL)
    rows = {part: set(split.meta["rows"][part]) for part in PARTS}
    assert not (rows["train"] & rows["val"] or rows["train"] & rows["test"] or rows["val"] & rows["test"])
    counts = split.meta["counts"]
    assert (counts["train"]["n"], counts["val"]["n"]) == (205, 51)
    assert counts["test"]["n"] == split.meta["test_fold_rows"] in (299, 300)  # 898 / 3, below the cap
    classes = sorted(anneal[TARGET].unique())
    for part in PARTS:
        assert sorted(counts[part]["classes"]) == classes  # even the 8-row class is everywhere
    share = anneal[TARGET].value_counts(normalize=True)
    for label, n in counts["train"]["classes"].items():
        assert abs(n - share[label] * 205) <= 1.5


def test_parts_are_the_listed_rows_of_the_table(anneal):
    split = make_split("anneal", anneal, 0, PROTOCOL)
    for part in PARTS:
        expected = anneal.iloc[split.meta["rows"][part]].reset_index(drop=True)
        pd.testing.assert_frame_equal(split.parts[part], expected)
        assert split.meta["counts"][part]["n"] == len(split.parts[part])


def test_test_folds_partition_the_rows(anneal):
    protocol = Protocol(n_folds=3, real_budget=256, val_fraction=0.2)
    tests = [set(make_split("anneal", anneal, fold, protocol).meta["rows"]["test"]) for fold in range(3)]
    assert set.union(*tests) == set(range(len(anneal)))
    assert sum(map(len, tests)) == len(anneal)


def test_test_cap_is_stratified_and_keeps_every_class(anneal):
    split = make_split("anneal", anneal, 2, Protocol(n_folds=3, real_budget=256, val_fraction=0.2, test_max_rows=50))
    assert split.meta["counts"]["test"]["n"] == 50
    assert len(split.meta["counts"]["test"]["classes"]) == 5


def test_seeds_are_derived_and_results_reproducible(anneal):
    first, again = (make_split("anneal", anneal, 1, PROTOCOL) for _ in range(2))
    assert first.meta == again.meta
    assert first.meta["seeds"] == {
        "outer": derive_seed("anneal", "outer", 0),
        "test": derive_seed("anneal", 1, "test", 0),
        "budget": derive_seed("anneal", 1, "budget", 0),
        "val": derive_seed("anneal", 1, "val", 0),
    }
    other = make_split("anneal", anneal, 1, Protocol(n_folds=3, real_budget=256, val_fraction=0.2, seed=1))
    assert other.meta["rows"]["train"] != first.meta["rows"]["train"]


def test_rows_are_shuffled_not_in_source_order(anneal):
    train = make_split("anneal", anneal, 0, PROTOCOL).meta["rows"]["train"]
    assert train != sorted(train)


def test_written_split_keeps_the_prepared_dtypes(tmp_path, anneal):
    table, meta = prepare_dataset("anneal", {"source": f"file:{TABARENA / 'anneal.csv.gz'}", "manifest": str(MANIFEST)})
    write_prepared(table, meta, tmp_path / "t.parquet", tmp_path / "t.meta.json")
    table, schema, _ = read_prepared(tmp_path / "t.parquet", tmp_path / "t.meta.json")
    split = make_split("anneal", table, 0, PROTOCOL)
    paths = {part: tmp_path / f"{part}.parquet" for part in PARTS}
    write_split(split, paths, tmp_path / "meta.json")
    for part in PARTS:
        again = schema.cast(pd.read_parquet(paths[part]))
        pd.testing.assert_frame_equal(again, split.parts[part])
        assert list(again.dtypes) == list(table.dtypes)


def test_protocol_from_config_ignores_the_fold_list():
    config = {"n_folds": 3, "folds": [0, 1], "real_budget": 10, "val_fraction": 0.2, "seed": 4, "test_max_rows": None}
    assert Protocol.from_config(config) == Protocol(3, 10, 0.2, 4, None)


@pytest.mark.parametrize("counts, protocol, fold, message", [
    ({"a": 50, "b": 2}, Protocol(3, 20, 0.2), 0, r"classes with fewer rows than n_folds=3 \(each test fold needs one\): \{'b': 2\}"),
    ({"a": 50, "b": 50}, Protocol(5, 81, 0.2), 0, r"100 rows are fewer than real_budget=81 plus one test fold \(up to 20 rows"),
    ({"a": 50, "b": 50}, Protocol(3, 20, 0.2), 3, r"fold 3 is out of range for n_folds=3"),
    ({"a": 50, "b": 50}, Protocol(3, 4, 0.1), 0, r"real_budget=4 with val_fraction=0.1 gives 4 train and 0 validation rows"),
    ({"a": 50, "b": 50, "c": 50}, Protocol(3, 4, 0.5), 0, r"real_budget=4 with val_fraction=0.5 gives 2 train and 2 validation rows; .* one train row per class \(3 classes\)"),
])
def test_bad_protocols_name_dataset_and_stage(counts, protocol, fold, message):
    with pytest.raises(StageError, match=r"^\[split\] toy: " + message):
        make_split("toy", toy(counts), fold, protocol)


def test_budget_of_exactly_the_pool_works():
    split = make_split("toy", toy({"a": 50, "b": 50}), 0, Protocol(5, 80, 0.25))
    assert split.meta["counts"]["train"]["n"] == 60 and split.meta["counts"]["val"]["n"] == 20


def test_rare_class_always_reaches_train():
    table = toy({"a": 500, "b": 3})
    for fold in range(3):
        split = make_split("toy", table, fold, Protocol(3, 40, 0.2))
        assert split.meta["counts"]["train"]["classes"].get("b", 0) >= 1


@pytest.mark.parametrize("seed", range(20))
def test_allocation_respects_total_and_bounds(seed):
    rng = np.random.default_rng(seed)
    available = rng.integers(1, 60, size=rng.integers(2, 8))
    n = int(rng.integers(len(available), available.sum() - len(available) + 1))
    lower, upper = np.ones_like(available), np.maximum(available - 1, 1)
    take = _allocate(available, n, lower, upper)
    assert take.sum() == n and np.all(take >= lower) and np.all(take <= upper)
    assert np.all(np.abs(take - n * available / available.sum()) < 2)


def test_smaller_budgets_are_nested_in_larger_ones_and_share_the_test_rows(anneal):
    splits = {b: make_split("anneal", anneal, 1, Protocol(3, b, 0.2, 0, 500)) for b in (32, 128, 512)}
    rows = {b: split.meta["rows"] for b, split in splits.items()}
    assert rows[32]["test"] == rows[128]["test"] == rows[512]["test"]
    for small, large in ((32, 128), (128, 512)):
        for part in ("train", "val"):
            assert set(rows[small][part]) < set(rows[large][part]), (small, large, part)
    # 32 rows: round(0.2 * 32) = 6 validation, 26 train; all five classes of anneal in train
    assert (len(rows[32]["train"]), len(rows[32]["val"])) == (26, 6)
    assert len(splits[32].meta["counts"]["train"]["classes"]) == 5
    # a budget's rows do not depend on which other budgets run: the same split made alone
    assert make_split("anneal", anneal, 1, Protocol(3, 128, 0.2, 0, 500)).meta["rows"] == rows[128]


def test_every_prefix_of_the_stratified_order_is_within_one_row_per_class_of_its_share():
    from causalmixft.data.splits import stratified_order

    labels = np.array(["a"] * 70 + ["b"] * 25 + ["c"] * 5)
    order = stratified_order(np.arange(100), labels, np.random.default_rng(3))
    assert sorted(order) == list(range(100)) and set(labels[order[:3]]) == {"a", "b", "c"}
    for m in range(3, 101):
        counts = {c: int((labels[order[:m]] == c).sum()) for c in "abc"}
        # the first row of each class is moved to the front: at most one row above, 1 + 1 below its share
        assert all(-2 < counts[c] - m * share <= 2 for c, share in (("a", 0.7), ("b", 0.25), ("c", 0.05))), (m, counts)
