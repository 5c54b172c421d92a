"""Rule split: the test fold and the real train/validation budget of one (dataset, fold)."""

import logging
import sys

from causalmixft.data.prepare import read_prepared
from causalmixft.data.splits import Protocol, make_split, write_split


def main(smk) -> None:
    sys.stdout = sys.stderr = open(smk.log[0], "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    table, _, _ = read_prepared(smk.input.table, smk.input.meta)
    protocol = Protocol.from_config(smk.params.protocol)
    split = make_split(smk.wildcards.dataset, table, int(smk.wildcards.fold), protocol)
    write_split(split, smk.output, smk.output.meta)


main(snakemake)  # noqa: F821 (defined by Snakemake's script preamble)
