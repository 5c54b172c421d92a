"""Golden test: every committed report under docs/results/ is what the current code makes of its runs.

For each report with a ``tables/runs_long.csv``, the aggregate stage itself
(``report.aggregate_results``; plots and summary text switched off) runs on that file, turned
back into metrics.json records, with the report's configuration (dumped in ``report/summary.md``),
into a temporary folder, and every committed table is compared with the one it writes. A code
change that moves a published number fails here unless the report is regenerated in the same
commit.

What a report does not publish cannot be rebuilt, so these parts are inputs, not checks:

- the per-step evaluation curves: ``gap_regret_runs.csv`` stands in for them (``gap_regret`` is
  rebuilt from it);
- the split stage's test class counts: ``chance.csv``'s columns that need them are taken as
  published (``chance_table`` runs without them and its other columns are compared);
- fidelity reports and benchmark files: ``NOT_REBUILT`` names the tables that need them.

Tables the stage wrote when a report was made and no longer writes stay committed as the record
they are; ``RETIRED`` names them with the reason, and a test checks that the stage indeed no
longer writes them and that some report still holds each.

Tolerance: a number matches when |rebuilt - committed| <= ATOL + RTOL * |committed|.
"""

from __future__ import annotations

import re
import shutil
from fractions import Fraction
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import yaml

from causalmixft import layout
from causalmixft.analysis import aggregate, fitted, outputs, report
from causalmixft.analysis.collect import REPLICATE_FIELDS, source_kind_groups
from causalmixft.io import write_json

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted(path.parents[1] for path in (ROOT / "docs" / "results").glob("*/tables/runs_long.csv"))

# runs_long.csv prints 10 significant digits (write_csv), so a rebuilt number can differ from the
# full-precision original by a few 1e-11 relative, amplified where a statistic subtracts nearly
# equal numbers: an improvement (in %) near 0 moves by up to 2e-8 on study-pilot, 11 % of the
# bound, the largest share of any number of the committed reports. Changing the sixth significant
# digit of a table fails.
RTOL = 1e-6
ATOL = 1e-7

# Committed tables the rebuild cannot make, and why. Each must still be one the stage writes.
NOT_REBUILT = {
    "fidelity": "needs the fidelity reports under results/samples/, which a report does not publish",
    "cost": "needs the Snakemake benchmark files under results/benchmarks/",
}
# Committed tables of the v2 answer that the stage no longer writes (issue 23: the v3 answer is
# effects.csv and size_selection_chance.csv), and why. Kept as published, not compared.
RETIRED = {
    "scaling_peak": "the fitted curve's peak as a headline (issue 28: an artefact of the fit's degree); "
    "the fitted curve itself stays (scaling_fit.csv, scaling_fit.png)",
    "size_selection": "agreement and regret of the chosen size without a chance reference: "
    "size_selection_chance.csv has them beside a random size and always n = 0",
    "val_test_by_size": "fed only the v2 answer's validation-vs-test section",
    "dag_controls": "fed only the v2 answer's DAG section; effects.csv pairs every method, the SCM "
    "controls included, with plain fine-tuning",
    "claims": "fed only the v2 answer's comparison with the paper's medians",
    "cost_scaling": "growth fits for the projection, which is gone; cost.csv keeps the measured cost",
    "cost_projection": "a projection to TabArena from a few measured jobs; a study reports its measured cost",
}
# chance.csv columns that need the test rows' class counts (split meta.json files, not published).
CHANCE_NEEDS_CLASS_COUNTS = {"null_se", "z", "p", "p_holm", "above_chance", "dataset_status"}


def report_config(report_dir: Path) -> dict:
    """The configuration the summary was made with (its ``## Configuration`` YAML block)."""
    text = (report_dir / "report" / "summary.md").read_text()
    block = re.search(r"^## Configuration\n\n```yaml\n(.*?)^```", text, re.S | re.M)
    assert block, f"{report_dir}: report/summary.md has no ## Configuration block"
    return yaml.safe_load(block.group(1))


def exact_value(text) -> float:
    """A runs_long value as the run wrote it, where the 10 printed digits determine it.

    Accuracy and many ROC-AUCs are fractions k/n with n the split's row count, and the rank and
    Wilcoxon tables see exact ties between methods (two datasets of the study have fold means
    238/300 + 250/300 + 234/300 against 240/300 + 248/300 + 234/300). Printed values do not add up
    to the same float, the originals do, so ties would break. Two fractions with denominators up
    to 1000 lie at least 1e-6 apart, 20,000 times the print error, so the one that prints as
    ``text`` is the value; other values are taken as printed.
    """
    if not isinstance(text, str):
        return float("nan")
    value = float(text)
    if not np.isfinite(value):
        return value
    fraction = float(Fraction(text).limit_denominator(1000))
    return fraction if format(fraction, ".10g") == format(value, ".10g") else value


