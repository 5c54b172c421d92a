"""What the workflow costs, from Snakemake's benchmark files, and what a larger grid would cost.

Every rule writes ``results/benchmarks/{rule}/{...}/{dataset}/fold{k}/n{size}.tsv`` (wall seconds
``s``, ``cpu_time``, ``max_rss``). This module turns those files into

- ``cost_scaling``: per rule and variant (the method of a fine-tuning run, the generator of a
  sample), the median cost of a job and how it grows with the number of features and the synthetic
  size: a least-squares power law ``wall_s ~ n_features^b x size^c`` on the jobs at hand, where
  they span at least two feature counts (sizes);
- ``cost_projection``: a target grid's jobs per rule (for example config/tabarena.yaml: 38 tasks x
  10 folds x methods x sizes) times the measured median cost per job, scaled to each target job's
  feature count and size with the exponents above (negative exponents, noise on few datasets, are
  taken as 0), and fine-tuning by the ratio of the target's to the measured steps per job (step
  cap x replicates, ``job_steps``).

Projections are only as good as their basis, and the table says what it is: how many jobs were
measured, over which feature counts (beyond them the power law extrapolates), and on which
device. Fine-tuning measured on a CPU projects CPU hours, not GPU hours: GPU hours are given only
for runs whose ``metrics.json`` records a CUDA device.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from causalmixft.methods import Method, resolve_method
from causalmixft.io import read_json

GPU_RULES = ("finetune", "pretrain_backbone")
# What identifies one run in runs_long (real_budget is absent from reports before protocol v3).
RUN_IDENTITY = ("backbone", "method", "dataset", "fold", "real_budget", "size")
JOB_COLUMNS = ["rule", "variant", "dataset", "fold", "size", "n_features", "wall_s", "cpu_s", "max_rss_mib"]
SCALING_COLUMNS = [
    "rule",
    "variant",
    "jobs",
    "datasets",
    "n_features_min",
    "n_features_max",
    "size_min",
    "size_max",
    "wall_s_median",
    "cpu_s_median",
    "max_rss_mib",
    "features_exponent",
    "size_exponent",
    "r2",
]
PROJECTION_COLUMNS = [
    "rule",
    "variant",
    "resource",
    "target_jobs",
    "measured_jobs",
    "measured_device",
    "wall_s_median",
    "features_exponent",
    "size_exponent",
    "scale",
    "wall_h",
    "cpu_h",
    "gpu_h",
    "max_rss_mib",
    "extrapolated",
    "basis",
]
_FOLD = re.compile(r"^fold(\d+)$")
_SIZE = re.compile(r"^n(\d+)$")


# --- measured jobs ------------------------------------------------------------------------------


def load_feature_counts(meta_root: str | Path | None) -> dict[str, int]:
    """``n_features`` of every prepared dataset under ``meta_root`` (``{dataset}.meta.json``)."""
    if meta_root is None or not Path(meta_root).is_dir():
        return {}
    counts = {}
    for path in sorted(Path(meta_root).glob("*.meta.json")):
        meta = read_json(path)
        if "n_features" in meta:
            counts[path.name.removesuffix(".meta.json")] = int(meta["n_features"])
    return counts


def benchmark_jobs(benchmarks: pd.DataFrame, n_features: Mapping[str, int]) -> pd.DataFrame:
    """One row per benchmark file (``collect.load_benchmarks``) with the job's keys read from its path.

    Below the rule's folder, the folders before the dataset name are the variant (``tfm-small/
    causalmixft`` for a fine-tuning run, the generator for a sample), then ``fold{k}`` and
    ``n{size}``. Datasets are recognised by name (``n_features`` keys); files of other datasets
    keep their rule and timings but no dataset or feature count.
    """
    rows = []
    for record in benchmarks.to_dict("records"):
        parts = list(Path(record["file"]).with_suffix("").parts)
        rest = parts[1:] if len(parts) > 1 else []
        where = next((i for i, part in enumerate(rest) if part in n_features), None)
        dataset = rest[where] if where is not None else None
        variant = "/".join(rest[:where]) if where is not None else ""
        fold = size = None
        for part in rest[(where + 1) if where is not None else 0 :]:
            if _FOLD.match(part):
                fold = int(_FOLD.match(part)[1])
            elif _SIZE.match(part):
                size = int(_SIZE.match(part)[1])
        rows.append(
            {
                "rule": record["rule"],
                "variant": variant,
                "dataset": dataset,
                "fold": fold,
                "size": size,
                "n_features": n_features.get(dataset, math.nan) if dataset else math.nan,
                "wall_s": record["wall_s"],
                "cpu_s": record["cpu_s"],
                "max_rss_mib": record["max_rss_mib"],
            }
        )
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


# --- growth -------------------------------------------------------------------------------------


def power_law(jobs: pd.DataFrame) -> dict:
    """Least squares of log(wall_s) on log(n_features) and log(size), each where it varies.

    Returns the exponents (NaN for a covariate that does not vary or is missing) and R^2.
    """
    data = jobs[np.isfinite(jobs["wall_s"].astype(float)) & (jobs["wall_s"].astype(float) > 0)]
    covariates = {}
    features = data["n_features"].astype(float)
    if features.notna().all() and (features > 0).all() and features.nunique() >= 2:
        covariates["features_exponent"] = np.log(features.to_numpy())
    sizes = pd.to_numeric(data["size"], errors="coerce")
    if sizes.notna().all() and (sizes > 0).all() and sizes.nunique() >= 2:
        covariates["size_exponent"] = np.log(sizes.to_numpy())
    result = {"features_exponent": math.nan, "size_exponent": math.nan, "r2": math.nan}
    if not covariates or len(data) < len(covariates) + 2:
        return result
    y = np.log(data["wall_s"].astype(float).to_numpy())
    x = np.column_stack([np.ones(len(y)), *covariates.values()])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    total = ((y - y.mean()) ** 2).sum()
    result.update(zip(covariates, map(float, coef[1:])))
    result["r2"] = float(1 - (residual**2).sum() / total) if total > 0 else math.nan
    return result


def scaling_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule and variant: jobs, covered feature counts and sizes, median costs, power-law exponents."""
    if jobs.empty:
        return pd.DataFrame(columns=SCALING_COLUMNS)
    rows = []
    for (rule, variant), cell in jobs.groupby(["rule", "variant"], sort=True, dropna=False):
        sizes = pd.to_numeric(cell["size"], errors="coerce")
        rows.append(
            {
                "rule": rule,
                "variant": variant,
                "jobs": len(cell),
                "datasets": cell["dataset"].nunique(),
                "n_features_min": cell["n_features"].min(),
                "n_features_max": cell["n_features"].max(),
                "size_min": sizes.min(),
                "size_max": sizes.max(),
                "wall_s_median": cell["wall_s"].median(),
                "cpu_s_median": cell["cpu_s"].median(),
                "max_rss_mib": cell["max_rss_mib"].max(),
                **power_law(cell),
            }
        )
    return pd.DataFrame(rows, columns=SCALING_COLUMNS)


