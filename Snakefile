# CausalMixFT: how much CausalMixFT synthetic data helps fine-tuning a tabular foundation model.
# Stages live in workflow/rules/; shared helpers and config validation in common.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# Landing text of `snakemake --report report.html` (question, protocol, how to read, the answer).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/causal.smk"
include: "workflow/rules/generators.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/aggregate.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),
