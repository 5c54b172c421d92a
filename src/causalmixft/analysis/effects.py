"""The answer's statistics: paired effects against plain fine-tuning, with what they can and cannot see.

For every real budget x method x synthetic size x split x metric:

- the paired difference ``method - finetune`` per (dataset, fold, replicate) — replicate r of
  both shares its seed, the test rows are the same — averaged replicates -> folds -> datasets
  (so every dataset weighs the same, whatever its folds or replicates);
- over datasets: the mean, a t interval, a two-sided paired t test (Holm once over the named
  family: one family per split x metric, all budgets, methods and sizes together), the minimum
  detectable effect at the configured power from the observed SD of the dataset differences (per
  comparison, and at the level Holm's first step tests in the family: alpha / m), and, for the
  metric the margin was fixed for (ROC-AUC), two one-sided tests (TOST) against the equivalence
  margin fixed in the config before the run, Holm-corrected over the same family;
- with fewer than ``min_datasets`` datasets: the mean and counts only, "too few datasets".

:func:`size_selection` puts the validation-chosen size beside its chance references: a size drawn
at random from the same candidates, and always n = 0 (plain fine-tuning).

Units: score points of the metric (ROC-AUC, accuracy in [0, 1]); a difference of 0.01 is one
point of AUC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats as st

from causalmixft.analysis.collect import on_real_validation
from causalmixft.analysis.stats import denoised, holm, sign_counts
from causalmixft.analysis.study import ALL, TOO_FEW
from causalmixft.metrics import HIGHER_IS_BETTER

# The config's analysis.equivalence_margin is a test ROC-AUC difference (its schema says so): the other
# metrics get no equivalence test, as no margin was fixed for them before the run.
EQUIVALENCE_METRIC, EQUIVALENCE_METRIC_NAME = "roc_auc", "ROC-AUC"

EFFECT_COLUMNS = (
    "real_budget group method size size_ratio split metric n_datasets mean_diff ci_low ci_high sd_diff p_value "
    "p_holm family mde mde_holm tost_p tost_p_holm equivalent verdict n_better n_worse"
).split()
SELECTION_COLUMNS = (
    "real_budget method metric n_datasets agree agree_ci_low agree_ci_high agree_random regret regret_ci_low "
    "regret_ci_high regret_random regret_zero note"
).split()


@dataclass(frozen=True)
class Analysis:
    """``analysis`` in the config: fixed before a study runs."""

    equivalence_margin: float = 0.01
    alpha: float = 0.05
    power: float = 0.8
    min_datasets: int = 5

    @classmethod
    def from_config(cls, config: Mapping | None) -> "Analysis":
        given = dict((config or {}).get("analysis") or {})
        return cls(**{k: given[k] for k in cls.__dataclass_fields__ if k in given})

    def margin_text(self) -> str:
        return f"+-{self.equivalence_margin:g} {EQUIVALENCE_METRIC_NAME}"


def dataset_differences(long: pd.DataFrame, baseline: str = "finetune") -> pd.DataFrame:
    """Per budget x method x size x split x metric x dataset: the paired difference to ``baseline``,
    averaged replicates -> folds -> dataset. ``long`` is runs_long (one row per replicate); a pair shares
    its rows, so validation scores are on the real validation rows (``collect.on_real_validation``)."""
    keys = ["real_budget", "dataset", "fold", "replicate", "split", "metric"]
    # the real validation rows first, then the finite scores: a synthval replicate whose selection-set
    # score is finite but whose real-row score is not drops out instead of pairing different rows
    frame = on_real_validation(long)
    frame = frame[np.isfinite(frame["value"].to_numpy(float))]
    # the baseline's real rows are the cell's real train rows (zeroshot and scm_only record none)
    base = frame[frame["method"] == baseline][[*keys, "value", "n_real_rows"]]
    base = base.rename(columns={"value": "base", "n_real_rows": "train_rows"})
    others = frame[frame["method"] != baseline]
    paired = others.merge(base, on=keys, how="inner")
    paired = paired.assign(diff=paired["value"] - paired["base"])
    cell = ["real_budget", "method", "size", "split", "metric"]
    folds = paired.groupby([*cell, "dataset", "fold"], sort=True)["diff"].mean()
    datasets = folds.groupby([*cell, "dataset"], sort=True).mean().reset_index()
    # one ratio per cell, also where datasets differ in their real train rows (a table short of the budget)
    ratio = (paired["size"] / paired["train_rows"]).groupby([paired[c] for c in cell]).median()
    return datasets.merge(ratio.rename("size_ratio").reset_index(), on=cell, how="left")


def mde(sd: float, n: int, alpha: float, power: float) -> float:
    """Smallest true mean difference a two-sided one-sample t test at ``alpha`` detects with
    probability ``power`` over ``n`` datasets whose differences scatter with SD ``sd``
    ((t_{1-alpha/2} + t_{power}) * sd / sqrt(n), df = n - 1: within 1 % of the noncentral t's
    answer from n = 5 on)."""
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    df = n - 1
    return float((st.t.ppf(1 - alpha / 2, df) + st.t.ppf(power, df)) * sd / np.sqrt(n))


def tost(diffs: np.ndarray, margin: float) -> float:
    """p value of two one-sided t tests that the mean lies within (-margin, +margin); small: equivalent."""
    n = len(diffs)
    mean, se = float(np.mean(diffs)), float(np.std(diffs, ddof=1) / np.sqrt(n))
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    lower = st.t.sf((mean + margin) / se, n - 1)  # H0: mean <= -margin
    upper = st.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= +margin
    return float(max(lower, upper))


def effects(long: pd.DataFrame, analysis: Analysis, baseline: str = "finetune",
            groups: Mapping[str, Iterable[str]] | None = None) -> pd.DataFrame:
    """The effect table (``EFFECT_COLUMNS``): one row per budget x group x method x size x split x metric.

    Group ``all`` holds every dataset; ``groups`` (e.g. the source kinds: TabArena tables, TabMWP
    tasks) are tested apart, each in Holm families of its own (``vs finetune: test roc_auc (tabmwp)``)."""
    per_dataset = dataset_differences(long, baseline)
    rows = []
    cell = ["real_budget", "method", "size", "split", "metric"]
    for name, members in {ALL: None, **(groups or {})}.items():
        own = per_dataset if members is None else per_dataset[per_dataset["dataset"].isin(list(members))]
        rows += [_effect_row(dict(zip(cell, key)), group, analysis, baseline, name)
                 for key, group in own.groupby(cell, sort=True)]
    table = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    table = table.astype({"equivalent": object, "verdict": object})
    for family, members in table.groupby("family").groups.items():
        tested = table.loc[members, "p_value"].dropna()
        if len(tested):
            table.loc[tested.index, "p_holm"] = holm(tested.to_numpy(float))
            # what Holm's first step needs: the MDE at alpha / m, m the family's tested cells
            level = analysis.alpha / len(tested)
            table.loc[tested.index, "mde_holm"] = [
                mde(sd, int(n), level, analysis.power)
                for sd, n in table.loc[tested.index, ["sd_diff", "n_datasets"]].to_numpy(float)
            ]
        equivalence = table.loc[members, "tost_p"].dropna()
        if len(equivalence):
            table.loc[equivalence.index, "tost_p_holm"] = holm(equivalence.to_numpy(float))
            table.loc[equivalence.index, "equivalent"] = table.loc[equivalence.index, "tost_p_holm"] < analysis.alpha
    tested = table["p_holm"].notna()
    table.loc[tested, "verdict"] = [
        _verdict(r, analysis) for r in table.loc[tested].itertuples()
    ]
    return table


def overall(effects_table: pd.DataFrame) -> pd.DataFrame:
    """The rows of every dataset together (group ``all``): the answer; the other groups break it down."""
    return effects_table[effects_table["group"] == ALL]


def _effect_row(key: dict, group: pd.DataFrame, analysis: Analysis, baseline: str, name: str) -> dict:
    """One cell's statistics over its datasets' paired differences (``group``: one row per dataset)."""
    diffs = group["diff"].to_numpy(float)
    n = len(diffs)
    higher = HIGHER_IS_BETTER.get(key["metric"], True)
    family = f"vs {baseline}: {key['split']} {key['metric']}" + ("" if name == ALL else f" ({name})")
    row = {**key, "group": name, "size_ratio": float(group["size_ratio"].iloc[0]), "n_datasets": n}
    row |= {"mean_diff": float(np.mean(diffs)), "family": family}
    better, worse = sign_counts(diffs if higher else -diffs)
    row |= {"n_better": better, "n_worse": worse}
    if n < analysis.min_datasets:
        row |= {"verdict": TOO_FEW}
    else:
        sd = float(np.std(diffs, ddof=1))
        se = sd / np.sqrt(n)
        half = float(st.t.ppf(1 - analysis.alpha / 2, n - 1) * se)
        p = float(2 * st.t.sf(abs(row["mean_diff"]) / se, n - 1)) if se > 0 else (1.0 if row["mean_diff"] == 0 else 0.0)
        row |= {"ci_low": row["mean_diff"] - half, "ci_high": row["mean_diff"] + half, "sd_diff": sd, "p_value": p}
        row["mde"] = mde(sd, n, analysis.alpha, analysis.power)
        if key["metric"] == EQUIVALENCE_METRIC:
            row["tost_p"] = tost(diffs, analysis.equivalence_margin)
    return row


def _verdict(row, analysis: Analysis) -> str:
    if row.p_holm < analysis.alpha:
        return "better" if (row.mean_diff > 0) == HIGHER_IS_BETTER.get(row.metric, True) else "worse"
    if row.tost_p_holm < analysis.alpha:  # NaN (no margin for this metric) compares False
        return f"equivalent within +-{analysis.equivalence_margin:g}"
    return "inconclusive"


def size_selection(choices: Iterable[pd.DataFrame], analysis: Analysis) -> pd.DataFrame:
    """The validation-chosen size beside its chance references, per budget x method x metric.

    ``choices`` are per-unit candidate tables with columns real_budget, method, dataset, fold,
    replicate, metric, size, val, test (n = 0 included). Per unit: ``agree`` (the chosen size is
    a test-best one), ``regret`` (best test - test at the chosen size); the references are a
    size drawn uniformly from the candidates (expected agreement: share of test-best candidates;
    expected regret: mean regret over candidates) and always n = 0. Units -> folds -> datasets,
    a t interval over datasets where there are ``min_datasets``, cut to the values' range: an
    agreement rate lies in [0, 1] and a regret is never negative.
    """
    frame = pd.concat(list(choices), ignore_index=True) if choices else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(columns=SELECTION_COLUMNS)
    unit = ["real_budget", "method", "dataset", "fold", "replicate", "metric"]
    per_unit = []
    for key, group in frame.groupby(unit, sort=True):
        group = group[np.isfinite(group["val"].to_numpy(float)) & np.isfinite(group["test"].to_numpy(float))]
        if len(group) < 2:
            continue
        sign = 1.0 if HIGHER_IS_BETTER.get(key[-1], True) else -1.0
        # up to float noise (stats.denoised): two sizes that kept the same weights score the same
        val, test = (denoised(sign * group[split].to_numpy(float)) for split in ("val", "test"))
        sizes = group["size"].to_numpy()
        order = np.lexsort((sizes, -val))  # ties: the smaller size
        chosen = order[0]
        best = test.max()
        regrets = best - test
        zero = regrets[sizes == 0]
        per_unit.append(dict(zip(unit, key)) | {
            "agree": float(test[chosen] == best),
            "agree_random": float(np.mean(test == best)),
            "regret": float(regrets[chosen]),
            "regret_random": float(regrets.mean()),
            "regret_zero": float(zero[0]) if len(zero) else np.nan,
        })
    if not per_unit:  # no unit with two candidates (e.g. no finetune run to give n = 0)
        return pd.DataFrame(columns=SELECTION_COLUMNS)
    units = pd.DataFrame(per_unit)
    values = ["agree", "agree_random", "regret", "regret_random", "regret_zero"]
    cell = ["real_budget", "method", "metric"]
    folds = units.groupby([*cell, "dataset", "fold"])[values].mean()
    datasets = folds.groupby([*cell, "dataset"]).mean().reset_index()
    rows = []
    for key, group in datasets.groupby(cell, sort=True):
        n = len(group)
        row = dict(zip(cell, key)) | {"n_datasets": n} | {v: float(group[v].mean()) for v in values}
        if n < analysis.min_datasets:
            row["note"] = TOO_FEW
        else:
            for value, (floor, ceiling) in (("agree", (0.0, 1.0)), ("regret", (0.0, np.inf))):
                low, high = t_interval(group[value].to_numpy(float), analysis.alpha)
                row |= {f"{value}_ci_low": max(low, floor), f"{value}_ci_high": min(high, ceiling)}
            row["note"] = ""
        rows.append(row)
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def t_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    n = len(values)
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(n))
    half = float(st.t.ppf(1 - alpha / 2, n - 1) * se)
    return mean - half, mean + half


def selection_candidates(long: pd.DataFrame, methods: Iterable[str], anchor: str = "finetune") -> pd.DataFrame:
    """Per-unit candidates of every size-dependent method: its sizes above 0 and n = 0 from
    ``anchor`` (the same fold and replicate), columns as :func:`size_selection` reads them."""
    keys = ["real_budget", "dataset", "fold", "replicate", "metric", "size"]
    wide = long[long["split"].isin(["val", "test"])].pivot_table(
        index=["method", *keys], columns="split", values="value", aggfunc="first"
    ).reset_index()
    parts = []
    for method in methods:
        own = wide[(wide["method"] == method) & (wide["size"] > 0)]
        zero = wide[wide["method"] == anchor].assign(method=method, size=0)
        parts.append(pd.concat([own, zero], ignore_index=True))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["method", *keys, "val", "test"])
