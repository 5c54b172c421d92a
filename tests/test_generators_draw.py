"""Nested samples, casting back to the schema, label matching, and generators that misbehave."""

import numpy as np
import pandas as pd
import pytest

from causalmixft.causal import simulate
from causalmixft.generators.cast import ObservedDomain, cast_to_schema
from causalmixft.generators.causalmixft import CausalMixFTGenerator
from causalmixft.generators.draw import SamplingSettings, label_matched_order, sample_synthetic
from causalmixft.generators.protocol import Generator
from causalmixft.generators.registry import make_generator
from causalmixft.data.schema import TARGET
from causalmixft.errors import StageError


@pytest.fixture(scope="module")
def mixed_fit():
    table = simulate.mixed(300, seed=1)
    generator = CausalMixFTGenerator(quality="fast", dataset="mixed").fit(table.frame, table.schema, seed=0)
    return table, generator


class ScriptedGenerator:
    """A generator whose raw rows are a function of (n, seed): for testing the generic sampling."""

    name = "scripted"

    def __init__(self, make_rows):
        self.make_rows = make_rows
        self.requests = []

    def fit(self, train, schema, seed):
        return self

    def sample(self, n, seed):
        self.requests.append(n)
        return self.make_rows(n, np.random.default_rng(seed))

    def report(self):
        return {"generator": self.name}


def test_the_generator_implements_the_protocol_and_is_registered(mixed_fit):
    _, generator = mixed_fit
    assert isinstance(generator, Generator)
    assert isinstance(ScriptedGenerator(None), Generator)
    assert isinstance(make_generator("causalmixft", quality="fast"), CausalMixFTGenerator)
    with pytest.raises(ValueError, match="unknown generator"):
        make_generator("no_such_generator")
    report = generator.report()
    assert report["generator"] == "causalmixft" and report["scm"]["quality"] == "fast"
    assert {e["source"] for e in report["discovery"]["edges"]} <= set(mixed_fit[0].frame.columns)


def test_sizes_are_nested_prefixes_of_one_draw(mixed_fit):
    table, generator = mixed_fit
    draw = sample_synthetic(generator, table.frame, table.schema, [0, 64, 256, 1024], seed=5)
    samples = draw.samples()
    assert sorted(samples) == [64, 256, 1024]
    for small, large in [(64, 256), (256, 1024)]:
        pd.testing.assert_frame_equal(samples[small], samples[large].iloc[:small].reset_index(drop=True))
    assert [len(samples[n]) for n in (64, 256, 1024)] == [64, 256, 1024]
    assert draw.info["dropped"]["total"] == 0 and draw.info["drawn"] >= 1024


def test_a_size_is_the_same_rows_whichever_larger_sizes_are_drawn(mixed_fit):
    # The workflow samples each size in its own job; adding a larger size must not change a smaller one.
    table, generator = mixed_fit
    alone = sample_synthetic(generator, table.frame, table.schema, [64], seed=5).rows
    with_larger = sample_synthetic(generator, table.frame, table.schema, [64, 600], seed=5).prefix(64)
    pd.testing.assert_frame_equal(alone, with_larger)
    unmatched = SamplingSettings(match_label_distribution=False)
    alone = sample_synthetic(generator, table.frame, table.schema, [100], seed=5, options=unmatched).rows
    larger = sample_synthetic(generator, table.frame, table.schema, [2000], seed=5, options=unmatched).prefix(100)
    pd.testing.assert_frame_equal(alone, larger)


def test_same_seed_same_rows_other_seed_other_rows(mixed_fit):
    table, generator = mixed_fit
    first = sample_synthetic(generator, table.frame, table.schema, [128], seed=5).rows
    second = sample_synthetic(generator, table.frame, table.schema, [128], seed=5).rows
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(sample_synthetic(generator, table.frame, table.schema, [128], seed=6).rows)


