"""Source registry: sklearn, file (csv, csv.gz, parquet, arff) and openml loaders, and their errors."""

import gzip
import json
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from conftest import MANIFEST, TABARENA

from causalmixft.data import sources
from causalmixft.data.sources import LOADERS, Source, dataset_spec, load_source
from causalmixft.errors import StageError


def test_registry_has_the_built_in_source_kinds():
    assert {"file", "openml", "sklearn"} <= set(LOADERS)


@pytest.mark.parametrize("name, shape, classes", [
    ("iris", (150, 5), {"setosa", "versicolor", "virginica"}),
    ("wine", (178, 14), {"class_0", "class_1", "class_2"}),
    ("breast_cancer", (569, 31), {"malignant", "benign"}),
    ("digits", (1797, 65), {str(d) for d in range(10)}),
])
def test_sklearn_datasets_load_with_named_labels(name, shape, classes):
    raw = load_source(name, {"source": f"sklearn:{name}"})
    assert raw.frame.shape == shape
    assert set(raw.frame[raw.target]) == classes
    assert raw.categorical is None
    assert raw.source_file.is_file()


def test_file_source_takes_target_and_categoricals_from_the_manifest():
    raw = load_source("credit-g", {"source": f"file:{TABARENA / 'credit-g.csv.gz'}", "manifest": str(MANIFEST)})
    entry = next(e for e in json.loads(MANIFEST.read_text())["datasets"] if e["file"] == "credit-g.csv.gz")
    assert raw.frame.shape == (1000, 21)
    assert raw.target == entry["target_column"]
    assert raw.categorical == entry["categorical_columns"]


def test_file_source_without_manifest_entry_leaves_typing_to_inference(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"a": [1, 2], "label": ["x", "y"]}).to_csv(path, index=False)
    raw = load_source("other", {"source": f"file:{path}", "target": "label", "manifest": str(MANIFEST)})
    assert raw.categorical is None and raw.target == "label"


def test_csv_missing_markers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,target\n1,,x\n?,NA,y\nNaN,u,x\n")
    frame = load_source("t", {"source": f"file:{path}"}).frame
    assert frame["a"].isna().tolist() == [False, True, True]
    assert frame["b"].tolist()[1] == "NA" and pd.isna(frame["b"].iloc[0])


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_a_column_name_given_twice_is_an_error_not_a_renamed_column(tmp_path, name):
    path = tmp_path / name
    text = "x0,x1,x0,target\n1,2,3,a\n4,5,6,b\n"
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    # (pandas alone renames the second x0 to x0.1 without a word)
    with pytest.raises(StageError, match=rf"^\[prepare\] t: cannot read {path}: .*column names given twice: \['x0'\]"):
        load_source("t", {"source": f"file:{path}"})


