"""Rule prepare_dataset: load one dataset from its source, type and clean it."""

from causalmixft.data.prepare import prepare_dataset, write_prepared
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    table, meta = prepare_dataset(
        smk.wildcards.dataset, smk.params.spec, cache_dir=smk.params.cache_dir, max_classes=smk.params.max_classes
    )
    write_prepared(table, meta, smk.output.table, smk.output.meta)
