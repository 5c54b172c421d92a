"""Time and fidelity of the causal stage: discovery, SCM fit and sampling at 10, 20 and 40 features
on 500 rows, for scm quality ``fast`` against dowhy's ``good``; prints JSON.

Tables come from random nonlinear SCMs with mixed numeric and categorical columns and a binary
label (causalmixft.causal.simulate.random_scm). Per table: one discovery (shared by both
qualities), one fit per quality, one draw of 500 rows, and the classifier two-sample ROC-AUC of
the draw against the 500 real rows (0.5 = indistinguishable). The reference row is the same test
on 500 held-out real rows; ``auc_fast_true_dag`` fits the fast SCM on the true DAG instead of the
discovered one, to separate discovery errors from mechanism errors. Target: at 40 features, ``fast`` fits at least 5x faster than ``good``
with a two-sample AUC at most 0.02 worse. Usage::

    OMP_NUM_THREADS=1 python bench/bench_causal.py [--features 10 20 40] [--rows 500] [--tables 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from causalmixft.causal import simulate
from causalmixft.causal.discover import discover_dag
from causalmixft.generators.fidelity import two_sample_auc
from causalmixft.causal.scm import FAST_MECHANISMS, fit_scm

QUALITIES = ("fast", "good")
FIDELITY_SEEDS = (0, 1)  # the two-sample AUC is averaged over two CV splits / forests


def c2st(real, synthetic, schema) -> float:
    return float(
        np.mean(
            [two_sample_auc(real, synthetic, schema, s, len(real), np.random.default_rng(s)) for s in FIDELITY_SEEDS]
        )
    )


def bench_table(n_features: int, n_rows: int, seed: int) -> dict:
    table = simulate.random_scm(n_features, 2 * n_rows, seed)
    real, held_out = table.frame.iloc[:n_rows], table.frame.iloc[n_rows:].reset_index(drop=True)
    row = {"seed": seed, "real_vs_real_auc": c2st(real, held_out, table.schema)}
    start = time.perf_counter()
    dag = discover_dag(real, table.schema, seed=seed).dag
    row["discover_s"] = time.perf_counter() - start
    for quality in QUALITIES:
        start = time.perf_counter()
        fitted = fit_scm(real, table.schema, dag, quality, seed=seed)
        row[f"fit_{quality}_s"] = time.perf_counter() - start
        start = time.perf_counter()
        drawn = table.schema.cast(fitted.sample(n_rows, seed=seed + 1))
        row[f"sample_{quality}_s"] = time.perf_counter() - start
        row[f"auc_{quality}"] = c2st(real, drawn, table.schema)
    # the same fast SCM on the true DAG: how much of the gap to 0.5 is discovery's, not the mechanisms'
    on_truth = fit_scm(real, table.schema, table.dag, "fast", seed=seed)
    row["auc_fast_true_dag"] = c2st(real, table.schema.cast(on_truth.sample(n_rows, seed=seed + 1)), table.schema)
    return row


def summarize(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "seed"]
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}
    mean["fit_speedup_good_over_fast"] = round(mean["fit_good_s"] / mean["fit_fast_s"], 2)
    mean["auc_fast_minus_good"] = round(mean["auc_fast"] - mean["auc_good"], 4)
    return mean


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--tables", type=int, default=3, help="random SCM tables per feature count")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load_before = os.getloadavg()
    results = {}
    for n_features in args.features:
        rows = [bench_table(n_features, args.rows, seed) for seed in range(args.tables)]
        results[str(n_features)] = {
            "mean": summarize(rows),
            "tables": [{k: round(v, 4) for k, v in r.items()} for r in rows],
        }
    target = results.get("40", {}).get("mean")
    report = {
        "protocol": {
            "rows": args.rows,
            "tables_per_size": args.tables,
            "fidelity": "two-sample ROC-AUC, " "random forest, 5-fold CV, mean of 2 seeds",
            "fast_mechanisms": FAST_MECHANISMS,
        },
        "results": results,
        "target_at_40_features": (
            None
            if target is None
            else {
                "fit_speedup_at_least_5": target["fit_speedup_good_over_fast"] >= 5,
                "auc_at_most_0.02_worse": target["auc_fast_minus_good"] <= 0.02,
            }
        ),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
