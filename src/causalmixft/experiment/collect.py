"""Read what the aggregate stage summarises: run metrics, fidelity reports and benchmark files.

Only absence counts as missing: a run that failed or a generator that could not fit leaves no
``metrics.json``. A file that exists but does not fit the contract is a bug upstream, so it
raises instead of being reported as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from causalmixft import layout
from causalmixft.errors import StageError
from causalmixft.experiment.methods import Method, method_sizes
from causalmixft.io import read_json

RunKey = tuple[str, str, int, int]  # (method, dataset, fold, size)

SPLITS = ("val", "test")
RUN_FIELDS = (
    "backbone",
    "method",
    "dataset",
    "fold",
    "size",
    "n_real_rows",
    "n_synthetic_rows",
    "device",
    "wall_time_s",
)
# Per fine-tuning replicate (metrics.json ``replicates``): one row of runs_long per replicate.
REPLICATE_FIELDS = ("replicate", "seed", "steps_run", "selected_step", "stop_reason", "real_share")
MISSING_COLUMNS = ["kind", "method", "dataset", "fold", "size", "path", "reason"]
FIDELITY_PATTERN = layout.FIDELITY  # .../{generator}/{dataset}/fold{fold}/n{size}.fidelity.json
# Summary values of a fidelity report (causal/fidelity.py writes the dotted ones, nested), in the
# order tables show them; flat spellings of the same values are accepted too. Others follow.
FIDELITY_KEYS = (
    "two_sample_auc",
    "two_sample_roc_auc",
    "tstr.train_on_synthetic_auc",
    "tstr_roc_auc",
    "tstr.train_on_real_auc",
    "trtr_roc_auc",
    "tstr.difference",
    "marginal_distance.mean",
    "marginal_distance",
    "correlation_distance.mean_abs_diff",
    "correlation_distance",
    "correlation_distance.frobenius",
    "label_distribution.total_variation",
)
TWO_SAMPLE_KEYS = ("two_sample_auc", "two_sample_roc_auc")
# Identity, row counts, and per-feature or per-class detail (names differ between datasets, so
# they cannot be aggregated across them) are left out of the fidelity table.
FIDELITY_SKIPPED = {"generator", "dataset", "fold", "size", "seed", "rows", "per_feature", "real_train", "synthetic"}
BENCHMARK_COLUMNS = {"s": "wall_s", "cpu_time": "cpu_s", "max_rss": "max_rss_mib"}


RUN_PATTERN = layout.RUN_METRICS  # .../{method}/{dataset}/fold{fold}/n{size}/metrics.json


def metrics_path(runs_root: str | Path, method: str, dataset: str, fold: int, size: int) -> Path:
    """``{runs_root}/{method}/{dataset}/fold{fold}/n{size}/metrics.json``; runs_root is runs/{backbone}."""
    run = layout.fill(layout.tail(layout.RUN, "method"), method=method, dataset=dataset, fold=fold, size=size)
    return Path(runs_root) / run / "metrics.json"


SizesByGenerator = Mapping[str, Iterable[int]]  # synthetic.sizes_by_generator


def generator_sample_sizes(
    generator: str | None, sizes: Iterable[int], by_generator: SizesByGenerator | None = None
) -> list[int]:
    """The sizes above 0 ``generator`` is sampled at: its entry of ``by_generator`` (config
    ``synthetic.sizes_by_generator``, a subset of ``sizes``), else those of ``sizes``."""
    own = (by_generator or {}).get(generator) if generator else None
    return layout.sample_sizes(sizes if own is None else own)


def run_sizes(method: Method, sizes: Iterable[int], by_generator: SizesByGenerator | None = None) -> list[int]:
    """The sizes at which ``method`` runs: n=0 only without synthetic rows (zeroshot, finetune),
    otherwise every size its generator is sampled at (:func:`generator_sample_sizes`)."""
    return method_sizes(method, generator_sample_sizes(method.generator, sizes, by_generator))


def expected_runs(
    methods: Iterable[Method],
    datasets: Iterable[str],
    folds: Iterable[int],
    sizes: Iterable[int],
    by_generator: SizesByGenerator | None = None,
) -> list[list]:
    """[method, dataset, fold, size] of every run of the grid, as plain lists (a Snakemake param);
    each method at its :func:`run_sizes`."""
    sizes = [int(s) for s in sizes]
    return [
        [method.name, str(dataset), int(fold), size]
        for method in methods
        for dataset in datasets
        for fold in folds
        for size in run_sizes(method, sizes, by_generator)
    ]


def metrics_files(backbone: str, grid: Iterable[Iterable], results: str = layout.RESULTS) -> list[str]:
    return [layout.metrics_file(backbone, m, d, f, s, results) for m, d, f, s in grid]


def fidelity_files(
    methods: Iterable[Method],
    datasets: Iterable[str],
    folds: Iterable[int],
    sizes: Iterable[int],
    results: str = layout.RESULTS,
    by_generator: SizesByGenerator | None = None,
) -> list[str]:
    """Fidelity reports of every generator the methods sample from, at each of its sizes above 0."""
    generators = sorted({method.generator for method in methods if method.generator})
    return [
        layout.sample_file(generator, dataset, fold, size, "fidelity.json", results)
        for generator in generators
        for dataset in datasets
        for fold in folds
        for size in generator_sample_sizes(generator, sizes, by_generator)
    ]


def failure_rows(
    methods: Iterable[Method],
    grid: Iterable[Iterable],
    sizes: Iterable[int],
    failures: Iterable[Mapping],
    backbone: str,
    results: str = layout.RESULTS,
    by_generator: SizesByGenerator | None = None,
) -> list[list]:
    """``MISSING_COLUMNS`` rows for what recorded generator failures leave absent.

    ``failures`` are failure markers (:mod:`causalmixft.failures`) with ``generator``,
    ``dataset``, ``fold``, ``size`` (None: the generator could not be fitted, so every size is
    out), ``path`` and ``message``. Each ruled-out fidelity report and each run of a method that
    samples from that generator there gets a row naming the marker and the error, with the path
    of the absent file.
    """
    generator_of = {method.name: method.generator for method in methods}
    by_cell: dict[tuple[str, str, int, int], tuple[str, str]] = {}
    for marker in failures:
        cell = (str(marker["generator"]), str(marker["dataset"]), int(marker["fold"]))
        reason = f"generator {cell[0]} failed ({marker['path']}): {marker['message']}"
        every_size = generator_sample_sizes(cell[0], sizes, by_generator)
        for size in every_size if marker.get("size") is None else [int(marker["size"])]:
            by_cell[(*cell, size)] = (str(marker["path"]), reason)
    rows = []
    for (generator, dataset, fold, size), (_, reason) in sorted(by_cell.items()):
        path = layout.sample_file(generator, dataset, fold, size, "fidelity.json", results)
        rows.append(["fidelity", generator, dataset, fold, size, path, reason])
    for method, dataset, fold, size in normalise_grid(grid):
        cell = (generator_of.get(method), dataset, fold, size)
        if cell in by_cell:
            path = layout.metrics_file(backbone, method, dataset, fold, size, results)
            rows.append(["run", method, dataset, fold, size, path, by_cell[cell][1]])
    return rows


def without_failed(paths: Iterable[str], failed: Iterable[Iterable]) -> list[str]:
    """``paths`` less the files that :func:`failure_rows` lists as ruled out."""
    absent = {str(row[5]) for row in failed}
    return [path for path in paths if str(path) not in absent]


def source_group(source: str) -> str:
    """A dataset's report group: its source kind (``openml``, ``tabmwp``, ``sklearn``), and for a
    ``file:`` source the name of the file's folder (``resources/tabarena/x.csv.gz`` -> ``tabarena``)."""
    kind, _, rest = str(source).partition(":")
    return (Path(rest).parent.name or kind) if kind == "file" else kind


