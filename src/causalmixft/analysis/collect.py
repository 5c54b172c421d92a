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
from causalmixft.grid import Grid
from causalmixft.io import read_json

RunKey = tuple[str, str, int, int, int]  # (method, dataset, fold, real budget, size)

SPLITS = ("val", "test")
RUN_FIELDS = (
    "backbone",
    "method",
    "dataset",
    "fold",
    "real_budget",
    "size",
    "n_real_rows",
    "n_synthetic_rows",
    "device",
    "wall_time_s",
)
# Per fine-tuning replicate (metrics.json ``replicates``): one row of runs_long per replicate.
REPLICATE_FIELDS = ("replicate", "seed", "steps_run", "selected_step", "stop_reason", "real_share")
MISSING_COLUMNS = ["kind", "method", "dataset", "fold", "real_budget", "size", "path", "reason"]
NOT_RUN = "metrics.json absent (run failed or was not run)"  # missing.csv's reason for a run with no file
FIDELITY_PATTERN = layout.FIDELITY  # .../{generator}/{dataset}/fold{fold}/real{budget}/n{size}.fidelity.json
# Summary values of a fidelity report (generators/fidelity.py writes the dotted ones, nested), in the
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
# Identity, row counts, and per-feature or per-class detail (names differ between datasets, so
# they cannot be aggregated across them) are left out of the fidelity table.
FIDELITY_SKIPPED = {"generator", "dataset", "fold", "budget", "real_budget", "size", "seed", "rows", "per_feature", "real_train", "synthetic"}
BENCHMARK_COLUMNS = {"s": "wall_s", "cpu_time": "cpu_s", "max_rss": "max_rss_mib"}


RUN_PATTERN = layout.RUN_METRICS  # .../{method}/{dataset}/fold{fold}/real{budget}/n{size}/metrics.json


def failure_rows(grid: Grid, failures: Iterable[Mapping], backbone: str, results: str = layout.RESULTS) -> list[list]:
    """``MISSING_COLUMNS`` rows for what recorded generator failures leave absent.

    ``failures`` are failure markers (:mod:`causalmixft.failures`) with ``generator``,
    ``dataset``, ``fold``, ``budget``, ``size`` (None: the generator could not be fitted, so
    every size is out), ``path`` and ``message``. Each ruled-out fidelity report and each run of
    a method that samples from that generator there gets a row naming the marker and the error,
    with the path of the absent file.
    """
    by_cell: dict[tuple[str, str, int, int], tuple[str, dict]] = {}  # (g, d, f, b) -> reason, sizes
    for marker in failures:
        cell = (str(marker["generator"]), str(marker["dataset"]), int(marker["fold"]), int(marker["budget"]))
        reason = f"generator {cell[0]} failed ({marker['path']}): {marker['message']}"
        by_cell.setdefault(cell, (reason, {}))[1][marker.get("size")] = reason
    rows = []
    for sample in grid.samples(sorted({cell[0] for cell in by_cell})):
        cell = (sample.generator, sample.dataset, sample.fold, sample.budget)
        if cell not in by_cell:
            continue
        reasons = by_cell[cell][1]
        reason = reasons.get(None) or reasons.get(sample.size)
        if reason:
            path = layout.sample_file(*cell, sample.size, "fidelity.json", results)
            rows.append(["fidelity", sample.generator, sample.dataset, sample.fold, sample.budget, sample.size, path, reason])
    for run in grid.runs():
        method = grid.method(run.method)
        cell = (method.generator, run.dataset, run.fold, run.budget)
        if cell not in by_cell:
            continue
        reasons = by_cell[cell][1]
        reason = reasons.get(None) or reasons.get(grid.input_size(method, run.size))
        if reason:
            path = layout.metrics_file(backbone, *run.key(), results)
            rows.append(["run", *run.key(), path, reason])
    return rows


def without_failed(paths: Iterable[str], failed: Iterable[Iterable]) -> list[str]:
    """``paths`` less the files that :func:`failure_rows` lists as ruled out."""
    absent = {str(row[MISSING_COLUMNS.index("path")]) for row in failed}
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
    """Sorted, de-duplicated (method, dataset, fold, budget, size) tuples from plain lists (Snakemake params)."""
    return sorted({(str(m), str(d), int(f), int(b), int(s)) for m, d, f, b, s in expected})


def run_key(path: str | Path) -> RunKey:
    """The (method, dataset, fold, budget, size) a metrics.json path stands for."""
    match = RUN_PATTERN.search(Path(path).as_posix())
    if match is None:
        pattern = layout.tail(layout.RUN, "method") + "/metrics.json"
        raise StageError("aggregate", "-", f"{path} is not .../{pattern}")
    return match["method"], match["dataset"], int(match["fold"]), int(match["budget"]), int(match["size"])


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
        (str(m), str(d), int(f), int(b), int(s)): (path, reason)
        for kind, m, d, f, b, s, path, reason in failed
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
            missing.append(("run", *key, where, NOT_RUN))
            continue
        record = read_json(path)
        _check_record(record, key, path)
        records.append(chooser_as_val(record))
    return Runs(records, pd.DataFrame(missing, columns=MISSING_COLUMNS), len(grid))


