"""Mutation check of the aggregation, selection, curves, metrics and stats code; prints JSON.

Each mutant is a one-line change a reviewer could make by mistake (a flat mean where the design
averages replicates -> folds -> datasets, a sign, a tie rule, a clip). For each, the package is
copied to a temporary folder, the line is changed there, and the tests that should notice run
against the copy (PYTHONPATH puts it before the installed package; the working tree is never
touched). A mutant is ``killed`` when those tests fail, ``survived`` when they pass, and
``stale`` when its line is no longer in the code (the mutant needs updating, which the exit code
reports too). The unmutated package is run first: a failing baseline makes every kill meaningless.

Usage (from the repository root; the 28 mutants took 9.5 min on the shared 2-core VM at load
average 8-10 from other agents, 10-30 s each)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/mutants.py [--only NAME ...] [--tests FILE ...]

Exit code 0 when every mutant is killed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "causalmixft"

AGGREGATE_TESTS = ("tests/test_aggregate.py", "tests/test_aggregate_edges.py", "tests/test_aggregate_answer.py")
METRICS_TESTS = ("tests/test_metrics.py",)
STATS_TESTS = ("tests/test_aggregate.py", "tests/test_aggregate_edges.py")


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to src/causalmixft
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...] = AGGREGATE_TESTS


MUTANTS = (
    # --- the four of issue 27 ---
    Mutant("curves: gap 1 - |rho|", "experiment/curves.py", '"gap": 1.0 - rho,', '"gap": 1.0 - abs(rho),'),
    Mutant(
        "selection: flat replicate mean",
        "experiment/selection.py",
        "means = per_fold.groupby(keys, sort=True).mean()",
        'means = frame.groupby(keys, sort=True)[[*values, "agree"]].mean()',
    ),
    Mutant(
        "curves: flat replicate mean in the gap summary",
        "experiment/curves.py",
        'per_fold = cell.groupby(["dataset", "size", "fold"], sort=True)[column].mean()',
        'per_fold = cell.set_index(["dataset", "size", "fold"])[column]',
    ),
    Mutant("metrics: log-loss clip 1e-4", "metrics.py", "np.clip(proba, 1e-7, 1.0)", "np.clip(proba, 1e-4, 1.0)",
           METRICS_TESTS),
    # --- aggregation ---
    Mutant(
        "study: fold score is the first replicate, not the mean",
        "experiment/study.py",
        'return scores.groupby(keys, sort=True)["value"].mean().reset_index()[[*keys, "value"]]',
        'return scores.groupby(keys, sort=True)["value"].first().reset_index()[[*keys, "value"]]',
    ),
    Mutant(
        "study: dataset mean over folds is a median",
        "experiment/study.py",
        'return grouped.agg(**{value: "mean", "n_folds": "count"}).reset_index()',
        'return grouped.agg(**{value: "median", "n_folds": "count"}).reset_index()',
    ),
    Mutant(
        "study: IQR from the median",
        "experiment/study.py",
        '"iqr": q75 - q25,',
        '"iqr": q75 - median,',
    ),
    Mutant(
        "aggregate: a loss's improvement keeps the score's sign",
        "experiment/aggregate.py",
        "improvement = np.where(higher, 100.0 * (ratio - 1.0), 100.0 * (1.0 - ratio))",
        "improvement = np.where(higher, 100.0 * (ratio - 1.0), 100.0 * (ratio - 1.0))",
    ),
    Mutant(
        "aggregate: seed spread with ddof=0",
        "experiment/aggregate.py",
        "sd = grouped.std(ddof=1)[grouped.count() > 1]",
        "sd = grouped.std(ddof=0)[grouped.count() > 1]",
    ),
    Mutant(
        "aggregate: seed spread pooled over folds",
        "experiment/aggregate.py",
        'keys = ["method", "size", "dataset", "fold", "split", "metric"]\n    grouped = replicates',
        'keys = ["method", "size", "dataset", "split", "metric"]\n    grouped = replicates',
    ),
    Mutant(
        "aggregate: Wilcoxon ignores lower-is-better",
        "experiment/aggregate.py",
        "* (1.0 if higher else -1.0)",
        "* (1.0 if higher else 1.0)",
    ),
    Mutant(
        "aggregate: absolute improvement of a loss not flipped",
        "experiment/aggregate.py",
        'merged["absolute"] = np.where(higher, value - ref, ref - value)',
        'merged["absolute"] = np.where(higher, value - ref, value - ref)',
    ),
    # --- selection ---
    Mutant(
        "selection: ties go to the largest size",
        "experiment/selection.py",
        "return usable.groupby(UNIT, sort=True).head(1)",
        "return usable.groupby(UNIT, sort=True).tail(1)",
    ),
    Mutant(
        "selection: the size is chosen on test",
        "experiment/selection.py",
        'by_val, by_test = _best(wide, "val", metric), _best(wide, "test", metric)',
        'by_val, by_test = _best(wide, "test", metric), _best(wide, "test", metric)',
    ),
    Mutant(
        "selection: a candidate without a validation score counts",
        "experiment/selection.py",
        'counts = wide[np.isfinite(wide["val"].to_numpy(float))].groupby(UNIT).size()',
        "counts = wide.groupby(UNIT).size()",
    ),
    Mutant(
        "selection: regret sign for higher-is-better",
        "experiment/selection.py",
        'regret = (test_best - chosen["test"]) if higher else (chosen["test"] - test_best)',
        'regret = (chosen["test"] - test_best) if higher else (chosen["test"] - test_best)',
    ),
    Mutant(
        "selection: agree share over units, not folds",
        "experiment/selection.py",
        'means = per_fold.groupby(keys, sort=True).mean().rename(columns={"agree": "agree_share"})',
        'means = per_fold.groupby(keys, sort=True).mean().rename(columns={"agree": "agree_share"})\n'
        '    means["agree"] = frame.groupby(keys, sort=True)["agree"].mean()\n'
        '    means["agree_share"] = means.pop("agree")',
    ),
    # --- curves ---
    Mutant(
        "curves: regret of a loss with the score's sign",
        "experiment/curves.py",
        'row["regret"] = (best - selected) if higher else (selected - best)',
        'row["regret"] = (best - selected) if higher else (best - selected)',
    ),
    Mutant(
        "curves: best test step of a loss is its maximum",
        "experiment/curves.py",
        "finite[np.argmax(test[finite]) if higher else np.argmin(test[finite])]",
        "finite[np.argmax(test[finite])]",
    ),
    Mutant(
        "curves: n_gap_defined counts every run",
        "experiment/curves.py",
        'defined = np.isfinite(cell["gap"].to_numpy(float))',
        'defined = np.ones(len(cell), bool)',
    ),
    # --- metrics ---
    Mutant(
        "metrics: AUC ties not averaged",
        "metrics.py",
        "return (first_rank + (counts - 1) / 2.0)[inverse.ravel()]",
        "return (first_rank + 0.0 * counts)[inverse.ravel()]",
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: clipped probabilities not renormalized",
        "metrics.py",
        "clipped = clipped / clipped.sum(1, keepdims=True)",
        "clipped = clipped",
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: multiclass AUC over every column, absent classes too",
        "metrics.py",
        "for c in present]))",
        "for c in range(proba.shape[1])]))",
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: balanced accuracy over predicted classes",
        "metrics.py",
        "for c in np.unique(y_true)]))",
        "for c in np.unique(prediction)]))",
        METRICS_TESTS,
    ),
    # --- stats ---
    Mutant(
        "stats: Holm without the running maximum",
        "experiment/stats.py",
        "running = max(running, min(1.0, (m - i) * p[index]))",
        "running = min(1.0, (m - i) * p[index])",
        STATS_TESTS,
    ),
    Mutant(
        "stats: Wilcoxon keeps zero differences",
        "experiment/stats.py",
        "d = d[np.isfinite(d) & (d != 0)]",
        "d = d[np.isfinite(d)]",
        STATS_TESTS,
    ),
    Mutant(
        "stats: Spearman defined from 2 points",
        "experiment/stats.py",
        "if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:",
        "if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:",
        STATS_TESTS,
    ),
    Mutant(
        "stats: bootstrap interval at 90 %",
        "experiment/stats.py",
        "tail = 100 * (1 - level) / 2\n    low, high = np.percentile(means",
        "tail = 100 * (1 - level)\n    low, high = np.percentile(means",
        STATS_TESTS,
    ),
)


def run_tests(package_parent: Path, tests: tuple[str, ...]) -> tuple[bool, str, float]:
    """(passed, last lines of the output, seconds) of pytest on ``tests`` with the package at
    ``package_parent``/causalmixft first on the path."""
    env = dict(os.environ, PYTHONPATH=f"{package_parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.setdefault("OMP_NUM_THREADS", "1")
    # No bytecode: a mutant of the same length written within the same second as the original
    # would otherwise run from a stale .pyc.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    summary = (lines[0] if lines else result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else result.stderr[-300:]
    return result.returncode == 0, summary, time.perf_counter() - start


def check_import_path(package_parent: Path) -> None:
    """The copy, not the installed package, must be the one the tests import."""
    env = dict(os.environ, PYTHONPATH=str(package_parent))
    found = subprocess.run([sys.executable, "-c", "import causalmixft; print(causalmixft.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not found.startswith(str(package_parent)):
        raise SystemExit(f"the tests would import {found}, not the copy under {package_parent}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="names (substrings) of the mutants to run")
    parser.add_argument("--tests", nargs="*", help="test files to run for every mutant instead of its own")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or any(part in m.name for part in args.only)]
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        parent = Path(tmp) / "src"
        shutil.copytree(PACKAGE, parent / "causalmixft", ignore=shutil.ignore_patterns("__pycache__", "weights"))
        # The weights are large and read by path from the package; link them instead of copying.
        (parent / "causalmixft" / "model" / "weights").symlink_to(PACKAGE / "model" / "weights")
        check_import_path(parent)
        all_tests = tuple(dict.fromkeys(t for m in chosen for t in (args.tests or m.tests)))
        passed, summary, seconds = run_tests(parent, all_tests)
        report = {"baseline": {"tests": list(all_tests), "passed": passed, "summary": summary,
                               "seconds": round(seconds, 1)}, "mutants": []}
        if not passed:
            print(json.dumps(report, indent=2))
            return 1
        for mutant in chosen:
            target = parent / "causalmixft" / mutant.file
            original = target.read_text()
            entry = {"name": mutant.name, "file": mutant.file}
            if original.count(mutant.old) != 1:
                entry |= {"status": "stale", "detail": f"the line occurs {original.count(mutant.old)} times"}
            else:
                target.write_text(original.replace(mutant.old, mutant.new))
                try:
                    passed, summary, seconds = run_tests(parent, tuple(args.tests or mutant.tests))
                finally:
                    target.write_text(original)
                entry |= {"status": "survived" if passed else "killed", "by": "" if passed else summary,
                          "seconds": round(seconds, 1)}
            report["mutants"].append(entry)
            print(f"{entry['status']:8} {mutant.name}", file=sys.stderr, flush=True)
    statuses = [m["status"] for m in report["mutants"]]
    report["summary"] = {s: statuses.count(s) for s in ("killed", "survived", "stale")}
    print(json.dumps(report, indent=2))
    return 0 if report["summary"]["killed"] == len(statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main())
