"""TabMWP-derived tasks: the builder on the shared upstream files, the shipped tables, the loader, downloads.

The builder tests read a folder of offline TabMWP files (problems_dev1k.json, problems_test1k.json,
tabmwp_test_pot.jsonl, splits.json, results/; docs/tabmwp.md) named by $CAUSALMIXFT_TABMWP_UPSTREAM,
and are skipped without it. Nothing here touches the network: downloads use file://
URLs or a fake fetcher.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO

from causalmixft.data.prepare import prepare_table
from causalmixft.data.schema import TARGET
from causalmixft.data.sources import LOADERS, load_source
from causalmixft.data.tabmwp import __main__ as command_line
from causalmixft.data.tabmwp import tables
from causalmixft.data.tabmwp.errors import TabmwpError
from causalmixft.data.tabmwp.features import answer_form, problem_features, table_features
from causalmixft.data.tabmwp.numbers import numbers_in, parse_number
from causalmixft.data.tabmwp.probes import PROBES, build_probe
from causalmixft.data.tabmwp.problems import Problem, ProblemSet, parse_problem, read_problems
from causalmixft.data.tabmwp.rows import ID_COLUMNS
from causalmixft.data.tabmwp.tables import REPORT_FILE, TABLES_ENV, input_files, table_bytes, tables_dir
from causalmixft.data.tabmwp.tasks import GRADE_BANDS, SOLVER_RESULTS, TASKS, build_tasks, feature_definitions
from causalmixft.data.tabmwp.upstream import RemoteFile, UPSTREAM_FILES, check_download, download_upstream, git_blob_id
from causalmixft.errors import StageError
from causalmixft.io import sha256_file

UPSTREAM_ENV = "CAUSALMIXFT_TABMWP_UPSTREAM"  # a folder of the upstream files the shipped tables were built from
UPSTREAM = Path(os.environ.get(UPSTREAM_ENV) or REPO / "no-upstream-folder")
SHIPPED = REPO / "resources" / "tabmwp"
DOCS = REPO / "docs" / "tabmwp.md"
needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"set ${UPSTREAM_ENV} to a folder of TabMWP files")


@pytest.fixture(scope="module")
def built():
    """All tasks built from the shared files, once for this module."""
    if not UPSTREAM.is_dir():
        pytest.skip(f"set ${UPSTREAM_ENV} to a folder of TabMWP files")
    return build_tasks(UPSTREAM)


def rows_of(built, task: str) -> pd.DataFrame:
    return built[0][task].frame.set_index("problem_id")


# --- builder on the shared files ---------------------------------------------------------

EXPECTED = {  # task: (rows, considered, dropped by reason, class counts)
    "solved-gpt3": (7685, 7686, {"problem_not_in_source_files": 1}, {"correct": 4881, "incorrect": 2804}),
    "solved-t5": (7685, 7686, {"problem_not_in_source_files": 1}, {"correct": 4408, "incorrect": 3277}),
    "solved-tapex": (7685, 7686, {"problem_not_in_source_files": 1}, {"correct": 4498, "incorrect": 3187}),
    "grade": (2000, 8685, {"no_grade_field_reduced_schema": 6685}, {"1-3": 391, "4-6": 765, "7-8": 844}),
    "probe-shortage": (268, 268, {}, {"shortage": 129, "surplus": 139}),
    "probe-enough-money": (403, 403, {}, {"no": 211, "yes": 192}),
    "probe-linear": (240, 240, {}, {"linear": 113, "nonlinear": 127}),
}


def test_the_registry_has_every_task():
    assert set(TASKS) == set(EXPECTED)
    assert LOADERS["tabmwp"].__name__ == "load_tabmwp"


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_row_counts_and_every_drop_has_a_reason(built, task):
    tables, report = built
    rows, considered, dropped, classes = EXPECTED[task]
    table, entry = tables[task], report["tasks"][task]
    assert len(table.frame) == rows and table.considered == considered and table.dropped == dropped
    assert len(table.frame) + sum(table.dropped.values()) == table.considered
    assert table.frame["problem_id"].is_unique
    assert entry["class_counts"] == classes and entry["rows"] == rows and entry["dropped"] == dropped


def test_problems_read_and_missing_by_split(built):
    problems = built[1]["problems"]
    assert problems["read_by_split"] == {"dev": 1000, "test": 7685}
    assert problems["read_by_schema"] == {"reduced": 6685, "rich": 2000}
    assert problems["not_available_by_split"] == {"train": 23059, "dev": 6686, "test": 1}
    assert problems["malformed_by_reason"] == {}


@pytest.mark.parametrize("solver", sorted(SOLVER_RESULTS))
def test_solved_labels_are_the_results_files_flags(built, solver):
    results = json.loads((UPSTREAM / SOLVER_RESULTS[solver]).read_text())["results"]
    frame = rows_of(built, f"solved-{solver}")
    expected = {pid: "correct" if r["true_false"] else "incorrect" for pid, r in results.items() if pid != "38430"}
    assert frame[TARGET].to_dict() == expected
    assert built[0][f"solved-{solver}"].dropped_ids == {"problem_not_in_source_files": ["38430"]}


def test_solved_features_do_not_depend_on_the_solver(built):
    """Nothing solver-specific can leak: the three solved tables differ only in the label."""
    frames = [built[0][f"solved-{s}"].frame.drop(columns=TARGET) for s in sorted(SOLVER_RESULTS)]
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other)
    labels = {s: built[0][f"solved-{s}"].frame[TARGET] for s in SOLVER_RESULTS}
    assert not labels["gpt3"].equals(labels["t5"])


@needs_upstream
def test_features_of_a_pot_record_equal_those_of_its_full_schema_record():
    """The 1,000 test1k problems are in both files; the reduced schema must give the same features."""
    pot = {row["id"]: row for row in map(json.loads, (UPSTREAM / "tabmwp_test_pot.jsonl").read_text().splitlines())}
    full = json.loads((UPSTREAM / "problems_test1k.json").read_text())
    for pid, record in full.items():
        rich, _ = parse_problem(pid, record, "test", "rich")
        reduced, _ = parse_problem(pid, pot[pid], "test", "reduced")
        assert json.dumps(problem_features(rich)) == json.dumps(problem_features(reduced)), pid


def test_grade_bands_follow_the_grade_field(built):
    grades = {}
    for name in ("problems_dev1k.json", "problems_test1k.json"):
        grades.update({pid: r["grade"] for pid, r in json.loads((UPSTREAM / name).read_text()).items()})
    frame = rows_of(built, "grade")
    assert set(frame.index) == set(grades)
    assert all(frame.at[pid, TARGET] == GRADE_BANDS[g] for pid, g in grades.items())
    assert frame.loc["16", TARGET] == "4-6"  # problem 16: grade 5 ("What is the mean of the numbers?")


# Hand-checked against the problem text (docs/tabmwp.md lists the same examples).
HAND_CHECKED = [
    # problem 54 (test): "At a price of $155, is there a shortage or a surplus?" row $155 | 22,600 | 5,800
    (
        "probe-shortage",
        "54",
        {"price": 155, "quantity_demanded": 22600, "quantity_supplied": 5800},
        "shortage",
    ),
    # problem 490 (dev): at $775 demanded 10,600, supplied 12,700
    (
        "probe-shortage",
        "490",
        {"price": 775, "quantity_demanded": 10600, "quantity_supplied": 12700},
        "surplus",
    ),
    # problem 1793 (dev): "Liam has $1.00 ... a deer postcard and a tulip stamp?" 0.37 + 0.50 <= 1.00
    ("probe-enough-money", "1793", {"budget": 1.0, "price_a": 0.37, "price_b": 0.50}, "yes"),
    # problem 5662 (dev): "Ling has $5.00 ... a serving platter and a cutting board?" 4.00 + 3.00 > 5.00
    ("probe-enough-money", "5662", {"budget": 5.0, "price_a": 4.0, "price_b": 3.0}, "no"),
    # problem 3457 (dev): "$16,679 ... a high-tech desktop and a business laptop?" 6,604 + 9,455 = 16,059
    ("probe-enough-money", "3457", {"budget": 16679, "price_a": 6604, "price_b": 9455}, "yes"),
    # problem 33 (dev): x | y = 10 | 15, 11 | 9, 12 | 2: slopes -6, -7
    ("probe-linear", "33", {"x1": 10, "y1": 15, "x2": 11, "y2": 9, "x3": 12, "y3": 2}, "nonlinear"),
    # problem 1154 (test): 10 | 13, 11 | 9, 12 | 5: slopes -4, -4
    ("probe-linear", "1154", {"x1": 10, "y1": 13, "x2": 11, "y2": 9, "x3": 12, "y3": 5}, "linear"),
]


@pytest.mark.parametrize("task, pid, numbers, label", HAND_CHECKED)
def test_probe_parses_match_hand_checked_problems(built, task, pid, numbers, label):
    row = rows_of(built, task).loc[pid]
    assert set(row.index) == {"upstream_split", *numbers, TARGET}
    assert {name: row[name] for name in numbers} == pytest.approx(numbers)
    assert row[TARGET] == label


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_rule_agrees_with_every_gold_answer(built, name):
    probe, frame = PROBES[name], built[0][name].frame
    implied = [probe.rule(row) for row in frame[list(probe.features)].to_dict("records")]
    assert implied == frame[TARGET].tolist()
    assert built[1]["tasks"][name]["rule_disagrees_with_gold"] == []


def problem(pid="1", question="Q?", table="a | b\n1 | 2", choices=None, answer="1", split="dev", rich=None):
    return Problem(pid, split, question, table, choices, answer, rich)


@pytest.mark.parametrize(
    "name, bad, reason",
    [
        (
            "probe-shortage",
            problem(
                question="At a price of $5, is there a shortage or a surplus?",
                answer="surplus",
                table="Price | Quantity demanded | Quantity supplied\n$6 | 1 | 2",
            ),
            "price_row_not_found",
        ),
        (
            "probe-shortage",
            problem(question="Is there a shortage or a surplus?", answer="surplus"),
            "question_unparsed",
        ),
        (
            "probe-enough-money",
            problem(
                question="Al has $5. Does he have enough to buy a pen and a cup?",
                answer="yes",
                table="pen | $1\nbook | $2",
            ),
            "item_not_in_table",
        ),
        (
            "probe-linear",
            problem(question="Is the function linear or nonlinear?", answer="linear", table="x | y\n1 | 2\n2 | 4"),
            "not_3_pairs",
        ),
        (
            "probe-linear",
            problem(question="Is the function linear or nonlinear?", answer="maybe"),
            "gold_answer_not_a_template_label",
        ),
    ],
)
def test_probe_failures_are_dropped_with_their_reason(name, bad, reason):
    found = ProblemSet(problems={bad.pid: bad})
    table = build_probe(found, Path("."), PROBES[name])
    assert table.frame.empty and table.dropped == {reason: 1} and table.considered == 1


def test_malformed_records_are_counted_not_lost(tmp_path):
    good = {
        "question": "How many?",
        "table": "a | b\n1 | 2",
        "choices": None,
        "answer": "2",
        "grade": 2,
        "ans_type": "integer_number",
    }
    records = {"1": good, "2": {**good, "question": ""}, "3": {**good, "table": None}, "4": {**good, "choices": "ab"}}
    (tmp_path / "problems_dev1k.json").write_text(json.dumps(records))
    tables, report = build_tasks(tmp_path, ["grade"])
    assert report["problems"]["malformed_by_reason"] == {
        "choices_not_a_list_of_strings": 1,
        "question_missing": 1,
        "table_missing": 1,
    }
    grade = tables["grade"]
    assert len(grade.frame) == 1 and grade.considered == 4
    assert grade.dropped == {
        "problem_record_malformed:choices_not_a_list_of_strings": 1,
        "problem_record_malformed:question_missing": 1,
        "problem_record_malformed:table_missing": 1,
    }


def test_a_jsonl_line_without_id_is_counted(tmp_path):
    line = {"question": "Q?", "table": "a | b", "choices": None, "answer": 1.0}
    (tmp_path / "tabmwp_test_pot.jsonl").write_text(json.dumps({**line, "id": "7"}) + "\n" + json.dumps(line) + "\n")
    found = read_problems(tmp_path)
    assert list(found.problems) == ["7"] and found.malformed == {"tabmwp_test_pot.jsonl:2": "id_missing"}


def test_a_results_file_without_results_is_an_error(tmp_path):
    (tmp_path / "problems_test1k.json").write_text("{}")
    (tmp_path / "results" / "t5").mkdir(parents=True)
    (tmp_path / SOLVER_RESULTS["t5"]).write_text('{"acc": 1}')
    with pytest.raises(TabmwpError, match="has no 'results' object"):
        build_tasks(tmp_path, ["solved-t5"])


def test_a_folder_without_problem_files_is_an_error(tmp_path):
    with pytest.raises(TabmwpError, match="no TabMWP problem file"):
        read_problems(tmp_path)


# --- features ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("$1,234.50", 1234.5),
        ("22,600", 22600),
        ("-3", -3),
        ("12%", 12),
        ("3/10", 0.3),
        (84.0, 84.0),
        ("5:30 P.M.", None),
        ("0, 0, 1", None),
        ("shortage", None),
        ("1/0", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == (pytest.approx(value) if value is not None else None)


def test_number_tokens_skip_times_and_read_thousands():
    assert numbers_in("leaf 0, 0, 15 at 5:30 P.M. costs $22,600.50") == ["0", "0", "15", "22,600.50"]


def test_table_features_of_a_stem_and_leaf_plot():
    features = table_features("Stem | Leaf \n3 | 1\n4 | 0, 0, 5\n6 | ")
    assert features["table_kind"] == "stem_leaf" and features["table_lines"] == 4
    assert features["table_n_numbers"] == 7 and features["table_n_distinct_numbers"] == 6  # 3 1 4 0 0 5 6
    assert features["table_num_max"] == 6 and features["table_num_min"] == 0


def test_answer_form_reads_only_the_form():
    assert [answer_form(a) for a in ("4,656", 4656.0, "3.30", "3/10", 0.3, "surplus")] == [
        "integer",
        "integer",
        "decimal",
        "decimal",
        "decimal",
        "text",
    ]


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_every_feature_is_defined_and_documented(built, task):
    docs = DOCS.read_text()
    table = built[0][task]
    definitions = feature_definitions(task)
    assert table.features == list(definitions)
    assert set(table.categorical) <= set(definitions)
    for name in definitions:
        assert re.search(rf"`{re.escape(name)}`", docs), f"{name} is not documented in {DOCS}"


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_no_feature_is_the_label_or_a_solver_output(built, task):
    table = built[0][task]
    forbidden = {
        "answer",
        "gold",
        "gold_answer",
        "prediction",
        "output",
        "true_false",
        "executed",
        "generated",
        "grade",
        "solution",
        TARGET,
    }
    assert not forbidden & set(table.features)
    assert not set(ID_COLUMNS) & set(table.features)
    for name in table.features:
        assert not table.frame[name].astype(str).equals(table.frame[TARGET]), name


# --- shipped tables and the loader -------------------------------------------------------


def test_shipped_tables_are_a_fresh_build(built):
    report = json.loads((SHIPPED / REPORT_FILE).read_text())
    for task, table in built[0].items():
        shipped = SHIPPED / f"{task}.csv.gz"
        fresh = hashlib.sha256(table_bytes(table.frame)).hexdigest()
        assert sha256_file(shipped) == fresh == report["tasks"][task]["sha256"], task
    expected = {name: {k: v for k, v in entry.items() if k != "sha256"} for name, entry in report["tasks"].items()}
    assert json.loads(json.dumps(built[1]["tasks"], default=str)) == expected


def test_licence_and_attribution_ship_with_the_tables():
    licence, notice = (SHIPPED / "LICENSE").read_text(), (SHIPPED / "NOTICE").read_text()
    assert "CC BY-NC-SA 4.0" in licence and "creativecommons.org/licenses/by-nc-sa/4.0" in licence
    assert "Pan Lu" in notice and "2209.14610" in notice and notice.count("MIT License") == 2


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_loader_gives_a_raw_table_that_prepare_accepts(task):
    raw = load_source(f"tabmwp-{task}", {"source": f"tabmwp:{task}"})
    assert raw.source_file == tables_dir() / f"{task}.csv.gz"
    assert raw.target == TARGET and not set(ID_COLUMNS) & set(raw.frame.columns)
    table, meta = prepare_table(f"tabmwp-{task}", raw, source=f"tabmwp:{task}")
    rows, _, _, classes = EXPECTED[task]
    assert meta["n_rows"] == rows and meta["class_counts"] == classes
    assert meta["source_sha256"] == sha256_file(raw.source_file)
    kinds = {f["name"]: f["type"] for f in meta["features"]}
    assert {name for name, kind in kinds.items() if kind == "categorical"} == set(raw.categorical)
    assert meta["n_features"] == len(feature_definitions(task)) - len(meta["dropped_constant"])


@needs_upstream
def test_loader_rebuilds_from_a_folder(tmp_path):
    raw = load_source("lin", {"source": f"tabmwp:probe-linear@{UPSTREAM}"}, cache_dir=tmp_path)
    assert raw.source_file == tmp_path / "tabmwp" / "derived" / "lin" / "probe-linear.csv.gz"
    assert sha256_file(raw.source_file) == sha256_file(SHIPPED / "probe-linear.csv.gz")
    shipped = load_source("lin", {"source": "tabmwp:probe-linear"})
    pd.testing.assert_frame_equal(raw.frame, shipped.frame)


@pytest.mark.parametrize(
    "source, message",
    [
        ("tabmwp:nope", "unknown TabMWP task 'nope'"),
        ("tabmwp:grade@/does/not/exist", "source folder /does/not/exist does not exist"),
    ],
)
def test_loader_errors_name_the_problem(source, message):
    with pytest.raises(StageError, match=re.escape(message)):
        load_source("x", {"source": source})


def test_a_missing_shipped_table_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv(TABLES_ENV, str(tmp_path))
    with pytest.raises(StageError, match="python -m causalmixft.data.tabmwp build"):
        load_source("g", {"source": "tabmwp:grade"})


def test_input_files_name_what_the_source_reads():
    assert input_files("grade") == [tables_dir() / "grade.csv.gz"]
    assert input_files("grade@upstream") == []
    if UPSTREAM.is_dir():
        names = {p.relative_to(UPSTREAM).as_posix() for p in input_files(f"grade@{UPSTREAM}")}
        assert {"problems_dev1k.json", "tabmwp_test_pot.jsonl", "splits.json", "results/t5/exp6_large.json"} <= names


@needs_upstream
def test_command_line_build(tmp_path):
    assert command_line.main(["build", "--src", str(UPSTREAM), "--out", str(tmp_path), "--tasks", "probe-shortage"]) == 0
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert list(report["tasks"]) == ["probe-shortage"]
    assert sha256_file(tmp_path / "probe-shortage.csv.gz") == sha256_file(SHIPPED / "probe-shortage.csv.gz")


# --- downloads (no network) --------------------------------------------------------------


def test_git_blob_id_is_gits():
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git hash-object /dev/null
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def remote_for(path: Path, name: str, size: bool = True) -> RemoteFile:
    data = path.read_bytes()
    return RemoteFile(name, path.as_uri(), git_blob_id(data), len(data) if size else None)


def test_download_checks_and_caches_a_file_url(tmp_path):
    upstream = tmp_path / "upstream.json"
    upstream.write_text('{"1": {}}')
    remote = remote_for(upstream, "results/x.json")
    dest = download_upstream(tmp_path / "cache", files=[remote])
    assert (dest / "results" / "x.json").read_bytes() == upstream.read_bytes()
    calls = []
    download_upstream(tmp_path / "cache", fetch=lambda url: calls.append(url) or b"", files=[remote])
    assert calls == []  # intact cached copy: not fetched again


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda r: r, "git blob id"),  # same size, other content
        (lambda r: RemoteFile(r.path, r.url, r.blob_id, r.size + 1), "bytes, expected"),
    ],
)
def test_download_rejects_a_checksum_mismatch(tmp_path, tamper, message):
    upstream = tmp_path / "problems_dev.json"
    upstream.write_text("{}\n")
    remote = tamper(remote_for(upstream, "problems_dev.json"))
    with pytest.raises(TabmwpError, match=message):
        download_upstream(tmp_path / "cache", fetch=lambda url: b"[]\n", files=[remote])
    assert not (tmp_path / "cache" / "problems_dev.json").exists()


def test_download_failure_is_reported_as_offline(tmp_path):
    def offline(url):
        raise OSError("no route to host")

    with pytest.raises(TabmwpError, match="offline"):
        download_upstream(tmp_path, fetch=offline, files=UPSTREAM_FILES[:1])


@needs_upstream
def test_upstream_source_downloads_then_builds(tmp_path, monkeypatch):
    """``tabmwp:<task>@upstream`` end to end, with the shared dev1k file served as problems_dev.json."""
    monkeypatch.setattr(tables, "UPSTREAM_FILES", (remote_for(UPSTREAM / "problems_dev1k.json", "problems_dev.json"),))
    fetched = []
    monkeypatch.setattr(
        tables, "fetch_url", lambda url: fetched.append(url) or Path(url[len("file://") :]).read_bytes()
    )
    raw = load_source("g", {"source": "tabmwp:grade@upstream"}, cache_dir=tmp_path)
    assert fetched == [(UPSTREAM / "problems_dev1k.json").as_uri()]
    assert (tmp_path / "tabmwp" / "upstream" / "problems_dev.json").is_file()
    assert len(raw.frame) == 1000 and raw.source_file.parent == tmp_path / "tabmwp" / "derived" / "g"


def test_upstream_files_are_pinned_with_blob_ids():
    assert {f.path for f in UPSTREAM_FILES} >= {"problems_train.json", "problems_dev.json", "problems_test.json"}
    for remote in UPSTREAM_FILES:
        assert (
            re.fullmatch(r"[0-9a-f]{40}", remote.blob_id) and "7cf61b1bec07222fc24b4f5a1410911f77c2d2c9" in remote.url
        )
        local = UPSTREAM / remote.path
        if local.is_file():  # the shared copies are byte-identical to upstream
            check_download(remote, local.read_bytes())


def test_gzip_tables_carry_no_name_or_time():
    data = table_bytes(pd.DataFrame({"a": [1]}))
    assert data[4:8] == b"\0\0\0\0" and gzip.decompress(data) == b"a\n1\n"


def test_label_rule_fidelity_counts_rows_that_obey_the_probe_rule():
    from causalmixft.data.tabmwp import label_rule_fidelity

    rows = pd.DataFrame({"budget": [10.0, 10.0, 5.0, 5.0], "price_a": [3.0, 3.0, 4.0, 1.0],
                         "price_b": [4.0, 4.0, 2.0, 1.0], "target": ["yes", "no", "no", "no"]})
    report = label_rule_fidelity({"source": "tabmwp:probe-enough-money"}, rows)["label_rule"]
    # Rule: yes, yes, no, yes -> rows 0 and 2 agree.
    assert report["agreement"] == 0.5 and report["rows"] == 4 and report["majority_label_share"] == 0.75
    assert label_rule_fidelity({"source": "tabmwp:solved-gpt3"}, rows) == {}
    assert label_rule_fidelity({"source": "file:x.csv"}, rows) == {}