# --- the target grid ----------------------------------------------------------------------------


def projection_spec(config_path: str | Path, tasks_csv: str | Path | None = None) -> dict | None:
    """A target grid as plain data (a Snakemake param) from a workflow config, or None without one.

    Feature counts come from ``tasks_csv`` (``dataset_name``, ``num_features``; the TabArena task
    list) for the datasets it lists; the others count as unknown.
    """
    import yaml

    config_path = Path(config_path)
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text())
    features = {}
    if tasks_csv is not None and Path(tasks_csv).is_file():
        with open(tasks_csv) as handle:
            features = {row["dataset_name"]: int(row["num_features"]) for row in csv.DictReader(handle)}
    finetune = config["finetune"]
    custom = finetune.get("custom_methods")
    methods = [resolve_method(name, custom) for name in finetune["methods"]]
    return {
        "name": f"{config_path.parent.name}/{config_path.name}",
        "datasets": {name: features.get(name) for name in sorted(config["datasets"])},
        "folds": len(config["protocol"]["folds"]),
        "sizes": sorted(int(s) for s in config["synthetic"]["sizes"]),
        "generators": list(config["synthetic"].get("generators", ["causalmixft"])),
        "methods": [{"name": m.name, "pool": m.pool, "generator": m.generator} for m in methods],
        "backbone": config["backbone"]["name"],
        "steps": job_steps(config),
        "device": str(finetune.get("device", "auto")),
    }


