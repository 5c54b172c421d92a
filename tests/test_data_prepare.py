"""Preparation: typing, label strings, constant columns, missing values, meta, and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import MANIFEST, TABARENA

from causalmixft.data.prepare import prepare_dataset, prepare_table, read_prepared, write_prepared
from causalmixft.data.schema import TARGET, TableSchema
from causalmixft.data.sources import RawTable
from causalmixft.errors import StageError

META_KEYS = {
    "dataset", "source", "source_sha256", "target", "original_target", "classes", "class_counts",
    "features", "n_rows", "n_features", "dropped_constant", "missing_policy", "warnings",
}
ENTRIES = {e["file"]: e for e in json.loads(MANIFEST.read_text())["datasets"]}


def tabarena(name):
    spec = {"source": f"file:{TABARENA / (name + '.csv.gz')}", "manifest": str(MANIFEST)}
    return prepare_dataset(name, spec)


def raw_table(tmp_path, frame, target="target", categorical=None):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"raw")
    return RawTable(frame, target, categorical, path)


@pytest.mark.parametrize("name", [e["tabarena_name"] for e in ENTRIES.values()])
def test_tabarena_files_prepare_as_the_manifest_describes(name):
    table, meta = tabarena(name)
    entry = ENTRIES[name + ".csv.gz"]
    assert set(meta) == META_KEYS
    assert meta["source_sha256"] == entry["sha256"]
    assert meta["n_rows"] == entry["rows"] == len(table)
    assert meta["class_counts"] == {str(k): v for k, v in entry["class_counts"].items()}
    assert meta["classes"] == sorted(meta["classes"])
    assert meta["n_features"] + len(meta["dropped_constant"]) == entry["n_features"]
    schema = TableSchema.from_meta(meta)
    assert set(schema.categorical) == set(entry["categorical_columns"]) - set(meta["dropped_constant"])
    assert list(table.columns) == schema.names + [TARGET]
    for feature in schema.features:
        column = table[feature.name]
        if feature.kind == "numeric":
            assert column.dtype == np.float64
        else:
            assert column.dtype == object and set(column.dropna()) == set(feature.levels)
            assert all(isinstance(v, str) for v in column.dropna())
    assert table[TARGET].map(type).eq(str).all()


def test_credit_g_codes_become_strings_and_integers_are_flagged():
    table, meta = tabarena("credit-g")
    schema = TableSchema.from_meta(meta)
    assert schema.feature("checking_status").levels == ("0", "1", "2", "3")
    assert schema.feature("duration_months").integer
    assert meta["classes"] == ["0", "1"] and meta["original_target"] == "target"


def test_anneal_drops_constant_columns_and_lists_them():
    table, meta = tabarena("anneal")
    assert meta["dropped_constant"] == ["product-type", "m", "marvi", "corr", "jurofm", "s", "p"]
    assert not set(meta["dropped_constant"]) & set(table.columns)


def test_types_are_inferred_without_a_declaration(tmp_path):
    frame = pd.DataFrame({
        "real": [0.5, 1.5, 2.5, 3.5],
        "count": [1, 2, 3, 40],
        "code": [1, 2, 1, 2],
        "flag": [True, False, True, True],
        "word": ["a", "b", "a", None],
        "target": [1.0, 2.0, 1.0, 2.0],
    })
    _, meta = prepare_table("t", raw_table(tmp_path, frame), source="file:t", max_integer_levels=2)
    kinds = {f["name"]: (f["type"], f["integer"], f.get("levels")) for f in meta["features"]}
    assert kinds == {
        "real": ("numeric", False, None),
        "count": ("numeric", True, None),
        "code": ("categorical", False, ["1", "2"]),
        "flag": ("categorical", False, ["False", "True"]),
        "word": ("categorical", False, ["a", "b"]),
    }
    assert meta["classes"] == ["1", "2"] and meta["warnings"] == []


def test_a_column_of_numbers_with_some_text_is_categorical_with_a_warning_in_meta_and_log(tmp_path, caplog):
    values = [str(v) for v in range(1, 18)] + ["n/a", "n/a", "unknown"]
    frame = pd.DataFrame({"dose": values, "word": ["a", "b"] * 10, "target": ["x", "y"] * 10})
    with caplog.at_level("WARNING", logger="causalmixft.data.prepare"):
        table, meta = prepare_table("mixed", raw_table(tmp_path, frame), source="file:mixed")
    assert table["dose"].dtype == object  # typed as before: the warning only reports it
    assert meta["warnings"] == [{
        "column": "dose", "problem": "mostly numbers with some text: typed categorical", "numeric_share": 0.85,
        "text_values": 3, "text_examples": ["n/a", "unknown"], "levels": 19,
    }]
    assert "[prepare] mixed: column 'dose' is mostly numbers (85% of its values) but 3 values are text" in caplog.text
    # a column the source declares categorical is meant as one: no warning
    _, declared = prepare_table("mixed", raw_table(tmp_path, frame, categorical=["dose", "word"]), source="file:mixed")
    assert declared["warnings"] == []


def test_more_classes_than_the_backbone_tells_apart_fail_at_prepare(tmp_path):
    frame = pd.DataFrame({"x": np.arange(24.0), "y": [f"c{i % 12}" for i in range(24)]})
    with pytest.raises(StageError, match=r"^\[prepare\] many: 12 classes, more than the 10 the backbone tells apart"):
        prepare_table("many", raw_table(tmp_path, frame, "y"), source="file:many", max_classes=10)
    _, meta = prepare_table("many", raw_table(tmp_path, frame, "y"), source="file:many", max_classes=12)
    assert len(meta["classes"]) == 12


def test_integer_rule_is_off_by_default(tmp_path):
    frame = pd.DataFrame({"code": [1, 2, 1, 2], "target": ["a", "b", "a", "b"]})
    _, meta = prepare_table("t", raw_table(tmp_path, frame), source="file:t")
    assert meta["features"] == [{"name": "code", "type": "numeric", "integer": True}]


def test_declared_categorical_floats_lose_their_decimal_point(tmp_path):
    frame = pd.DataFrame({"area": [415.0, 408.0, np.nan, 0.5], "target": ["a", "b", "a", "b"]})
    table, meta = prepare_table("t", raw_table(tmp_path, frame, categorical=["area"]), source="file:t")
    assert table["area"].tolist()[:2] == ["415", "408"] and pd.isna(table["area"][2])
    assert meta["features"][0]["levels"] == ["0.5", "408", "415"]


def test_missing_values_stay_nan_and_are_counted(tmp_path):
    frame = pd.DataFrame({
        "x": [1.0, np.nan, np.inf, 4.0],
        "c": ["u", None, "v", "u"],
        "target": ["a", "b", "a", "b"],
    })
    table, meta = prepare_table("t", raw_table(tmp_path, frame), source="file:t")
    assert table["x"].isna().tolist() == [False, True, True, False]
    assert table["c"].isna().tolist() == [False, True, False, False]
    assert meta["missing_policy"]["missing_per_feature"] == {"x": 2, "c": 1}
    assert "never imputed" in meta["missing_policy"]["rule"]
    assert meta["n_rows"] == 4


def test_missing_categorical_cells_stay_missing_through_the_schema_cast(tmp_path):
    # A split file or a synthetic sample is cast by the schema; a missing cell must not become the
    # level 'nan', which generators would learn and then drop every row that has it.
    frame = pd.DataFrame({"c": ["u", None, "v", "u"], "target": ["a", "b", "a", "b"]})
    table, meta = prepare_table("t", raw_table(tmp_path, frame), source="file:t")
    schema = TableSchema.from_meta(meta)
    for cast in (schema.cast(table), schema.cast(table.astype(object))):
        assert cast["c"].isna().tolist() == [False, True, False, False]
        assert "nan" not in set(cast["c"].dropna())


def test_column_with_one_value_and_missing_is_kept(tmp_path):
    frame = pd.DataFrame({"x": [1.0, np.nan, 1.0], "k": [7, 7, 7], "target": ["a", "b", "a"]})
    _, meta = prepare_table("t", raw_table(tmp_path, frame), source="file:t")
    assert [f["name"] for f in meta["features"]] == ["x"] and meta["dropped_constant"] == ["k"]


def test_written_table_reads_back_with_schema_dtypes(tmp_path):
    table, meta = tabarena("anneal")
    write_prepared(table, meta, tmp_path / "a.parquet", tmp_path / "a.meta.json")
    again, schema, meta_again = read_prepared(tmp_path / "a.parquet", tmp_path / "a.meta.json")
    assert meta_again == json.loads(json.dumps(meta))
    pd.testing.assert_frame_equal(again, table)
    assert schema.classes == tuple(meta["classes"])


def test_sklearn_source_prepares():
    table, meta = prepare_dataset("wine", {"source": "sklearn:wine"})
    assert table.shape == (178, 14) and meta["classes"] == ["class_0", "class_1", "class_2"]


@pytest.mark.parametrize("frame, target, message", [
    (pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "label", r"target column 'label' not found; columns are \['x', 'y'\]"),
    (pd.DataFrame({"x": [1, 2, 3], "y": ["a", "a", "a"]}), "y", r"a single class 'a': classification needs at least two"),
    (pd.DataFrame({"x": [1, 2, 3], "y": ["a", None, np.nan]}), "y", r"2 rows have a missing label \(target column 'y'\)"),
    (pd.DataFrame({"x": [1, 1, 1], "y": ["a", "b", "a"]}), "y", r"no feature column is left after dropping constant"),
    (pd.DataFrame({"x": [], "y": []}), "y", r"the source has no rows"),
    (pd.DataFrame({"target": [1, 2], "y": ["a", "b"]}), "y", r"feature column 'target' clashes"),
])
def test_bad_tables_name_dataset_and_stage(tmp_path, frame, target, message):
    with pytest.raises(StageError, match=r"^\[prepare\] bad: " + message):
        prepare_table("bad", raw_table(tmp_path, frame, target), source="file:bad")


def test_bad_input_leaves_no_output(tmp_path):
    """A failing dataset raises before anything is written (the script writes only afterwards)."""
    path = tmp_path / "one_class.csv"
    pd.DataFrame({"x": [1, 2, 3], "target": ["a", "a", "a"]}).to_csv(path, index=False)
    with pytest.raises(StageError, match=r"^\[prepare\] one_class: a single class"):
        prepare_dataset("one_class", {"source": f"file:{path}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one_class.csv"]
