"""Rule split: the test fold and the real train/validation rows of one (dataset, fold, budget)."""

from causalmixft.data.prepare import read_prepared
from causalmixft.data.splits import Protocol, make_split, write_split
from causalmixft.logs import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk.log[0]):
    table, _, _ = read_prepared(smk.input.table, smk.input.meta)
    protocol = Protocol.from_config({**smk.params.protocol, "real_budget": int(smk.wildcards.budget)})
    split = make_split(smk.wildcards.dataset, table, int(smk.wildcards.fold), protocol)
    write_split(split, smk.output, smk.output.meta)