def source_kind_groups(datasets: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """Dataset names grouped by ``source_group`` when the config mixes groups.

    The summary then repeats its headline tables per group, so TabArena tasks and TabMWP-derived
    tasks are also reported apart; with a single group there is nothing to separate.
    """
    groups: dict[str, list[str]] = {}
    for name, spec in sorted(datasets.items()):
        groups.setdefault(source_group(spec["source"]), []).append(name)
    return groups if len(groups) > 1 else {}


@dataclass
class Runs:
    records: list[dict]  # parsed metrics.json of every present run, sorted by run key
    missing: pd.DataFrame  # MISSING_COLUMNS, one row per expected run without a metrics.json
    n_expected: int


def normalise_grid(expected: Iterable[Iterable]) -> list[RunKey]:
    """Sorted, de-duplicated (method, dataset, fold, size) tuples from plain lists (Snakemake params)."""
    return sorted({(str(m), str(d), int(f), int(s)) for m, d, f, s in expected})


def run_key(path: str | Path) -> RunKey:
    """The (method, dataset, fold, size) a metrics.json path stands for."""
    match = RUN_PATTERN.search(Path(path).as_posix())
    if match is None:
        raise StageError("aggregate", "-", f"{path} is not .../{{method}}/{{dataset}}/fold{{k}}/n{{size}}/metrics.json")
    return match["method"], match["dataset"], int(match["fold"]), int(match["size"])


def load_runs(
    expected: Iterable[Iterable], metrics_files: Iterable[str | Path], failed: Iterable[Iterable] = ()
) -> Runs:
    """Read the metrics.json of every expected run; list the expected runs that have none.

    Files are matched to runs by their path. A run is missing when no file is listed for it or
    its file does not exist; listed files outside the expected grid are not part of the study
    and are ignored. ``failed`` (rows of :func:`failure_rows`) gives the reason for runs that a
    recorded generator failure rules out.
    """
    grid = normalise_grid(expected)
    known_failures = {
        (str(m), str(d), int(f), int(s)): (path, reason)
        for kind, m, d, f, s, path, reason in failed
        if kind == "run"
    }
    paths: dict[RunKey, Path] = {}
    for path in map(Path, metrics_files):
        key = run_key(path)
        if key in paths and paths[key] != path:
            raise StageError("aggregate", key[1], f"two metrics files for run {key}: {paths[key]} and {path}")
        paths[key] = path
    records, missing = [], []
    for key in grid:
        path = paths.get(key)
        if path is None or not path.exists():
            if key in known_failures:
                missing.append(("run", *key, *known_failures[key]))
                continue
            where = str(path) if path else ""
            missing.append(("run", *key, where, "metrics.json absent (run failed or was not run)"))
            continue
        record = read_json(path)
        _check_record(record, key, path)
        records.append(record)
    return Runs(records, pd.DataFrame(missing, columns=MISSING_COLUMNS), len(grid))


def _check_record(record: dict, key: RunKey, path: Path) -> None:
    method, dataset, fold, size = key
    found = (record.get("method"), record.get("dataset"), record.get("fold"), record.get("size"))
    if found != key:
        raise StageError("aggregate", dataset, f"{path} describes run {found}, expected {key}")
    replicates = record.get("replicates")
    if not replicates:
        raise StageError("aggregate", dataset, f"{path} lacks replicates (a run of the protocol before v2?)")
    problems = []
    for replicate in replicates:
        name = f"replicates[{replicate.get('replicate', '?')}]"
        problems += [f"{name}.{field}" for field in ("curve", "selected") if field not in replicate]
        problems += [f"{name}.selected.{split}" for split in SPLITS if split not in replicate.get("selected", {})]
    if problems:
        raise StageError("aggregate", dataset, f"{path} lacks {', '.join(problems)}")


def replicates_of(records: list[dict]):
    """(record, replicate) for every fine-tuning replicate of every run."""
    for record in records:
        for replicate in record["replicates"]:
            yield record, replicate


def runs_long(records: list[dict]) -> pd.DataFrame:
    """One row per run x replicate x split x metric at the validation-selected step, with the run's
    and the replicate's bookkeeping."""
    rows = []
    for record, replicate in replicates_of(records):
        base = {field: record.get(field) for field in RUN_FIELDS}
        base |= {field: replicate.get(field) for field in REPLICATE_FIELDS}
        for split in SPLITS:
            for metric, value in sorted(replicate["selected"][split].items()):
                rows.append({**base, "split": split, "metric": metric, "value": _number(value)})
    columns = [*RUN_FIELDS, *REPLICATE_FIELDS, "split", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def _number(value) -> float:
    """JSON null (a metric that could not be computed) becomes NaN."""
    return float("nan") if value is None else float(value)


def load_fidelity(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(long table generator, dataset, fold, size, key, value; missing files) from fidelity JSONs.

    Nested values are flattened to dotted keys (``tstr.train_on_synthetic_auc``) and every
    numeric one is kept, so reports with fewer or other keys aggregate without special cases.
    """
    rows, missing = [], []
    for path in sorted(str(p) for p in paths):
        match = FIDELITY_PATTERN.search(Path(path).as_posix())
        if match is None:
            problem = f"{path} is not .../{{generator}}/{{dataset}}/fold{{k}}/n{{size}}.fidelity.json"
            raise StageError("aggregate", "-", problem)
        ident = {"generator": match["generator"], "dataset": match["dataset"]}
        ident |= {"fold": int(match["fold"]), "size": int(match["size"])}
        if not Path(path).exists():
            missing.append(("fidelity", *ident.values(), path, "fidelity report absent"))
            continue
        for key, value in _numeric_leaves(read_json(path)):
            rows.append({**ident, "key": key, "value": value})
    columns = ["generator", "dataset", "fold", "size", "key", "value"]
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(missing, columns=MISSING_COLUMNS)


def load_test_class_counts(split_metas: Iterable[str | Path]) -> dict[tuple[str, int], list[int]]:
    """{(dataset, fold): class counts of the fold's test rows} from the split stage's meta.json files
    (``counts.test.classes``), for the chance test (answer.chance_table)."""
    counts = {}
    for path in split_metas:
        meta = read_json(path)
        try:
            classes = meta["counts"]["test"]["classes"]
            counts[(str(meta["dataset"]), int(meta["fold"]))] = [int(c) for c in classes.values()]
        except (KeyError, TypeError, ValueError) as error:
            raise StageError("aggregate", str(meta.get("dataset", "-")), f"{path}: no test class counts ({error!r})")
    return counts


def _numeric_leaves(report: dict, prefix: str = "") -> list[tuple[str, float]]:
    """(dotted key, value) of every number in ``report``; null counts as NaN, booleans are not numbers."""
    leaves = []
    for key, value in sorted(report.items()):
        if key in FIDELITY_SKIPPED:
            continue
        if isinstance(value, dict):
            leaves += _numeric_leaves(value, f"{prefix}{key}.")
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            leaves.append((f"{prefix}{key}", _number(value)))
    return leaves


def load_benchmarks(root: str | Path | None, exclude: Iterable[str | Path] = ()) -> pd.DataFrame:
    """One row per Snakemake benchmark file under ``root``: rule, file, wall_s, cpu_s, max_rss_mib.

    The rule is the first folder below ``root`` (``{rule}/...``) or, for a file directly in
    ``root``, its stem. Repeated measurements (``repeat()``) are averaged into one job.
    """
    columns = ["rule", "file", *BENCHMARK_COLUMNS.values()]
    if root is None or not Path(root).is_dir():
        return pd.DataFrame(columns=columns)
    root = Path(root)
    skip = {Path(p).resolve() for p in exclude}
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".tsv", ".txt")):
        if path.resolve() in skip:
            continue
        table = pd.read_csv(path, sep="\t")
        relative = path.relative_to(root)
        rule = relative.parts[0] if len(relative.parts) > 1 else path.stem
        row = {"rule": rule, "file": relative.as_posix()}
        for source, target in BENCHMARK_COLUMNS.items():
            # Snakemake writes "-" or NA where psutil could not measure a value.
            values = pd.to_numeric(table[source], errors="coerce") if source in table else pd.Series(dtype=float)
            row[target] = float(values.mean())  # NaN when nothing was measured
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
