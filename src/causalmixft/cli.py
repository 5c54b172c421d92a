"""``causalmixft``: run one stage for one dataset of a config without Snakemake.

    causalmixft prepare credit-g                 # -> results/data/credit-g.{parquet,meta.json}
    causalmixft split credit-g 0                 # -> results/splits/credit-g/fold0/...

Outputs go where the workflow puts them, so the workflow picks them up (and reruns them if
its inputs say so). Bad input exits with status 2 and the stage's error message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from causalmixft.errors import StageError


def prepare(args: argparse.Namespace, config: dict) -> None:
    from causalmixft.data.prepare import prepare_dataset, write_prepared
    from causalmixft.data.sources import dataset_spec

    spec = dataset_spec(config["datasets"], args.dataset)
    table, meta = prepare_dataset(args.dataset, spec, cache_dir=config.get("cache_dir", ".cache"))
    data = Path(args.results) / "data"
    write_prepared(table, meta, data / f"{args.dataset}.parquet", data / f"{args.dataset}.meta.json")


def split(args: argparse.Namespace, config: dict) -> None:
    from causalmixft.data.prepare import read_prepared
    from causalmixft.data.splits import PARTS, Protocol, make_split, write_split

    data = Path(args.results) / "data"
    table, _, _ = read_prepared(data / f"{args.dataset}.parquet", data / f"{args.dataset}.meta.json")
    result = make_split(args.dataset, table, args.fold, Protocol.from_config(config["protocol"]))
    folder = Path(args.results) / "splits" / args.dataset / f"fold{args.fold}"
    write_split(result, {part: folder / f"{part}.parquet" for part in PARTS}, folder / "meta.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="causalmixft", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml", help="workflow config (default: config.yaml)")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("prepare", help="load, type and clean one dataset")
    command.add_argument("dataset")
    command.set_defaults(run=prepare)
    command = commands.add_parser("split", help="make one fold's train/val/test split of a prepared dataset")
    command.add_argument("dataset")
    command.add_argument("fold", type=int)
    command.set_defaults(run=split)
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    try:
        args.run(args, config)
    except StageError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