def test_rows_follow_the_schema(mixed_fit):
    table, generator = mixed_fit
    rows = sample_synthetic(generator, table.frame, table.schema, [500], seed=1).rows
    assert list(rows.columns) == list(table.frame.columns)
    assert dict(rows.dtypes) == dict(table.frame.dtypes)
    assert (rows["count"] == np.round(rows["count"])).all()
    for name in ("size", "weight", "count"):
        assert table.frame[name].min() <= rows[name].min() and rows[name].max() <= table.frame[name].max()
    assert set(rows["colour"]) <= set(table.frame["colour"])


def test_every_prefix_keeps_the_train_label_shares(mixed_fit):
    table, generator = mixed_fit
    rows = sample_synthetic(generator, table.frame, table.schema, [1000], seed=2).rows
    shares = table.frame[TARGET].value_counts(normalize=True)
    is_one = (rows[TARGET] == "1").to_numpy()
    prefix_counts = np.cumsum(is_one)
    k = np.arange(1, len(rows) + 1)
    assert np.abs(prefix_counts - shares["1"] * k).max() <= 1.0


def test_label_matched_order_interleaves_and_lets_others_fill_in():
    labels = np.array(["a"] * 10 + ["b"] * 2)
    order = label_matched_order(labels, ["a", "b"], np.array([0.5, 0.5]), 8)
    assert list(labels[order]) == ["a", "b", "a", "b", "a", "a", "a", "a"]
    assert len(set(order)) == 8 and list(order[labels[order] == "a"]) == [0, 1, 2, 3, 4, 5]