def test_parquet_and_gzipped_csv_give_the_same_frame(tmp_path):
    frame = pd.DataFrame({"x": [1.5, 2.0, None], "c": ["a", None, "b"], "target": ["p", "q", "p"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    from_parquet = load_source("t", {"source": f"file:{tmp_path / 't.parquet'}"}).frame
    from_csv = load_source("t", {"source": f"file:{tmp_path / 't.csv.gz'}"}).frame
    pd.testing.assert_frame_equal(from_parquet.fillna(-1), from_csv.fillna(-1))


ARFF = """@relation toy
@attribute width numeric
@attribute colour {red, green}
@attribute note string
@attribute class {yes, no}
@data
1.5, red, 'a b', yes
?, green, c, no
3, ?, d, yes
"""


@pytest.mark.parametrize("suffix", [".arff", ".arff.gz"])
def test_arff_nominal_and_string_attributes_are_declared_categorical(tmp_path, suffix):
    path = tmp_path / f"toy{suffix}"
    opener = gzip.open if suffix.endswith(".gz") else open
    with opener(path, "wt") as handle:
        handle.write(ARFF)
    raw = load_source("toy", {"source": f"file:{path}", "target": "class"})
    assert raw.categorical == ["colour", "note", "class"]
    assert raw.frame["width"].dtype == "float64" and raw.frame["width"].isna().sum() == 1
    assert raw.frame["colour"].isna().sum() == 1


def test_openml_loader_uses_the_task_target_types_and_cache(tmp_path, monkeypatch):
    data_file = tmp_path / "dataset.pq"
    data_file.write_bytes(b"cached")
    calls = {}
    features = pd.DataFrame({"f1": [1.0, 2.0, 3.0], "f2": pd.Categorical(["a", "b", "a"])})
    dataset = types.SimpleNamespace(
        parquet_file=str(data_file),
        data_file=None,
        get_data=lambda target: (features, pd.Series(["no", "yes", "no"], name=target), [False, True], ["f1", "f2"]),
    )
    task = types.SimpleNamespace(target_name="Outcome", get_dataset=lambda: dataset)

    def get_task(task_id):
        calls["task"] = task_id
        return task

    def set_root_cache_directory(path):
        calls["cache"] = path

    fake = types.SimpleNamespace(
        config=types.SimpleNamespace(set_root_cache_directory=set_root_cache_directory),
        tasks=types.SimpleNamespace(get_task=get_task),
    )
    monkeypatch.setattr(sources, "_import_openml", lambda source: fake)
    raw = load_source("toy", {"source": "openml:363629"}, cache_dir=tmp_path / "cache")
    assert calls == {"task": 363629, "cache": str((tmp_path / "cache" / "openml").resolve())}
    assert raw.target == "Outcome" and raw.categorical == ["f2"]
    assert list(raw.frame.columns) == ["f1", "f2", "Outcome"]
    assert raw.source_file == data_file


def test_openml_offline_is_a_clear_error(monkeypatch, tmp_path):
    def offline(task_id):
        raise ConnectionError("Name or service not known")

    fake = types.SimpleNamespace(
        config=types.SimpleNamespace(set_root_cache_directory=lambda path: None),
        tasks=types.SimpleNamespace(get_task=offline),
    )
    monkeypatch.setattr(sources, "_import_openml", lambda source: fake)
    with pytest.raises(StageError, match=r"\[prepare\] kc1: cannot get OpenML task 363 \(offline.*ConnectionError"):
        load_source("kc1", {"source": "openml:363"}, cache_dir=tmp_path)


def test_openml_not_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "openml", None)  # makes `import openml` raise ImportError
    with pytest.raises(StageError, match=r"\[prepare\] kc1: the openml package is not installed"):
        load_source("kc1", {"source": "openml:363"})


def test_openml_is_imported_only_when_used():
    code = "import sys, causalmixft.data.prepare, causalmixft.data.splits; print('openml' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("spec, message", [
    ({"source": "kaggle:titanic"}, r"unknown source kind 'kaggle' in 'kaggle:titanic'; known kinds: file, openml, "),
    ({"source": "no-colon"}, r"source must read 'kind:argument', got 'no-colon'"),
    ({"source": "file:"}, r"source 'file:' names no file dataset"),
    ({"source": "sklearn:boston"}, r"unknown sklearn dataset 'boston'; known: breast_cancer, digits, iris, wine"),
    ({"source": "openml:abc"}, r"openml source needs an integer task id, got 'abc'"),
    ({"source": "file:/nonexistent/x.csv"}, r"source file /nonexistent/x.csv does not exist"),
])
def test_bad_sources_name_dataset_and_stage(spec, message):
    with pytest.raises(StageError, match=r"^\[prepare\] ds: " + message):
        load_source("ds", spec)


def test_unknown_dataset_lists_the_configured_ones():
    with pytest.raises(StageError, match=r"^\[prepare\] nope: unknown dataset: .*\(configured: a, b\)"):
        dataset_spec({"b": {}, "a": {}}, "nope")


@pytest.mark.parametrize("name, content", [
    ("broken.csv.gz", b"this is not gzip"),
    ("broken.parquet", b"PAR1 garbage"),
    ("broken.arff", b"@relation x\n@attribute a numeric\n@data\nnot-a-number\n"),
    ("broken.xlsx", b""),
])
def test_unreadable_files_are_a_clear_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(StageError, match=rf"^\[prepare\] ds: cannot read {path}"):
        load_source("ds", {"source": f"file:{path}"})


def test_manifest_listing_absent_columns_is_an_error(tmp_path):
    path = tmp_path / "credit-g.csv.gz"  # matches the manifest's credit-g entry, but other columns
    pd.DataFrame({"a": [1], "target": [0]}).to_csv(path, index=False)
    with pytest.raises(StageError, match=r"^\[prepare\] ds: manifest .* lists categorical columns not in"):
        load_source("ds", {"source": f"file:{path}", "manifest": str(MANIFEST)})


def test_source_spec_parses_target_and_manifest():
    source = Source.from_spec("d", {"source": "file:a/b.csv", "target": "y", "manifest": "m.json"}, cache_dir="c")
    assert (source.kind, source.argument, source.target) == ("file", "a/b.csv", "y")
    assert source.manifest == Path("m.json") and source.cache_dir == Path("c")
