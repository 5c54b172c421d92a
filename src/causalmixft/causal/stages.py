"""The causal stages as file-to-file steps: what each Snakemake script calls, testable without Snakemake.

Paths in, paths out. Each step imports only its own stage's modules (dowhy alone takes seconds
to import, and a discovery job does not need it). Every pickle goes through :func:`causalmixft.io.write_pickle` (sha256 sidecar)
and is read back with :func:`causalmixft.io.read_pickle`, which refuses a file that changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Mapping

import pandas as pd

from causalmixft.data.schema import TableSchema
from causalmixft.errors import StageError
from causalmixft.io import read_json, read_parquet, read_pickle, write_json, write_parquet, write_pickle
from causalmixft.seeding import derive_seed

Path = str | os.PathLike
log = logging.getLogger(__name__)


def stage_seed(base_seed: int, dataset: str, fold: int | str, stage: str, generator: str = "causalmixft") -> int:
    """The seed of one stage of one generator on one (dataset, fold); sizes share one draw."""
    return derive_seed(dataset, fold, generator, stage, base_seed)


def load_schema(meta_path: Path) -> TableSchema:
    return TableSchema.from_meta(read_json(meta_path))


def load_table(path: Path, schema: TableSchema, stage: str, dataset: str) -> pd.DataFrame:
    frame = read_parquet(path)
    missing = [c for c in schema.names + [schema.target] if c not in frame.columns]
    if missing:
        raise StageError(stage, dataset, f"{os.fspath(path)} lacks the schema's columns {missing[:5]}")
    return schema.cast(frame)


def load_checked_pickle(path: Path, stage: str, dataset: str):
    try:
        return read_pickle(path)
    except (OSError, ValueError) as exc:
        raise StageError(stage, dataset, str(exc)) from exc


def run_discover(
    train: Path,
    meta: Path,
    dag_pkl: Path,
    dag_json: Path,
    dag_png: Path | None,
    discovery: Mapping,
    dataset: str,
    fold: int,
    seed: int,
) -> None:
    from causalmixft.causal.discover import discover_dag
    from causalmixft.causal.plot import plot_dag

    schema = load_schema(meta)
    frame = load_table(train, schema, "discover", dataset)
    result = discover_dag(frame, schema, discovery, stage_seed(seed, dataset, fold, "discover"), dataset)
    write_pickle(dag_pkl, result.dag)
    write_json(dag_json, {"dataset": dataset, "fold": fold, **result.to_json()})
    if dag_png is not None:
        plot_dag(result.dag, dag_png, title=f"{dataset} fold {fold}")


def run_fit(
    train: Path,
    meta: Path,
    dag_pkl: Path,
    scm_pkl: Path,
    report_json: Path,
    quality: str,
    dataset: str,
    fold: int,
    seed: int,
) -> None:
    from causalmixft.causal.scm import fit_scm

    schema = load_schema(meta)
    frame = load_table(train, schema, "fit", dataset)
    dag = load_checked_pickle(dag_pkl, "fit", dataset)
    fitted = fit_scm(frame, schema, dag, quality, stage_seed(seed, dataset, fold, "fit"), dataset)
    write_pickle(scm_pkl, fitted)
    write_json(report_json, {"dataset": dataset, "fold": fold, **fitted.report()})


def load_generator(path: Path, dataset: str):
    """The fitted generator in ``path``: a pickled :class:`FittedSCM` or any pickled Generator."""
    from causalmixft.causal.generators import CausalMixFTGenerator, Generator
    from causalmixft.causal.scm import FittedSCM

    fitted = load_checked_pickle(path, "sample", dataset)
    if isinstance(fitted, FittedSCM):
        return CausalMixFTGenerator.from_fitted(fitted)
    if isinstance(fitted, Generator):
        return fitted
    raise StageError("sample", dataset, f"{os.fspath(path)} holds a {type(fitted).__name__}, not a fitted generator")


def run_sample(
    fitted: Path,
    train: Path,
    val: Path,
    meta: Path,
    outputs: Mapping[int, tuple[Path, Path]],
    synthetic: Mapping,
    dataset: str,
    fold: int,
    seed: int,
) -> None:
    """Write ``n{size}.parquet`` and ``n{size}.fidelity.json`` for every size in ``outputs``."""
    schema = load_schema(meta)
    train_rows = load_table(train, schema, "sample", dataset)
    val_rows = load_table(val, schema, "sample", dataset)
    generator = load_generator(fitted, dataset)
    draw = draw_samples(generator, train_rows, schema, sorted(outputs), synthetic, dataset, fold, seed)
    write_samples(draw, generator.name, train_rows, val_rows, schema, meta, outputs, synthetic, dataset, fold, seed)


def draw_samples(generator, train_rows: pd.DataFrame, schema: TableSchema, sizes, synthetic: Mapping,
                 dataset: str, fold: int, seed: int):
    """The nested draw of any generator (:func:`causalmixft.causal.sample.sample_synthetic`), seeded per
    (dataset, fold, generator), so every sampling job of one fold draws the same rows."""
    from causalmixft.causal.sample import SamplingOptions, sample_synthetic

    return sample_synthetic(
        generator,
        train_rows,
        schema,
        list(sizes),
        stage_seed(seed, dataset, fold, "sample", generator.name),
        SamplingOptions.from_config(synthetic),
        dataset,
    )


def write_samples(draw, generator: str, train_rows: pd.DataFrame, val_rows: pd.DataFrame, schema: TableSchema,
                  meta: Path, outputs: Mapping[int, tuple[Path, Path]], synthetic: Mapping, dataset: str,
                  fold: int, seed: int, extra: Mapping | None = None) -> dict[int, dict]:
    """Write every size of ``draw`` and its fidelity report (plus ``extra`` fields); the reports by size.

    On a TabMWP probe the report also says how often the synthetic rows obey the label rule.
    """
    from causalmixft.causal.fidelity import fidelity_report
    from causalmixft.data.tabmwp import label_rule_fidelity

    fidelity_seed = stage_seed(seed, dataset, fold, "fidelity", generator)
    meta_json = read_json(meta)
    reports = {}
    for size, rows in draw.samples().items():
        parquet_path, fidelity_path = outputs[size]
        write_parquet(parquet_path, rows)
        report = fidelity_report(
            train_rows, rows, val_rows, schema, fidelity_seed, int(synthetic.get("fidelity_rows", 1024))
        )
        report.update(generator=generator, dataset=dataset, fold=fold, size=size, sampling=draw.info, **(extra or {}))
        report.update(label_rule_fidelity(meta_json, rows))
        write_json(fidelity_path, report)
        log.info("%s %s fold %s n=%d: two-sample AUC %s", generator, dataset, fold, size, report["two_sample_auc"])
        reports[size] = report
    return reports


@contextlib.contextmanager
def script_logging(log_path: Path):
    """Send stdout, stderr and logging of a Snakemake script to its log file (tracebacks included)."""
    with open(log_path, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(
            stream=handle, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
        )
        try:
            yield
        except BaseException:
            logging.getLogger("causalmixft").exception("stage failed")
            raise
        finally:
            handle.flush()
            logging.basicConfig(stream=sys.__stderr__, force=True)