def _mixed_rows_with_problems(n, rng, table):
    rows = table.frame.sample(n, replace=True, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
    rows.loc[::10, "size"] = np.inf
    rows.loc[1::10, "colour"] = "purple"
    rows.loc[2::10, "weight"] = 1e6
    rows.loc[3::10, "count"] = 2.4
    rows.loc[4::10, "grade"] = None
    return rows


def test_cast_drops_and_counts_invalid_rows_and_clips_and_rounds():
    table = simulate.mixed(200, seed=2)
    domain = ObservedDomain.from_train(table.frame, table.schema)
    raw = _mixed_rows_with_problems(100, np.random.default_rng(0), table)
    clean, dropped = cast_to_schema(raw, table.schema, domain, clip_to_observed=True)
    assert dropped == {"non_finite": 20, "unknown_level": 10, "total": 30}
    assert len(clean) == 70
    assert clean["weight"].max() == table.frame["weight"].max()
    assert (clean["count"] == np.round(clean["count"])).all()
    unclipped, _ = cast_to_schema(raw, table.schema, domain, clip_to_observed=False)
    assert unclipped["weight"].max() == 1e6


def test_cast_maps_float_levels_and_keeps_all_missing_columns_missing():
    frame = pd.DataFrame({"code": ["1", "2", "1", "2"], "empty": [np.nan] * 4, TARGET: ["0", "1", "0", "1"]})
    schema = simulate.schema_for(frame, categorical=["code"])
    domain = ObservedDomain.from_train(frame, schema)
    raw = pd.DataFrame({"code": [1.0, 2.0, 3.0], "empty": [0.0, 0.0, 0.0], TARGET: ["0", "1", "1"]})
    clean, dropped = cast_to_schema(raw, schema, domain)
    assert list(clean["code"]) == ["1", "2"] and clean["empty"].isna().all()
    assert dropped["unknown_level"] == 1


def test_more_rows_are_drawn_when_many_are_invalid():
    table = simulate.mixed(200, seed=3)
    generator = ScriptedGenerator(lambda n, rng: _mixed_rows_with_problems(n, rng, table))
    draw = sample_synthetic(generator, table.frame, table.schema, [256], seed=0)
    assert len(draw.rows) == 256 and draw.info["rounds"] >= 2 and len(generator.requests) == draw.info["rounds"]
    assert draw.info["dropped"]["total"] > 0 and draw.info["drawn"] == sum(generator.requests)


def test_a_class_the_generator_rarely_yields_is_chased_then_reported_short():
    table = simulate.chain(200, seed=4)

    def mostly_zeros(n, rng):
        rows = table.frame.sample(n, replace=True, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
        rows[TARGET] = np.where(rng.random(n) < 0.01, "1", "0")
        return rows

    generator = ScriptedGenerator(mostly_zeros)
    draw = sample_synthetic(generator, table.frame, table.schema, [400], seed=0)
    assert len(draw.rows) == 400
    wanted = round(400 * (table.frame[TARGET] == "1").mean())
    got = int((draw.rows[TARGET] == "1").sum())
    assert draw.info["rounds"] > 1 and got > 400 * 0.05
    assert draw.info["label_shortfall"] in ({}, {"1": wanted - got})
    unmatched = sample_synthetic(
        generator, table.frame, table.schema, [400], seed=0, options=SamplingSettings(match_label_distribution=False)
    )
    assert unmatched.info["rounds"] < draw.info["rounds"] and (unmatched.rows[TARGET] == "1").mean() < 0.05


def test_a_generator_that_gives_only_invalid_rows_is_a_stage_error():
    table = simulate.chain(100, seed=5)

    def nans(n, rng):
        return table.frame.sample(n, replace=True, random_state=0).assign(a=np.nan)

    with pytest.raises(StageError, match=r"\[sample\] chain: .*0 valid rows of the 64"):
        sample_synthetic(ScriptedGenerator(nans), table.frame, table.schema, [64], seed=0, dataset="chain")
    with pytest.raises(StageError, match="lacks the columns"):
        sample_synthetic(
            ScriptedGenerator(lambda n, rng: pd.DataFrame({"a": [1.0] * n})),
            table.frame,
            table.schema,
            [8],
            seed=0,
            dataset="chain",
        )
    with pytest.raises(StageError, match=">= 0"):
        sample_synthetic(ScriptedGenerator(nans), table.frame, table.schema, [-1], seed=0, dataset="chain")


def test_size_zero_only_draws_nothing():
    table = simulate.chain(100, seed=6)
    generator = ScriptedGenerator(lambda n, rng: table.frame)
    draw = sample_synthetic(generator, table.frame, table.schema, [0], seed=0)
    assert draw.samples() == {} and generator.requests == []


def _awkward_tables():
    """The inputs the issue names: each must give valid samples (or a StageError, tested elsewhere)."""
    base = simulate.mixed(200, seed=11).frame
    rng = np.random.default_rng(0)
    constant = base.assign(weight=2.5)
    twins = base.assign(count=base["size"])  # an exact copy under another name
    all_categorical = base[["colour", "grade", TARGET]]
    single = base[["size", TARGET]]
    two_rows = base.copy()
    two_rows.loc[:1, TARGET] = "rare"
    missing = base.copy()
    missing.loc[rng.random(200) < 0.2, "size"] = np.nan
    missing.loc[rng.random(200) < 0.2, "grade"] = np.nan
    return {
        "constant": constant,
        "twins": twins,
        "all_categorical": all_categorical,
        "single_feature": single,
        "class_with_two_rows": two_rows,
        "missing_values": missing,
    }


@pytest.mark.parametrize("case", sorted(_awkward_tables()))
def test_awkward_tables_give_valid_samples_end_to_end(case):
    frame = _awkward_tables()[case]
    categorical = [c for c in ("colour", "grade") if c in frame.columns]
    schema = simulate.schema_for(frame, categorical=categorical, dataset=case)
    generator = CausalMixFTGenerator(quality="fast", dataset=case).fit(frame, schema, seed=0)
    rows = sample_synthetic(generator, frame, schema, [100], seed=0).rows
    assert len(rows) == 100 and list(rows.columns) == list(frame.columns)
    assert not rows.isna().any().any()
    assert set(rows[TARGET]) <= set(frame[TARGET])
    if case == "class_with_two_rows":
        assert (rows[TARGET] == "rare").sum() == 1  # 2/200 of 100 rows, matched
    if case == "constant":
        assert (rows["weight"] == 2.5).all()
    if case == "twins":
        assert np.corrcoef(rows["size"], rows["count"])[0, 1] > 0.95
