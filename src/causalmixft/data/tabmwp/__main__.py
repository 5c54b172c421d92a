"""``python -m causalmixft.data.tabmwp``: build the derived tables, or download the upstream files."""

from __future__ import annotations

import argparse
import logging
import sys

from causalmixft.data.tabmwp.errors import TabmwpError
from causalmixft.data.tabmwp.tables import write_tables
from causalmixft.data.tabmwp.tasks import TASKS, build_tasks
from causalmixft.data.tabmwp.upstream import download_upstream

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m causalmixft.data.tabmwp", description="Build the derived TabMWP task tables, or download the upstream files.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the derived task tables from a folder of upstream files")
    build.add_argument("--src", required=True, help="folder with problems_*.json / tabmwp_test_pot.jsonl / results/")
    build.add_argument("--out", required=True, help="folder for <task>.csv.gz and build_report.json")
    build.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    download = commands.add_parser("download", help="download the full upstream files (network)")
    download.add_argument("--dest", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "download":
            print(download_upstream(args.dest))
            return 0
        tables, report = build_tasks(args.src, args.tasks)
        print(write_tables(tables, report, args.out))
    except TabmwpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
