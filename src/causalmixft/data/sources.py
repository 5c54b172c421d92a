"""Dataset sources: where a raw table comes from.

A dataset's config entry names its source as ``kind:argument``:

- ``sklearn:<name>``: a dataset bundled with scikit-learn (:data:`SKLEARN_DATASETS`);
- ``file:<path>``: a local csv, csv.gz, parquet, arff or arff.gz file;
- ``openml:<task_id>``: an OpenML task (for example a TabArena task), downloaded once into
  ``<cache_dir>/openml`` by the ``openml`` package and read from that cache afterwards.

Each kind is one loader function in :data:`LOADERS`. A loader turns a :class:`Source` into a
:class:`RawTable`: the table as the source has it, which column holds the label, which
columns the source declares categorical, and the file whose sha256 identifies the data.
Typing and cleaning are not a loader's business (see :mod:`causalmixft.data.prepare`), so a
new source is one function plus one entry in :data:`LOADERS`.
"""

from __future__ import annotations

import gzip
import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from causalmixft.data.schema import TARGET
from causalmixft.data.tabmwp.tables import load_task
from causalmixft.errors import StageError

STAGE = "prepare"
log = logging.getLogger(__name__)

# Strings read as missing from text files; everything else (e.g. "NA", "None") is a value.
CSV_MISSING = ["", "?", "NaN", "nan"]


@dataclass(frozen=True)
class Source:
    """One dataset's source, parsed from its config entry."""

    dataset: str
    kind: str
    argument: str
    target: str | None = None  # label column; None: the source's own (or the manifest's)
    manifest: Path | None = None  # JSON manifest describing file: sources
    cache_dir: Path = Path(".cache")  # downloads go to <cache_dir>/<kind>

    @classmethod
    def from_spec(cls, dataset: str, spec: Mapping[str, Any], cache_dir: str | Path = ".cache") -> "Source":
        """Parse a config entry ``{source: kind:argument, target?, manifest?}``."""
        text = spec.get("source")
        if not isinstance(text, str) or ":" not in text:
            raise StageError(STAGE, dataset, f"source must read 'kind:argument', got {text!r}")
        kind, argument = text.split(":", 1)
        if kind not in LOADERS:
            raise StageError(
                STAGE, dataset, f"unknown source kind {kind!r} in {text!r}; known kinds: {', '.join(sorted(LOADERS))}"
            )
        if not argument:
            raise StageError(STAGE, dataset, f"source {text!r} names no {kind} dataset")
        manifest = spec.get("manifest")
        return cls(
            dataset=dataset,
            kind=kind,
            argument=argument,
            target=spec.get("target"),
            manifest=Path(manifest) if manifest else None,
            cache_dir=Path(cache_dir),
        )

    def fail(self, problem: str) -> StageError:
        return StageError(STAGE, self.dataset, problem)


@dataclass
class RawTable:
    """A table as its source has it, before typing and cleaning."""

    frame: pd.DataFrame
    target: str  # name of the label column in ``frame``
    categorical: list[str] | None  # columns the source declares categorical; None: infer types
    source_file: Path  # the file whose sha256 identifies the data


def dataset_spec(datasets: Mapping[str, Mapping[str, Any]], dataset: str) -> Mapping[str, Any]:
    """The config entry of ``dataset``, or a StageError naming the configured ones."""
    if dataset not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        raise StageError(STAGE, dataset, f"unknown dataset: not in the config's datasets (configured: {known})")
    return datasets[dataset]


def load_source(dataset: str, spec: Mapping[str, Any], cache_dir: str | Path = ".cache") -> RawTable:
    """Load the raw table of one dataset from its config entry."""
    source = Source.from_spec(dataset, spec, cache_dir)
    raw = LOADERS[source.kind](source)
    log.info("%s: loaded %d rows x %d columns from %s", dataset, *raw.frame.shape, spec["source"])
    return raw


# --- sklearn -----------------------------------------------------------------------------

# name -> the file scikit-learn ships it in (hashed as the dataset's source file)
SKLEARN_DATASETS = {
    "breast_cancer": "breast_cancer.csv",
    "digits": "digits.csv.gz",
    "iris": "iris.csv",
    "wine": "wine_data.csv",
}


def load_sklearn(source: Source) -> RawTable:
    """A classification dataset bundled with scikit-learn; labels are its ``target_names``."""
    if source.argument not in SKLEARN_DATASETS:
        raise source.fail(
            f"unknown sklearn dataset {source.argument!r}; known: {', '.join(sorted(SKLEARN_DATASETS))}"
        )
    datasets = importlib.import_module("sklearn.datasets")
    bunch = getattr(datasets, f"load_{source.argument}")(as_frame=True)
    frame = bunch.data.copy()
    frame[TARGET] = np.asarray(bunch.target_names).astype(str)[bunch.target.to_numpy()]
    data_dir = Path(datasets.__file__).parent / "data"
    return RawTable(frame, source.target or TARGET, None, data_dir / SKLEARN_DATASETS[source.argument])


# --- file --------------------------------------------------------------------------------


