"""Rule prepare_dataset: load one dataset from its source, type and clean it."""

import logging
import sys

from causalmixft.data.prepare import prepare_dataset, write_prepared


def main(smk) -> None:
    sys.stdout = sys.stderr = open(smk.log[0], "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    table, meta = prepare_dataset(
        smk.wildcards.dataset, smk.params.spec, cache_dir=smk.params.cache_dir, max_classes=smk.params.max_classes
    )
    write_prepared(table, meta, smk.output.table, smk.output.meta)


main(snakemake)  # noqa: F821 (defined by Snakemake's script preamble)
