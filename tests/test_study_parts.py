"""The study-parts runner: one dataset's targets per worker, fewest runs left first, every dataset
once, and a part that ends at its deadline (SIGINT, then kill) without starting more."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from causalmixft.study_parts import dataset_targets, load_config, main, queue_of, run_workers, snakemake_command
from causalmixft.workflow_config import WorkflowConfig


def test_the_targets_are_every_run_of_the_grid_by_dataset(monkeypatch):
    workflow = load_config([])  # config.yaml, the embedded default
    targets = dataset_targets(workflow)
    assert sorted(targets) == sorted(workflow.datasets)
    assert sorted(path for paths in targets.values() for path in paths) == sorted(workflow.metrics_files())
    assert all(f"/{dataset}/fold" in path for dataset, paths in targets.items() for path in paths)
    assert isinstance(workflow, WorkflowConfig)


def test_the_queue_holds_datasets_with_runs_left_fewest_first():
    targets = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1"], "d": ["d1", "d2"]}
    done = {"a1", "c1", "b1"}  # left: a 2, b 1, c 0, d 2
    assert queue_of(targets, exists=done.__contains__) == ["b", "a", "d"]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_every_dataset_runs_once_and_is_recorded(tmp_path):
    out = tmp_path / "ran.txt"
    command = lambda dataset: python(f"open({str(out)!r}, 'a').write({dataset!r} + '\\n')")  # noqa: E731
    parts = run_workers(["a", "b", "c", "d", "e"], 2, time.monotonic() + 60, command, logs=tmp_path / "logs",
                        min_left_s=0)
    assert sorted(out.read_text().split()) == ["a", "b", "c", "d", "e"]
    assert sorted(p.dataset for p in parts) == ["a", "b", "c", "d", "e"]
    assert {p.worker for p in parts} <= {1, 2} and all(p.returncode == 0 and not p.interrupted for p in parts)
    rows = (tmp_path / "logs" / "parts.tsv").read_text().splitlines()
    assert sorted(row.split("\t")[1] for row in rows) == ["a", "b", "c", "d", "e"]
    assert (tmp_path / "logs" / "c.log").read_text().startswith("\n=== ")


def test_at_the_deadline_the_running_dataset_is_interrupted_and_no_other_starts(tmp_path):
    start = time.monotonic()
    command = lambda dataset: python("import time; time.sleep(60)")  # noqa: E731
    parts = run_workers(["a", "b", "c"], 1, start + 1.5, command, logs=tmp_path, min_left_s=0, grace_s=20)
    assert [(p.dataset, p.interrupted) for p in parts] == [("a", True)]
    assert parts[0].returncode != 0  # KeyboardInterrupt in the child
    assert time.monotonic() - start < 15


def test_a_command_that_ignores_sigint_is_killed_after_the_grace_time(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    parts = run_workers(["a"], 1, time.monotonic() + 1.0, lambda d: python(code), logs=tmp_path, min_left_s=0,
                        grace_s=1.0)
    assert parts[0].interrupted and parts[0].returncode == -9


def test_no_dataset_starts_with_less_than_the_minimum_time_left(tmp_path):
    parts = run_workers(["a"], 1, time.monotonic() + 5, lambda d: python("pass"), logs=tmp_path, min_left_s=60)
    assert parts == []


@pytest.mark.parametrize("arguments", [["--workers", "0"], ["--hours", "0"]])
def test_a_part_without_workers_or_time_is_refused(arguments, capsys):
    with pytest.raises(SystemExit):
        main(arguments)
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_each_worker_runs_make_studys_snakemake_on_one_core_with_the_datasets_targets():
    targets = {"a": ["results/runs/x/a/1.json", "results/runs/x/a/2.json"]}
    with_config = snakemake_command(["config/study.yaml"], targets, ["--dry-run"])("a")
    assert with_config[1:] == ["-m", "snakemake", "--workflow-profile", "workflow/profiles/default", "--configfile",
                               "config/study.yaml", "--cores", "1", "--keep-going", "--dry-run", "--",
                               "results/runs/x/a/1.json", "results/runs/x/a/2.json"]
    assert "--configfile" not in snakemake_command([], targets, [])("a")  # the default config alone


def test_a_stop_interrupts_the_running_datasets_and_starts_no_other(tmp_path):
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()  # what Ctrl-C does in run_workers' main thread
    start = time.monotonic()
    command = lambda dataset: python("import time; time.sleep(60)")  # noqa: E731
    parts = run_workers(["a", "b", "c", "d"], 2, start + 600, command, logs=tmp_path, min_left_s=0, grace_s=20,
                        stop=stop)
    assert sorted((p.dataset, p.interrupted) for p in parts) == [("a", True), ("b", True)]
    assert time.monotonic() - start < 15


def test_ctrl_c_stops_the_part_and_every_running_dataset_is_recorded(tmp_path):
    script = f"""
import sys, time
from pathlib import Path
from causalmixft.study_parts import run_workers
run_workers(list("abcd"), 2, time.monotonic() + 600, lambda d: [sys.executable, "-c", "import time; time.sleep(60)"],
            logs=Path({str(tmp_path)!r}), min_left_s=0, grace_s=20)
"""
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not ((tmp_path / "a.log").exists() and (tmp_path / "b.log").exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # both sleeping children started
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 0
    rows = sorted(row.split("\t")[1:] for row in (tmp_path / "parts.tsv").read_text().splitlines())
    assert [(dataset, interrupted) for dataset, _, _, _, interrupted in rows] == [("a", "True"), ("b", "True")]
