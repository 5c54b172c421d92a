"""CausalMixFT: causal data augmentation for fine-tuning tabular foundation models.

Stages (one module group each, all usable without Snakemake):
data (load, type, split) -> causal (discover DAG, fit SCM, sample) -> model (in-context
transformer, pretraining, fine-tuning) -> experiment (fine-tuning runs) -> analysis (aggregation: tables, plots, report).
"""

from causalmixft.errors import StageError

__all__ = ["StageError"]
__version__ = "0.1.0"