def read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a table without columns (e.g. no benchmarks)
        return pd.DataFrame()


def load_inputs(report_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(runs_long with exact values, missing, config); a report from before real budgets ran at
    its config's one ``protocol.real_budget``, which fills the column it lacks."""
    config = report_config(report_dir)
    tables = report_dir / "tables"
    long = pd.read_csv(tables / "runs_long.csv", dtype={"value": str})
    long["value"] = [exact_value(text) for text in long["value"]]
    missing = pd.read_csv(tables / "missing.csv")
    for frame in (long, missing):
        if "real_budget" not in frame:
            frame.insert(list(frame.columns).index("size"), "real_budget", int(config["protocol"]["real_budget"]))
    return long, missing, config


def expected_grid(long: pd.DataFrame, missing: pd.DataFrame, config: dict) -> list[list]:
    """[method, dataset, fold, budget, size] of the runs present plus those missing.csv lists, in
    the config's method order (the order of the report's rows)."""
    keys = ["method", "dataset", "fold", "real_budget", "size"]
    order = list(config["finetune"]["methods"])
    expected = pd.concat([long[keys].drop_duplicates(), missing.loc[missing["kind"] == "run", keys]])
    absent = sorted(set(expected["method"]) - set(order))
    assert not absent, f"methods {absent} ran but are not in the report's finetune.methods"
    position = expected["method"].map(order.index).rename("position")
    expected = expected.assign(position=position).sort_values(["position", *keys]).drop(columns="position")
    return expected.to_numpy().tolist()


def records_of(long: pd.DataFrame) -> list[dict]:
    """metrics.json records as far as runs_long holds them: each replicate's selected scores and a curve
    of as many (empty) points as it had (``n_evaluations``; none in a report from before the column)."""
    run_fields = [c for c in long.columns if c not in (*REPLICATE_FIELDS, "n_evaluations", "split", "metric", "value")]
    records: dict[tuple, dict] = {}
    # NaN (an empty field) becomes None: NaN keys would never match each other.
    for row in long.astype(object).where(long.notna(), None).to_dict("records"):
        run = tuple(row[field] for field in run_fields)
        record = records.setdefault(run, {**dict(zip(run_fields, run)), "replicates": {}})
        replicate = tuple(row[field] for field in REPLICATE_FIELDS)
        points = int(row.get("n_evaluations") or 0)
        entry = record["replicates"].setdefault(replicate, {**dict(zip(REPLICATE_FIELDS, replicate)),
                                                            "curve": [{} for _ in range(points)]})
        entry.setdefault("selected", {}).setdefault(row["split"], {})[row["metric"]] = row["value"]
    return [{**record, "replicates": list(record["replicates"].values())} for record in records.values()]


def of_budget(published: pd.DataFrame, budget: int) -> pd.DataFrame:
    """A published table's rows of one real budget (all of a report from before budgets)."""
    if "real_budget" not in published:
        return published
    return published[published["real_budget"] == budget].drop(columns="real_budget").reset_index(drop=True)


def rebuild(report_dir: Path, target: Path) -> dict[str, Path]:
    """Run the aggregate stage (report.aggregate_results) on ``report_dir``'s inputs; its tables
    land under ``target``/tables. Returns {table name: path}."""
    long, missing, config = load_inputs(report_dir)
    committed = report_dir / "tables"
    gap_runs, published_chance = read_table(committed / "gap_regret_runs.csv"), read_table(committed / "chance.csv")
    metrics_files = []
    for record in records_of(long):
        key = [record[field] for field in ("method", "dataset", "fold", "real_budget", "size")]
        path = target / layout.metrics_file(record["backbone"], *key)
        write_json(path, record)
        metrics_files.append(path)
    by_method = long.groupby("method")
    budget = {}  # the budget whose tables the stage is building (it goes one budget at a time)

    def published_gap_runs(records, study):
        budget["now"] = records[0]["real_budget"]
        return of_budget(gap_runs, budget["now"])

    real_chance_table = fitted.chance_table

    def chance_table(scores, choices, study, test_class_counts=None):
        # Rebuilt without class counts; the columns that need them come from the report.
        rebuilt = real_chance_table(scores, choices, study, None)
        published = of_budget(published_chance, budget["now"])
        for column in CHANCE_NEEDS_CLASS_COUNTS & set(rebuilt.columns):
            rebuilt[column] = published[column].to_numpy() if len(rebuilt) == len(published) else np.nan
        return rebuilt

    paths = outputs.paths(target)
    with (
        mock.patch.object(aggregate, "gap_regret_runs", published_gap_runs),
        mock.patch.object(fitted, "chance_table", chance_table),
        # Plots and the summary text are not compared here; they take seconds.
        mock.patch.object(report, "draw_plots", lambda *args: None),
        mock.patch.object(report, "render_summary", lambda *args, **kwargs: ""),
    ):
        report.aggregate_results(report.AggregateJob(
            expected=expected_grid(long, missing, config),
            metrics_files=metrics_files,
            # Read off the runs (n_real_rows > 0, a size above 0), not re-derived from the method table.
            methods_with_real=sorted(m for m, rows in by_method if (rows["n_real_rows"] > 0).any()),
            size_dependent=sorted(m for m, rows in by_method if (rows["size"] > 0).any()),
            outputs=paths,
            dataset_groups=source_kind_groups(config["datasets"]),
            config=config,
        ))
    return {name: paths[name] for name in outputs.TABLES}


def differences(rebuilt: dict[str, Path], committed_dir: Path) -> list[str]:
    """Every way the committed tables differ from the rebuilt ones, one line each.

    A committed table the code no longer writes (unless ``RETIRED``), a committed column a rebuilt
    table lacks, a row count, and each column with numbers out of tolerance (or other values
    unequal) are reported. Tables and columns the code adds are not differences: the committed ones
    are checked.
    """
    problems = []
    for path in sorted(committed_dir.glob("*.csv")):
        name = path.stem
        if name in RETIRED:
            continue
        if name not in outputs.TABLES:
            problems.append(f"{name}.csv: committed, but the current code no longer writes a table {name!r}")
            continue
        if name in NOT_REBUILT:
            continue
        if name not in rebuilt:
            problems.append(f"{name}.csv: committed, but the rebuild made no such table")
            continue
        old, new = read_table(path), read_table(rebuilt[name])
        lost = [c for c in old.columns if c not in new.columns]
        if lost:
            problems.append(f"{name}.csv: the code no longer writes the committed column(s) {lost}")
        if len(old) != len(new):
            problems.append(f"{name}.csv: {len(old)} rows committed, {len(new)} rebuilt")
            continue
        for column in [c for c in old.columns if c in new.columns]:
            problem = column_difference(old[column], new[column])
            if problem:
                problems.append(f"{name}.csv column {column}: {problem}")
    return problems


def column_difference(old: pd.Series, new: pd.Series) -> str:
    """'' when equal (numbers within tolerance, NaN matching NaN), else the first differing row."""
    old_numbers, new_numbers = pd.to_numeric(old, errors="coerce"), pd.to_numeric(new, errors="coerce")
    numeric = old.dtype.kind in "iuf" and new.dtype.kind in "iuf"
    if numeric:
        a, b = new_numbers.to_numpy(float), old_numbers.to_numpy(float)
        with np.errstate(invalid="ignore"):
            close = np.abs(a - b) <= ATOL + RTOL * np.abs(b)
        close |= (np.isnan(a) & np.isnan(b)) | (a == b)  # NaN = NaN, inf = inf
    else:
        close = old.astype(str).where(old.notna(), "").to_numpy() == new.astype(str).where(new.notna(), "").to_numpy()
    if close.all():
        return ""
    row = int(np.flatnonzero(~close)[0])
    return f"{int((~close).sum())} value(s) differ, first at row {row}: committed {old.iloc[row]!r}, rebuilt {new.iloc[row]!r}"


@pytest.fixture(scope="module", params=REPORTS, ids=[path.name for path in REPORTS])
def rebuilt_report(request, tmp_path_factory):
    report_dir = request.param
    return report_dir, rebuild(report_dir, tmp_path_factory.mktemp(report_dir.name))


def test_the_reports_are_found():
    names = {path.name for path in REPORTS}
    assert {"study", "study-pilot"} <= names, f"reports with runs_long.csv: {sorted(names)}"


def test_every_committed_table_is_what_the_code_makes_of_its_runs(rebuilt_report):
    report_dir, rebuilt = rebuilt_report
    problems = differences(rebuilt, report_dir / "tables")
    assert not problems, (
        f"{report_dir.relative_to(ROOT)} is not what the current code makes of its runs_long.csv; "
        "regenerate the report in the same commit as the change, or fix the change:\n" + "\n".join(problems)
    )


def test_the_tables_left_out_are_still_tables_of_the_stage():
    assert set(NOT_REBUILT) <= set(outputs.TABLES)


def test_the_retired_tables_are_no_longer_written_and_still_published(rebuilt_report):
    report_dir, rebuilt = rebuilt_report
    assert not set(RETIRED) & set(outputs.TABLES)
    folder = next(iter(rebuilt.values())).parent  # every table the rebuild wrote lies here
    assert not [name for name in RETIRED if (folder / f"{name}.csv").exists()]
    published = {path.stem for other in REPORTS for path in (other / "tables").glob("*.csv")}
    assert set(RETIRED) <= published, f"retired but in no report: {sorted(set(RETIRED) - published)}"


def test_a_hand_edited_number_a_dropped_column_and_an_obsolete_table_are_reported(rebuilt_report, tmp_path):
    report_dir, rebuilt = rebuilt_report
    tables = tmp_path / "tables"
    shutil.copytree(report_dir / "tables", tables)
    assert differences(rebuilt, tables) == []

    # One number, one unit up in its 6th significant digit, as a hand edit or a stale report would.
    ranks = pd.read_csv(tables / "ranks.csv")
    value = ranks.loc[3, "avg_rank"]
    ranks.loc[3, "avg_rank"] = value + 10.0 ** (np.floor(np.log10(abs(value))) - 5)
    ranks.to_csv(tables / "ranks.csv", index=False, float_format="%.10g")
    [problem] = differences(rebuilt, tables)
    assert problem.startswith("ranks.csv column avg_rank: 1 value(s) differ, first at row 3: committed")
    shutil.copy(report_dir / "tables" / "ranks.csv", tables / "ranks.csv")

    # A table the code stopped writing, and a column it stopped writing.
    (tables / "trend_old.csv").write_text("a\n1\n")
    without_column = dict(rebuilt, best_size=tmp_path / "best_size.csv")
    pd.read_csv(rebuilt["best_size"]).drop(columns="chosen_sizes").to_csv(without_column["best_size"], index=False)
    assert differences(without_column, tables) == [
        "best_size.csv: the code no longer writes the committed column(s) ['chosen_sizes']",
        "trend_old.csv: committed, but the current code no longer writes a table 'trend_old'",
    ]


def test_a_column_the_code_adds_does_not_fail_the_shared_columns(rebuilt_report, tmp_path):
    report_dir, rebuilt = rebuilt_report
    with_column = dict(rebuilt)
    for name in ("runs_long", "size_choices"):
        frame = pd.read_csv(rebuilt[name])
        with_column[name] = tmp_path / f"{name}.csv"
        frame.assign(a_column_added_later=256).to_csv(with_column[name], index=False, float_format="%.10g")
    assert differences(with_column, report_dir / "tables") == []


def test_exact_value_recovers_fractions_and_leaves_other_numbers_as_printed():
    assert exact_value("0.7933333333") == 238 / 300
    assert exact_value("0.9411764706") == 16 / 17
    assert exact_value("0.5") == 0.5
    assert exact_value("0.7123456789") == 0.7123456789  # no small denominator prints like this
    assert np.isnan(exact_value(np.nan))


def test_column_difference_reads_nan_as_equal_and_names_the_first_differing_row():
    assert column_difference(pd.Series([1.0, np.nan]), pd.Series([1.0 + 1e-9, np.nan])) == ""
    assert column_difference(pd.Series([1.0, 2.0]), pd.Series([1.0, 2.001])).startswith("1 value(s) differ, first at row 1")
    assert column_difference(pd.Series([1.0, np.nan]), pd.Series([1.0, 0.0])) != ""
    assert column_difference(pd.Series(["a", None]), pd.Series(["a", None])) == ""
    assert column_difference(pd.Series([True, False]), pd.Series([True, True])) != ""


PUBLISHED = sorted(path.parent for path in (ROOT / "docs" / "results").glob("*/publish.json"))


@pytest.mark.parametrize("report", PUBLISHED, ids=lambda path: path.name)
def test_a_published_readme_is_what_its_tables_give(report):
    """A README written by analysis/publish.py is rebuilt from the committed tables: a hand edit of a
    number, or a code change that moves one, fails here."""
    from causalmixft.analysis.publish import readme_of

    assert (report / "README.md").read_text() == readme_of(report)


def test_the_repository_readme_has_an_answer_block_and_it_is_what_the_newest_report_gives():
    """README.md's short answer is written by publishing (``make publish-study``); once a report is
    published, the block must be that report's answer sentences as its tables give them now."""
    from causalmixft.analysis.publish import answer_block, answer_in

    block = answer_in((ROOT / "README.md").read_text())
    assert block, "README.md has no study answer block (publish.ANSWER_START ... ANSWER_END)"
    linked = [report for report in PUBLISHED if f"]({report.relative_to(ROOT)}/README.md)" in block]
    if not PUBLISHED:
        return  # nothing published yet: the block says how the study stands, in words
    assert linked, f"README.md's answer block links none of the published reports {[p.name for p in PUBLISHED]}"
    (report,) = linked
    assert block == answer_block(report, f"{report.relative_to(ROOT)}/README.md")
