"""Run a large grid in a part that keeps every core busy: ``workers`` one-core Snakemakes side by
side, each on one dataset's runs at a time, until the grid's runs exist or the part's time is up.

    python -m causalmixft.study_parts --configfile config/study.yaml --workers 2 --hours 2.5

Why: Snakemake's own process took 30-60 % of one of the two cores of the machine that ran the
3,237-job study as one DAG: its scheduler loop runs about once per finished job per second while
ready jobs wait (bench/bench_scheduler.py), so the cost grows through a long run. A one-dataset
Snakemake (~70-150 jobs) starts afresh every dataset (10-21 % of a core at the default rate limit,
~5 % with ``make study-part``'s ``--max-jobs-per-timespan 1000/10s``); a part also ends with whole
datasets done rather than a scatter of cells, and starts no dataset when its time is nearly up. Datasets
share no job (each has its own prepare, splits, DAGs, generators, samples and runs), so two workers
never write the same file and Snakemake's locks let them run in one folder. A part ends by SIGINT at its deadline, which Snakemake answers by stopping its jobs
(an interrupted job is redone on the next run). What a part leaves is what the next part or
``make study`` resumes from; ``make study`` then writes what remains (the aggregate, the reports).

Each dataset's Snakemake log is appended to ``results/logs/study_parts/<dataset>.log`` and every
finished (or interrupted) dataset is a row of ``results/logs/study_parts/parts.tsv``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from causalmixft import layout
from causalmixft.config_checks import merged_config
from causalmixft.workflow_config import WorkflowConfig

SCHEMA = "workflow/schemas/config.schema.yaml"
LOGS = Path(layout.LOGS) / "study_parts"
MIN_LEFT_S = 120.0  # no dataset is started with less time left: its DAG alone takes ~10-20 s
STOP_GRACE_S = 120.0  # after SIGINT, time for Snakemake to stop its jobs before it is killed
POLL_S = 1.0  # how often a worker looks at the deadline and at Ctrl-C while its Snakemake runs


def load_config(configfiles: Sequence[str | os.PathLike]) -> WorkflowConfig:
    """The workflow's config as Snakemake builds it: ``config.yaml`` then ``configfiles`` merged,
    validated against the schema (which fills its defaults)."""
    from snakemake.utils import validate

    config = merged_config(["config.yaml", *configfiles])
    validate(config, SCHEMA)
    return WorkflowConfig.from_config(config)


def dataset_targets(workflow: WorkflowConfig) -> dict[str, list[str]]:
    """Every run's ``metrics.json`` of the grid, by dataset (the targets of one worker's Snakemake)."""
    targets: dict[str, list[str]] = defaultdict(list)
    for run, metrics in zip(workflow.runs(), workflow.metrics_files()):
        targets[run.dataset].append(metrics)
    return dict(targets)


def queue_of(targets: dict[str, list[str]], exists: Callable[[str], bool] = os.path.exists) -> list[str]:
    """Datasets with runs left, fewest left first (a part that ends early leaves whole datasets done)."""
    left = {dataset: sum(not exists(path) for path in paths) for dataset, paths in targets.items()}
    return sorted((d for d, n in left.items() if n), key=lambda d: (left[d], d))


@dataclass
class Part:
    """One dataset's Snakemake in a part: who ran it, when, and how it ended."""

    worker: int
    dataset: str
    start: str
    end: str = ""
    returncode: int | None = None
    interrupted: bool = False

    def row(self) -> str:
        return "\t".join(map(str, (self.worker, self.dataset, self.start, self.end, self.returncode, self.interrupted)))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_workers(
    queue: Iterable[str],
    workers: int,
    deadline: float,
    command: Callable[[str], list[str]],
    logs: Path = LOGS,
    min_left_s: float = MIN_LEFT_S,
    grace_s: float = STOP_GRACE_S,
    stop: threading.Event | None = None,
) -> list[Part]:
    """Run ``command(dataset)`` for each dataset of ``queue``, ``workers`` at a time, until the queue
    is empty, ``deadline`` (``time.monotonic()`` seconds) is near or ``stop`` is set (Ctrl-C sets it);
    a command still running then gets SIGINT, and is killed ``grace_s`` later if it has not stopped."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, lock, parts = list(queue), threading.Lock(), []
    stop = stop or threading.Event()

    def ended(process: subprocess.Popen) -> bool:
        """Wait for ``process`` until the deadline or ``stop``; True when it ended by itself."""
        while time.monotonic() < deadline and not stop.is_set():
            try:
                process.wait(timeout=min(POLL_S, max(deadline - time.monotonic(), 0)))
                return True
            except subprocess.TimeoutExpired:
                continue
        return process.poll() is not None

    def work(worker: int) -> None:
        while True:
            with lock:
                if not pending or stop.is_set() or deadline - time.monotonic() < min_left_s:
                    return
                part = Part(worker, pending.pop(0), _now())
            with open(logs / f"{part.dataset}.log", "a") as log:
                log.write(f"\n=== {part.start} worker {worker}: {' '.join(command(part.dataset)[:8])} ...\n")
                log.flush()
                process = subprocess.Popen(command(part.dataset), stdout=log, stderr=subprocess.STDOUT)
                if not ended(process):
                    part.interrupted = True
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(timeout=grace_s)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            # a terminal's Ctrl-C reaches the Snakemakes too: they may end by themselves, stopped all the same
            part.end, part.returncode, part.interrupted = _now(), process.returncode, part.interrupted or stop.is_set()
            with lock:
                parts.append(part)
                with open(logs / "parts.tsv", "a") as table:
                    table.write(part.row() + "\n")
            if part.interrupted:
                return

    # Ctrl-C: stop the running datasets, start no other (a handler, not KeyboardInterrupt, which can
    # leave a thread being joined looking finished while it still runs)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if main else None
    try:
        threads = [threading.Thread(target=work, args=(worker,)) for worker in range(1, workers + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return parts


def snakemake_command(configfiles: Sequence[str], targets: dict[str, list[str]], extra: Sequence[str]):
    """The one-core Snakemake of one dataset (``make study``'s call with that dataset's targets)."""

    def command(dataset: str) -> list[str]:
        configs = ["--configfile", *configfiles] if configfiles else []
        return [sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/default", *configs,
                "--cores", "1", "--keep-going", *extra, "--", *targets[dataset]]

    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=[], help="config files over config.yaml")
    parser.add_argument("--workers", type=int, default=2, help="one-core Snakemakes side by side (default 2)")
    parser.add_argument("--hours", type=float, default=2.5, help="the part's length (default 2.5)")
    parser.add_argument("snakemake_args", nargs="*", help="after --: more arguments for every Snakemake")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.hours <= 0:
        parser.error("--workers must be at least 1 and --hours above 0")
    targets = dataset_targets(load_config(args.configfile))
    queue = queue_of(targets)
    total = sum(len(paths) for paths in targets.values())
    print(f"{len(queue)} of {len(targets)} datasets have runs left ({total} runs in the grid); "
          f"{args.workers} workers for {args.hours:g} h; logs in {LOGS}/", flush=True)
    deadline = time.monotonic() + args.hours * 3600
    parts = run_workers(queue, args.workers, deadline, snakemake_command(args.configfile, targets, args.snakemake_args))
    for part in parts:
        state = "interrupted at the deadline" if part.interrupted else f"exit {part.returncode}"
        print(f"worker {part.worker}: {part.dataset} {part.start} - {part.end}: {state}")
    left = queue_of(targets)
    print(f"{len(left)} datasets have runs left" + (f": {', '.join(left)}; run another part" if left else
          "; `make study` writes the aggregate"))
    return 0 if all(p.returncode == 0 or p.interrupted for p in parts) else 1


if __name__ == "__main__":
    sys.exit(main())
