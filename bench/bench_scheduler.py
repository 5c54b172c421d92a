"""CPU that Snakemake's own process spends while jobs run, with Snakemake's default rate limit and
with the one ``make study`` and ``make study-part`` pass (``STUDY_SCHEDULING``); prints JSON.

Snakemake 9's scheduler re-runs its loop on a ``threading.Timer`` after each round that finds ready
jobs but no free core (``JobScheduler._schedule_reevalutation``, delay = the rate limit's timespan,
``100/1s`` unless set); every finished job starts one more such chain, so with many ready jobs the
loop runs about once per finished job per timespan, each time over every ready job. On the 3,237-job
study this took 30-60 % of one of two cores. A timespan of 10 s (``1000/10s``: a limit no local
run meets) makes the chains tick ten times less often; the price is a wait of up to one timespan
when the run ends (pending timers), which is why only the long study runs use it.

The workflow here is ``--jobs`` rules that sleep ``--sleep`` seconds, all ready at once, run on
``--cores`` cores: the same scheduler with no work of its own to blur the measure. Per setting:
Snakemake's CPU seconds (its process tree: the sleeping jobs add almost nothing), wall seconds and
CPU per finished job. Usage::

    python bench/bench_scheduler.py [--jobs 150] [--sleep 4] [--cores 2]

Measured on the shared 2-core VM beside the study's two jobs (``--jobs 150 --sleep 4``): Snakemake's
CPU 34.3 s (10.8 % of one core) with 100/1s, 11.7 s (3.6 %) with 1000/10s; wall 318 s and 327 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule sleep:
    output: "out/{{i}}.txt"
    shell: "sleep {sleep}; touch {{output}}"
"""
SETTINGS = {"snakemake_default_100/1s": [], "study_1000/10s": ["--max-jobs-per-timespan", "1000/10s"]}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(jobs: int, sleep: float, cores: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "Snakefile").write_text(SNAKEFILE.format(jobs=jobs, sleep=sleep))
        before_cpu, before = children_cpu_s(), time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all", *extra],
                       cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu, wall = children_cpu_s() - before_cpu, time.perf_counter() - before
        done = len(list(Path(folder, "out").glob("*.txt")))
    return {"jobs": done, "wall_s": round(wall, 1), "snakemake_cpu_s": round(cpu, 1),
            "cpu_share_of_one_core": round(cpu / wall, 3), "cpu_s_per_job": round(cpu / done, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--sleep", type=float, default=4.0)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    results = {name: measure(args.jobs, args.sleep, args.cores, extra) for name, extra in SETTINGS.items()}
    print(json.dumps({"settings": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