def job_steps(config: Mapping) -> int:
    """Optimisation steps a fine-tuning job may run: the step cap times its replicates."""
    seeds = int((config.get("protocol") or {}).get("seeds", 1))
    return int((config.get("finetune") or {}).get("steps", 0)) * seeds


def target_jobs(spec: Mapping) -> pd.DataFrame:
    """Every job of the target grid the projection knows how to cost: rule, variant, n_features, size."""
    rows = []
    positive = sorted({int(n) for n in spec["sizes"] if int(n) > 0})  # the target grid's absolute sizes
    methods = [Method(m["name"], m["pool"], m.get("generator")) for m in spec["methods"]]

    def add(rule, variant, n_features, size=None, repeat=1):
        rows.extend([(rule, variant, n_features, size)] * repeat)

    for n_features in spec["datasets"].values():
        folds = int(spec["folds"])
        add("prepare_dataset", "", n_features)
        for rule in ("split", "discover_dag", "fit_scm"):
            add(rule, "", n_features, repeat=folds)
        for generator in spec["generators"]:
            if generator == "causalmixft":
                for size in positive:
                    add("sample_synthetic", "causalmixft", n_features, size, folds)
            else:
                add("fit_generator", generator, n_features, repeat=folds)
                for size in positive:
                    add("sample_generator", generator, n_features, size, folds)
        for method in methods:
            for size in positive if method.size_dependent else [0]:
                add("finetune", f"{spec['backbone']}/{method.name}", n_features, size, folds)
    return pd.DataFrame(rows, columns=["rule", "variant", "n_features", "size"])


# --- projection ---------------------------------------------------------------------------------


def run_devices(runs_long: pd.DataFrame | None) -> dict[str, str]:
    """Per finetune variant (``{backbone}/{method}``): the device kinds its measured runs recorded."""
    if runs_long is None or runs_long.empty or "device" not in runs_long:
        return {}
    runs = runs_long.drop_duplicates([c for c in RUN_IDENTITY if c in runs_long])
    devices = {}
    for (backbone, method), cell in runs.groupby(["backbone", "method"]):
        kinds = sorted({str(d).split(":")[0] for d in cell["device"].dropna()})
        devices[f"{backbone}/{method}"] = "+".join(kinds) or "unknown"
    return devices


def run_loop_seconds(runs_long: pd.DataFrame | None) -> dict[str, float]:
    """Per finetune variant: the median seconds of its runs' fine-tuning loop (``wall_time_s``)."""
    if runs_long is None or runs_long.empty or "wall_time_s" not in runs_long:
        return {}
    runs = runs_long.drop_duplicates([c for c in RUN_IDENTITY if c in runs_long])
    seconds = runs.groupby(["backbone", "method"])["wall_time_s"].median()
    return {f"{backbone}/{method}": float(s) for (backbone, method), s in seconds.items() if np.isfinite(s)}


