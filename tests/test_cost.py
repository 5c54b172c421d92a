"""Cost of the workflow (causalmixft.analysis.cost): jobs from benchmark paths, growth fits, projection."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import REPO

from causalmixft.analysis import cost
from causalmixft.analysis.collect import load_benchmarks
from causalmixft.methods import BUILTIN_METHODS
from causalmixft.io import write_json

FEATURES = {"small": 4, "wide": 16}


def bench(rows):
    """A load_benchmarks frame from (file, wall_s, cpu_s, max_rss_mib) rows."""
    return pd.DataFrame(
        [
            {"rule": f.split("/")[0].removesuffix(".tsv"), "file": f, "wall_s": w, "cpu_s": c, "max_rss_mib": r}
            for f, w, c, r in rows
        ]
    )


def measured():
    """discover_dag ~ 0.5 n_features^1.5; sample ~ 0.01 size; finetune runs 10 s (zeroshot 2 s) on CPU."""
    rows = [("prepare_dataset/small.tsv", 1.0, 0.5, 100), ("prepare_dataset/wide.tsv", 1.0, 0.5, 120)]
    for dataset, n in FEATURES.items():
        for fold in (0, 1):
            rows.append((f"discover_dag/{dataset}/fold{fold}.tsv", 0.5 * n**1.5, 0.25 * n**1.5, 300))
            for size in (64, 256):
                sample = f"sample_synthetic/causalmixft/{dataset}/fold{fold}/n{size}.tsv"
                rows.append((sample, 0.01 * size, 0.01 * size, 400))
                rows.append((f"finetune/tfm-small/causalmixft/{dataset}/fold{fold}/n{size}.tsv", 10.0, 9.0, 600))
            rows.append((f"finetune/tfm-small/zeroshot/{dataset}/fold{fold}/n0.tsv", 2.0, 2.0, 500))
    return bench(rows)


def spec(**overrides):
    base = {
        "name": "grid.yaml",
        "datasets": {"a": 4, "b": 64, "c": None},
        "folds": 10,
        "sizes": [0, 64, 1024],
        "generators": ["causalmixft"],
        "methods": [
            {"name": "zeroshot", "pool": "none", "generator": None},
            {"name": "finetune", "pool": "real", "generator": None},
            {"name": "causalmixft", "pool": "real+synthetic", "generator": "causalmixft"},
        ],
        "backbone": "tfm-small",
        "steps": 60,
        "device": "auto",
    }
    return {**base, **overrides}


def test_jobs_are_keyed_by_their_benchmark_paths(tmp_path):
    for name, n in FEATURES.items():
        write_json(tmp_path / "data" / f"{name}.meta.json", {"n_features": n})
    (tmp_path / "bench" / "finetune" / "tfm-small" / "causalmixft" / "wide" / "fold1").mkdir(parents=True)
    (tmp_path / "bench" / "finetune" / "tfm-small" / "causalmixft" / "wide" / "fold1" / "n256.tsv").write_text(
        "s\th:m:s\tmax_rss\tcpu_time\n3.5\t0:00:03\t512.0\t3.0\n"
    )
    counts = cost.load_feature_counts(tmp_path / "data")
    jobs = cost.benchmark_jobs(load_benchmarks(tmp_path / "bench"), counts)
    assert counts == FEATURES and cost.load_feature_counts(tmp_path / "absent") == {}
    assert jobs.iloc[0][["rule", "variant", "dataset", "fold", "size", "n_features", "wall_s"]].tolist() == [
        "finetune", "tfm-small/causalmixft", "wide", 1, 256, 16, 3.5
    ]
    other = bench([("prepare_dataset/unknown.tsv", 1.0, 1.0, 1.0), ("aggregate.tsv", 2, 2, 2)])
    other = cost.benchmark_jobs(other, counts)
    assert other["dataset"].isna().all() and other["n_features"].isna().all()
    assert other["rule"].tolist() == ["prepare_dataset", "aggregate"]


def test_growth_fits_recover_the_exponents():
    table = cost.scaling_table(cost.benchmark_jobs(measured(), FEATURES)).set_index(["rule", "variant"])
    discover = table.loc[("discover_dag", "")]
    assert discover["features_exponent"] == pytest.approx(1.5) and math.isnan(discover["size_exponent"])
    assert discover["r2"] == pytest.approx(1.0) and discover["jobs"] == 4 and discover["datasets"] == 2
    sample = table.loc[("sample_synthetic", "causalmixft")]
    assert sample["size_exponent"] == pytest.approx(1.0) and sample["features_exponent"] == pytest.approx(0, abs=1e-9)
    assert (sample["size_min"], sample["size_max"], sample["max_rss_mib"]) == (64, 256, 400)
    assert cost.power_law(cost.benchmark_jobs(measured(), {})).get("features_exponent") != 1.5  # no widths: no fit


def test_projection_counts_the_target_jobs_and_scales_the_measured_cost():
    jobs = cost.benchmark_jobs(measured(), FEATURES)
    table = cost.project(jobs, spec(), local_steps=30, devices={"tfm-small/causalmixft": "cpu"})
    rows = table.set_index(["rule", "variant"])
    grid = cost.target_jobs(spec()).groupby(["rule", "variant"]).size()
    assert grid[("split", "")] == 30 and grid[("sample_synthetic", "causalmixft")] == 60
    assert grid[("finetune", "tfm-small/causalmixft")] == 60 and grid[("finetune", "tfm-small/zeroshot")] == 30
    # discovery: 10 folds of widths 4 and 64 (and one unknown, at the measured mean width 8)
    discover = rows.loc[("discover_dag", "")]
    assert discover["wall_h"] == pytest.approx(10 * 0.5 * (4**1.5 + 64**1.5 + 8**1.5) / 3600)
    assert discover["cpu_h"] == pytest.approx(discover["wall_h"] / 2) and bool(discover["extrapolated"])
    # sampling grows linearly with the size: 10 folds x 3 datasets x (64 + 1024) x 0.01 s
    assert rows.loc[("sample_synthetic", "causalmixft"), "wall_h"] == pytest.approx(30 * 0.01 * (64 + 1024) / 3600)
    # fine-tuning: 10 s per measured 30-step run, 60 steps in the grid; a GPU rule measured on a CPU
    tuned = rows.loc[("finetune", "tfm-small/causalmixft")]
    assert tuned["wall_h"] == pytest.approx(60 * 10 * 2 / 3600) and tuned["scale"] == 2
    assert tuned["resource"] == "gpu" and math.isnan(tuned["gpu_h"]) and "GPU hours unknown" in tuned["basis"]
    assert rows.loc[("finetune", "tfm-small/zeroshot"), "scale"] == 1  # no fine-tuning steps to scale
    # plain finetune was not measured: the measured fine-tuning methods' jobs stand in
    assert "measured fine-tuning methods" in rows.loc[("finetune", "tfm-small/finetune"), "basis"]
    totals = table[table["rule"] == "total"].set_index("resource")
    assert totals.loc["cpu", "target_jobs"] == 3 + 3 * 30 + 60  # prepare, split/discover/fit_scm, samples
    assert totals.loc["gpu", "target_jobs"] == 30 + 30 + 60
    assert "without measurement are not counted" in totals.loc["cpu", "basis"]  # split and fit_scm
    assert math.isnan(rows.loc[("fit_scm", ""), "wall_h"]) and rows.loc[("fit_scm", ""), "basis"] == "no measurement"


def test_gpu_hours_only_from_runs_measured_on_a_gpu():
    jobs = cost.benchmark_jobs(measured(), FEATURES)
    runs = pd.DataFrame(
        [{"backbone": "tfm-small", "method": "causalmixft", "dataset": "small", "fold": 0, "size": 64,
          "device": "cuda:1"}]
    )
    devices = cost.run_devices(runs)
    assert devices == {"tfm-small/causalmixft": "cuda"}
    rows = cost.project(jobs, spec(), local_steps=60, devices=devices).set_index(["rule", "variant"])
    assert rows.loc[("finetune", "tfm-small/causalmixft"), "gpu_h"] == pytest.approx(60 * 10 / 3600)
    on_cpu = cost.project(jobs, spec(device="cpu"), local_steps=60, devices=devices).set_index(["rule", "variant"])
    assert on_cpu.loc[("finetune", "tfm-small/causalmixft"), "resource"] == "cpu"
    assert cost.project(jobs, None).empty


def test_the_tabarena_grid_spec_has_every_task_width_and_method():
    tasks = REPO / "resources" / "tabarena" / "tabarena_v0.1_classification.csv"
    grid = cost.projection_spec(REPO / "config" / "tabarena.yaml", tasks)
    assert len(grid["datasets"]) == 38 and all(isinstance(n, int) for n in grid["datasets"].values())
    assert grid["datasets"]["diabetes"] == 8 and grid["folds"] == 10 and grid["device"] == "auto"
    # every built-in method but the selection probe of the study (causalmixft_synthval, config/study.yaml)
    assert {m["name"] for m in grid["methods"]} == set(BUILTIN_METHODS) - {"causalmixft_synthval"}
    counts = cost.target_jobs(grid).groupby("rule").size()
    assert counts["prepare_dataset"] == 38 and counts["discover_dag"] == 380
    assert counts["finetune"] == 380 * sum(7 if m["generator"] else 1 for m in grid["methods"])
    assert cost.projection_spec(REPO / "absent.yaml") is None


def test_a_target_beyond_the_measured_widths_is_flagged_not_silently_scaled():
    only_small = measured()
    only_small = only_small[~only_small["file"].str.contains("/wide/")]
    jobs = cost.benchmark_jobs(only_small, FEATURES)
    discover = cost.project(jobs, spec(), local_steps=30).set_index(["rule", "variant"]).loc[("discover_dag", "")]
    assert bool(discover["extrapolated"]) and math.isnan(discover["features_exponent"])
    assert "not scaled by features: measured at 4 only, target 4-64" in discover["basis"]
    assert discover["wall_h"] == pytest.approx(30 * 4.0 / 3600)  # the median job, 30 times


def test_fine_tuning_scales_with_the_steps_in_its_loop_only():
    jobs = cost.benchmark_jobs(measured(), FEATURES)
    runs = pd.DataFrame(
        [
            {"backbone": "tfm-small", "method": "causalmixft", "dataset": d, "fold": f, "size": 64, "wall_time_s": 6.0}
            for d in FEATURES
            for f in (0, 1)
        ]
    )
    loops = cost.run_loop_seconds(runs)
    assert loops == {"tfm-small/causalmixft": 6.0}
    rows = cost.project(jobs, spec(), local_steps=30, loop_seconds=loops).set_index(["rule", "variant"])
    tuned = rows.loc[("finetune", "tfm-small/causalmixft")]
    assert tuned["scale"] == pytest.approx(0.4 + 0.6 * 2)  # 4 s of start-up, 6 s of loop x 60/30 steps
    assert tuned["wall_h"] == pytest.approx(60 * 10 * 1.6 / 3600) and "60% of a job" in tuned["basis"]


def test_job_steps_count_every_replicate():
    assert cost.job_steps({"finetune": {"steps": 60}, "protocol": {"seeds": 3}}) == 180
    assert cost.job_steps({"finetune": {"steps": 60}, "protocol": {}}) == 60