def load_file(source: Source) -> RawTable:
    """A local table; types and label from a matching manifest entry when there is one.

    A manifest (like ``resources/tabarena/MANIFEST.json``) lists entries with ``file``,
    ``target_column`` and ``categorical_columns``; the entry whose ``file`` is this file's
    name applies. Without one, ARFF nominal attributes are the declared categoricals and
    other formats leave typing to inference.
    """
    path = Path(source.argument)
    if not path.is_file():
        raise source.fail(f"source file {path} does not exist")
    reader = _reader_for(path)
    if reader is None:
        raise source.fail(f"cannot read {path}: unsupported file type (use csv, csv.gz, parquet, arff, arff.gz)")
    try:
        frame, declared = reader(path)
    except Exception as exc:  # any parser failure is the file's problem, reported as such
        raise source.fail(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    entry = _manifest_entry(source, path) if source.manifest else None
    if entry is not None:
        declared = list(entry.get("categorical_columns", []))
        missing = [c for c in declared if c not in frame.columns]
        if missing:
            raise source.fail(f"manifest {source.manifest} lists categorical columns not in {path}: {missing}")
    target = source.target or (entry or {}).get("target_column") or TARGET
    return RawTable(frame, target, declared, path)


def _reader_for(path: Path) -> Callable[[Path], tuple[pd.DataFrame, list[str] | None]] | None:
    name = path.name.lower()
    for suffix, reader in FILE_READERS.items():
        if name.endswith(suffix):
            return reader
    return None


def _read_csv(path: Path) -> tuple[pd.DataFrame, None]:
    # Every column as text first: pandas would turn true/false into booleans and lose the source's
    # spelling (jm1's labels are 'false'/'true'); numbers are then parsed column by column.
    # The header as written: pandas renames a repeated name (x0, x0.1) without a word.
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"column names given twice: {repeated}; rename them so each column has one name")
    frame = pd.read_csv(path, keep_default_na=False, na_values=CSV_MISSING, dtype=str, low_memory=False)
    return frame.apply(_numbers_or_text), None


def _numbers_or_text(column: pd.Series) -> pd.Series:
    """The column as numbers when every non-missing value is one, else unchanged text."""
    parsed = pd.to_numeric(column, errors="coerce")
    return parsed if parsed.notna().sum() == column.notna().sum() else column


def _read_parquet(path: Path) -> tuple[pd.DataFrame, None]:
    return pd.read_parquet(path), None


def _read_arff(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """ARFF via liac-arff (handles string attributes, unlike scipy.io.arff); '?' is missing."""
    import arff  # liac-arff

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt") as handle:
        decoded = arff.load(handle)
    names = [name for name, _ in decoded["attributes"]]
    frame = pd.DataFrame(decoded["data"], columns=names)
    numeric = [name for name, kind in decoded["attributes"] if kind in ARFF_NUMERIC]
    for name in numeric:
        frame[name] = pd.to_numeric(frame[name])
    return frame, [name for name in names if name not in numeric]


ARFF_NUMERIC = ("NUMERIC", "REAL", "INTEGER")

# file name suffix -> reader returning (frame, declared categorical columns or None)
FILE_READERS: dict[str, Callable[[Path], tuple[pd.DataFrame, list[str] | None]]] = {
    ".csv.gz": _read_csv,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".arff.gz": _read_arff,
    ".arff": _read_arff,
}


def _manifest_entry(source: Source, path: Path) -> dict | None:
    try:
        manifest = json.loads(Path(source.manifest).read_text())
        entries = manifest["datasets"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise source.fail(f"cannot read manifest {source.manifest}: {type(exc).__name__}: {exc}") from exc
    for entry in entries:
        if entry.get("file") == path.name:
            return entry
    log.warning("%s: no entry for %s in manifest %s; inferring types", source.dataset, path.name, source.manifest)
    return None


# --- openml ------------------------------------------------------------------------------


def load_openml(source: Source) -> RawTable:
    """An OpenML task's dataset with the task's target; OpenML's feature types are declared."""
    try:
        task_id = int(source.argument)
    except ValueError:
        raise source.fail(f"openml source needs an integer task id, got {source.argument!r}") from None
    openml = _import_openml(source)
    cache = source.cache_dir / "openml"
    openml.config.set_root_cache_directory(str(cache.resolve()))
    try:
        task = openml.tasks.get_task(task_id)
        dataset = task.get_dataset()
        features, labels, categorical, names = dataset.get_data(target=task.target_name)
    except Exception as exc:  # network, server and cache failures all mean: no data
        raise source.fail(
            f"cannot get OpenML task {task_id} (offline, or not in the cache {cache}?): {type(exc).__name__}: {exc}"
        ) from exc
    frame = features.copy()
    frame[task.target_name] = labels
    files = [Path(f) for f in (dataset.parquet_file, dataset.data_file) if f and Path(f).is_file()]
    if not files:
        raise source.fail(f"OpenML task {task_id}: the openml package left no data file in {cache}")
    declared = [name for name, is_categorical in zip(names, categorical) if is_categorical]
    return RawTable(frame, source.target or task.target_name, declared, files[0])


def _import_openml(source: Source):
    try:
        return importlib.import_module("openml")
    except ImportError as exc:
        raise source.fail(
            "the openml package is not installed; install it (pip install 'causalmixft[openml]') "
            "or use a file: or sklearn: source"
        ) from exc


# --- tabmwp ------------------------------------------------------------------------------


def load_tabmwp(source: Source) -> RawTable:
    """A classification task derived from TabMWP: ``tabmwp:<task>[@<folder>|@upstream]``.

    See :func:`causalmixft.data.tabmwp.tables.load_task` and docs/tabmwp.md.
    """
    try:
        frame, categorical, path = load_task(source.dataset, source.argument, source.cache_dir)
    except (OSError, ValueError) as exc:  # a TabmwpError is a ValueError
        raise source.fail(f"tabmwp:{source.argument}: {exc}") from exc
    return RawTable(frame, TARGET, categorical, path)


LOADERS: dict[str, Callable[[Source], RawTable]] = {
    "file": load_file,
    "openml": load_openml,
    "sklearn": load_sklearn,
    "tabmwp": load_tabmwp,
}