def project(
    jobs: pd.DataFrame,
    spec: Mapping | None,
    local_steps: int | None = None,
    devices: Mapping[str, str] | None = None,
    loop_seconds: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The target grid's cost per rule and variant from the measured ``jobs``, plus total rows.

    Fine-tuning jobs scale with the ratio of target to measured steps in their fine-tuning loop
    only (``loop_seconds``, from the runs' ``metrics.json``; without it the whole job scales): start-up
    and data loading do not grow with the steps.
    """
    if not spec:
        return pd.DataFrame(columns=PROJECTION_COLUMNS)
    devices = devices or {}
    loop_seconds = loop_seconds or {}
    grid = target_jobs(spec)
    fine_tuning = {f"{spec['backbone']}/{m['name']}": m["pool"] != "none" for m in spec["methods"]}
    gpu_target = spec.get("device", "auto") != "cpu"
    measured = jobs[jobs["wall_s"].astype(float) > 0]
    rows = []
    for (rule, variant), target in grid.groupby(["rule", "variant"], sort=True):
        basis_jobs = measured[(measured["rule"] == rule) & (measured["variant"] == variant)]
        pooled = False
        if basis_jobs.empty and rule == "finetune" and fine_tuning.get(variant):
            # unmeasured fine-tuning method: the measured fine-tuning methods' cost (same steps,
            # batch rows and context; the pool only changes which rows a batch is drawn from)
            others = [v for v, tunes in fine_tuning.items() if tunes]
            basis_jobs = measured[(measured["rule"] == rule) & measured["variant"].isin(others)]
            pooled = not basis_jobs.empty
        loop = loop_seconds.get(variant)
        if loop is None and pooled:
            pooled_loops = [s for v, s in loop_seconds.items() if fine_tuning.get(v)]
            loop = float(np.median(pooled_loops)) if pooled_loops else None
        cell = (rule, variant, target, basis_jobs, pooled, spec, local_steps, devices, gpu_target, loop)
        rows.append(_project_cell(*cell))
    table = pd.DataFrame(rows, columns=PROJECTION_COLUMNS)
    return pd.concat([table, _totals(table)], ignore_index=True)


def _project_cell(rule, variant, target, basis_jobs, pooled, spec, local_steps, devices, gpu_target, loop) -> dict:
    resource = "gpu" if rule in GPU_RULES and gpu_target else "cpu"
    device = devices.get(variant, "cpu") if rule == "finetune" else "cpu"
    row = {
        "rule": rule,
        "variant": variant,
        "resource": resource,
        "target_jobs": len(target),
        "measured_jobs": len(basis_jobs),
        "measured_device": device if len(basis_jobs) else "",
    }
    if basis_jobs.empty:
        return {**row, "basis": "no measurement", "extrapolated": False}
    fit = power_law(basis_jobs)
    b = max(fit["features_exponent"], 0.0) if np.isfinite(fit["features_exponent"]) else 0.0
    c = max(fit["size_exponent"], 0.0) if np.isfinite(fit["size_exponent"]) else 0.0
    wall = basis_jobs["wall_s"].astype(float)
    median = float(wall.median())
    cpu_share = float((basis_jobs["cpu_s"].astype(float) / wall).median())
    features = basis_jobs["n_features"].astype(float)
    sizes = pd.to_numeric(basis_jobs["size"], errors="coerce").astype(float)
    ref_features = float(np.exp(np.log(features).mean())) if b else 1.0
    ref_size = float(np.exp(np.log(sizes).mean())) if c else 1.0
    if b or c:
        # wall = k (n_features / ref)^b (size / ref)^c, k fitted on log scale with b and c fixed
        logs = np.log(wall.to_numpy())
        if b:
            logs = logs - b * np.log(features.to_numpy() / ref_features)
        if c:
            logs = logs - c * np.log(sizes.to_numpy() / ref_size)
        level = float(np.exp(logs.mean()))
    else:
        level = median
    target_features = pd.to_numeric(target["n_features"], errors="coerce").astype(float)
    known = target_features.fillna(ref_features)
    target_sizes = pd.to_numeric(target["size"], errors="coerce").astype(float).fillna(ref_size)
    per_job = level * (known / ref_features) ** b * (target_sizes / ref_size) ** c
    scale, share = 1.0, 1.0
    if rule == "finetune" and local_steps and not variant.endswith("/zeroshot") and spec.get("steps"):
        share = min(loop / median, 1.0) if loop is not None and median > 0 else 1.0
        scale = (1 - share) + share * spec["steps"] / local_steps
    wall_h = float(per_job.sum()) * scale / 3600
    # outside the measured feature counts (sizes): extrapolated by the power law, or not scaled at all
    outside = target_features.max() > features.max() or target_features.min() < features.min()
    wider = bool(features.notna().any() and outside)
    sized = bool(sizes.notna().any() and target["size"].notna().any())
    larger = sized and bool(target_sizes.max() > sizes.max() or target_sizes.min() < sizes.min())
    extrapolated = wider or larger
    what = "median of" if not (b or c) else "power law fitted to"
    parts = [f"{what} {len(basis_jobs)} job{'s' if len(basis_jobs) != 1 else ''}"]
    if pooled:
        parts[0] += " of the measured fine-tuning methods"
    if b or c:
        parts[0] += f": {level:.3g} s"
    if b:
        parts.append(f"x (n_features/{ref_features:.3g})^{b:.2f}")
    if c:
        parts.append(f"x (size/{ref_size:.3g})^{c:.2f}")
    if scale != 1.0:
        parts.append(f"x {scale:.3g} (steps {spec['steps']} vs {local_steps} in the loop, {share:.0%} of a job)")
    if wider and not b:
        parts.append(f"not scaled by features: measured at {_span(features)} only, target {_span(target_features)}")
    if larger and not c:
        parts.append(f"not scaled by size: measured at {_span(sizes)} only, target {_span(target_sizes)}")
    parts.append(f"measured on {device}")
    if resource == "gpu" and not device.startswith("cuda"):
        parts.append("CPU hours if run on CPU; GPU hours unknown until measured on a GPU")
    if target_features.isna().any() and b:
        parts.append(f"{int(target_features.isna().sum())} jobs of unknown width at the reference")
    return {
        **row,
        "wall_s_median": median,
        "features_exponent": b if np.isfinite(fit["features_exponent"]) else math.nan,
        "size_exponent": c if np.isfinite(fit["size_exponent"]) else math.nan,
        "scale": scale,
        "wall_h": wall_h,
        "cpu_h": wall_h * cpu_share if np.isfinite(cpu_share) else math.nan,
        "gpu_h": wall_h if resource == "gpu" and device.startswith("cuda") else math.nan,
        "max_rss_mib": basis_jobs["max_rss_mib"].astype(float).max(),
        "extrapolated": extrapolated,
        "basis": "; ".join(parts),
    }


def _span(values: pd.Series) -> str:
    values = values.dropna()
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"


def _totals(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for resource in ("cpu", "gpu"):
        cell = table[table["resource"] == resource]
        if cell.empty:
            continue
        unmeasured = int((cell["measured_jobs"] == 0).sum())
        note = f"sum over {len(cell)} rule/variant rows"
        if unmeasured:
            note += f"; {unmeasured} without measurement are not counted"
        rows.append(
            {
                "rule": "total",
                "variant": f"{resource} rules",
                "resource": resource,
                "target_jobs": int(cell["target_jobs"].sum()),
                "measured_jobs": math.nan,  # rows may share measured jobs (pooled fine-tuning methods)
                "measured_device": "",
                "wall_h": cell["wall_h"].sum(min_count=1),
                "cpu_h": cell["cpu_h"].sum(min_count=1),
                "gpu_h": cell["gpu_h"].sum(min_count=1),
                "max_rss_mib": cell["max_rss_mib"].max(),
                "extrapolated": bool(cell["extrapolated"].fillna(False).astype(bool).any()),
                "basis": note,
            }
        )
    return pd.DataFrame(rows, columns=PROJECTION_COLUMNS)


def cost_tables(
    benchmarks: pd.DataFrame,
    n_features: Mapping[str, int],
    spec: Mapping | None = None,
    local_steps: int | None = None,
    runs_long: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """``cost_scaling`` and ``cost_projection`` from the benchmark files at hand."""
    jobs = benchmark_jobs(benchmarks, n_features)
    return {
        "cost_scaling": scaling_table(jobs),
        "cost_projection": project(jobs, spec, local_steps, run_devices(runs_long), run_loop_seconds(runs_long)),
    }
