"""Labels and number formatting shared by the plots and the summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "log_loss": "log-loss",
}
SPLIT_LABELS = {"val": "validation", "test": "test"}


def plural(n, noun: str) -> str:
    """'1 dataset', '3 datasets'."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def metric_name(split: str, metric: str) -> str:
    return f"{SPLIT_LABELS[split]} {metric_label(metric)}"


def md_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of already formatted cells (strings), or a note when empty."""
    if frame.empty:
        return "_(no rows)_"
    cells = frame.astype(str).map(lambda text: text.replace("|", "\\|"))
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)