def _check_record(record: dict, key: RunKey, path: Path) -> None:
    method, dataset, fold, budget, size = key
    fields = ("method", "dataset", "fold", "real_budget", "size")
    found = tuple(record.get(field) for field in fields)
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


def chooser_as_val(record: dict) -> dict:
    """A run that selected on a synthetic selection set (``select``: real validation plus SCM rows)
    as every table reads it: ``val`` is the set that chose (its step, and in the report its size),
    ``val_real`` its real validation rows alone. Other runs are returned as they are."""
    if not any("select" in r["selected"] for r in record["replicates"]):
        return record

    def swap(scores: dict) -> dict:
        out = {k: v for k, v in scores.items() if k not in ("val", "select")}
        return out | {"val": scores.get("select", {}), "val_real": scores.get("val", {})}

    replicates = [
        {**r, "selected": swap(r["selected"]), "curve": [swap(point) for point in r["curve"]]}
        for r in record["replicates"]
    ]
    return {**record, "replicates": replicates, "selected": swap(record.get("selected", {}))}


def on_real_validation(long: pd.DataFrame) -> pd.DataFrame:
    """runs_long with every replicate's ``val`` on its real validation rows: a replicate that chose on a
    selection set (:func:`chooser_as_val`: ``val`` the chooser, ``val_real`` the real rows) has its
    ``val`` rows replaced by its ``val_real`` rows. Scores compared across methods (paired differences,
    improvements, ranks, scaling) must come from the same rows, which only the real validation rows
    are; the choice of a size reads the chooser (runs_long as it is)."""
    real = long["split"] == "val_real"
    if not real.any():
        return long
    keys = ["method", "dataset", "fold", "real_budget", "size", "replicate", "metric"]
    chose = long.loc[real, keys].drop_duplicates().assign(_has_real=True)
    flagged = long[keys].merge(chose, on=keys, how="left")["_has_real"].eq(True).to_numpy()
    replaced = (long["split"] == "val").to_numpy() & flagged
    out = long.loc[~replaced].copy()
    out.loc[out["split"] == "val_real", "split"] = "val"
    return out.reset_index(drop=True)


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
        # the curve's evaluation points: early stopping's chance reference (1 / points), published with
        # the scores so that a report's early_stopping.csv can be rebuilt from runs_long.csv alone
        base["n_evaluations"] = len(replicate.get("curve") or [])
        for split in [*SPLITS, *(["val_real"] if "val_real" in replicate["selected"] else [])]:
            for metric, value in sorted(replicate["selected"][split].items()):
                rows.append({**base, "split": split, "metric": metric, "value": _number(value)})
    columns = [*RUN_FIELDS, *REPLICATE_FIELDS, "n_evaluations", "split", "metric", "value"]
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
            problem = f"{path} is not .../{layout.tail(layout.SAMPLE, 'generator')}.fidelity.json"
            raise StageError("aggregate", "-", problem)
        ident = {"generator": match["generator"], "dataset": match["dataset"], "fold": int(match["fold"])}
        ident |= {"real_budget": int(match["budget"]), "size": int(match["size"])}
        if not Path(path).exists():
            missing.append(("fidelity", *ident.values(), path, "fidelity report absent"))
            continue
        for key, value in _numeric_leaves(read_json(path)):
            rows.append({**ident, "key": key, "value": value})
    columns = ["generator", "dataset", "fold", "real_budget", "size", "key", "value"]
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(missing, columns=MISSING_COLUMNS)


def load_test_class_counts(split_metas: Iterable[str | Path]) -> dict[tuple[str, int], list[int]]:
    """{(dataset, fold): class counts of the fold's test rows} from the split stage's meta.json files
    (``counts.test.classes``), for the chance test (answer.chance_table). Every budget of a fold
    has the same test rows, so any of its metas gives them."""
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


def load_benchmarks(
    root: str | Path | None, exclude: Iterable[str | Path] = (), only: Iterable[str | Path] | None = None
) -> pd.DataFrame:
    """One row per Snakemake benchmark file under ``root``: rule, file, wall_s, cpu_s, max_rss_mib.

    ``only`` (the config's jobs, ``WorkflowConfig.benchmark_files``) keeps the files of those jobs,
    so jobs of earlier configs under the same folder are not counted; absent ones are not yet run.

    The rule is the first folder below ``root`` (``{rule}/...``) or, for a file directly in
    ``root``, its stem. Repeated measurements (``repeat()``) are averaged into one job.
    """
    columns = ["rule", "file", *BENCHMARK_COLUMNS.values()]
    if root is None or not Path(root).is_dir():
        return pd.DataFrame(columns=columns)
    root = Path(root)
    skip = {Path(p).resolve() for p in exclude}
    keep = None if only is None else {Path(p).resolve() for p in only}
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".tsv", ".txt")):
        if path.resolve() in skip or (keep is not None and path.resolve() not in keep):
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
