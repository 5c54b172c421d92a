"""The aggregate stage end to end: every file written, missing runs reported, small studies, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from test_aggregate_fixtures import grid_files, with_budget, write_point, write_run

from causalmixft.analysis.definitions import METRIC_DEFINITIONS
from causalmixft.analysis.outputs import OUTPUTS
from causalmixft.analysis.outputs import paths as default_outputs
from causalmixft.analysis.report import AggregateJob
from causalmixft.analysis.report import aggregate_results as run_job
from causalmixft.io import write_json

METHODS = ("zeroshot", "finetune", "causalmixft", "scm_only")
SIZES = (64, 256)
REPO = Path(__file__).resolve().parents[1]
NAMES = [output.name for output in OUTPUTS]


def aggregate_results(**job):
    return run_job(AggregateJob(**job))


def study_grid(datasets, folds=(0, 1)):
    return [
        (method, dataset, fold, size)
        for method in METHODS
        for dataset in datasets
        for fold in folds
        for size in ((0,) if method in ("zeroshot", "finetune") else SIZES)
    ]


def write_study(root: Path, datasets, skip=()):
    """Runs with a small, dataset-specific synthetic-size effect and 3-point curves."""
    grid = study_grid(datasets)
    for method, dataset, fold, size in grid:
        if (method, dataset, fold, size) in skip:
            continue
        base = {"zeroshot": 0.70, "finetune": 0.74, "causalmixft": 0.75, "scm_only": 0.66}[method]
        shift = 0.01 * datasets.index(dataset) + 0.005 * fold + (size / 256) * 0.01
        if method == "zeroshot":
            write_point(root, method, dataset, fold, size, roc_auc=base + shift, accuracy=base - 0.1 + shift)
            continue
        val = [{"roc_auc": base + shift + d, "accuracy": base - 0.1 + shift + d} for d in (0.0, 0.02, 0.01)]
        test = [{"roc_auc": base + shift + d, "accuracy": base - 0.1 + shift + d} for d in (0.0, 0.01, 0.02)]
        write_run(root, method, dataset, fold, size, val, test, selected=1)
    return grid


def run_stage(tmp_path: Path, datasets, skip=(), out="results", min_datasets=5, **options):
    runs = tmp_path / "runs" / "tfm-small"
    grid = write_study(runs, list(datasets), skip)
    outputs = default_outputs(tmp_path / out)
    tables = aggregate_results(
        expected=with_budget(grid),
        metrics_files=grid_files(runs, grid),
        methods_with_real=["finetune", "causalmixft"],
        size_dependent=["causalmixft", "scm_only"],
        outputs=outputs,
        config={"datasets": {d: {"source": f"file:{d}.csv"} for d in datasets}, "synthetic": {"sizes": [0, *SIZES]},
                "analysis": {"min_datasets": min_datasets}},
        **options,
    )
    return tables, outputs


BENCHMARK = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n3\t0:00:03\t120\t1\t1\t1\t0\t0\t80\t2.5\n"
SKIPPED = {("causalmixft", "B", 1, 256), ("zeroshot", "A", 0, 0)}


@pytest.fixture(scope="module")
def full_study(tmp_path_factory):
    """Three datasets with two missing runs, fidelity reports, a benchmark file and a dataset group of two;
    the study's minimum for intervals and tests lowered to 3, so group all gets them and the pair does not."""
    tmp_path = tmp_path_factory.mktemp("full")
    fidelity = []
    for dataset in ("A", "B", "C"):
        for size in SIZES:
            path = tmp_path / "synth" / "causalmixft" / dataset / "fold0" / "real256" / f"n{size}.fidelity.json"
            write_json(path, {"two_sample_auc": 0.6, "marginal_distance": {"mean": 0.1, "per_feature": {}}})
            fidelity.append(path)
    bench = tmp_path / "benchmarks" / "finetune" / "A.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text(BENCHMARK)
    return run_stage(
        tmp_path,
        ["A", "B", "C"],
        skip=SKIPPED,
        fidelity_files=fidelity,
        benchmarks_root=tmp_path / "benchmarks",
        dataset_groups={"pair": ["A", "B"]},
        min_datasets=3,
    )


@pytest.fixture(scope="module")
def one_dataset(tmp_path_factory):
    return run_stage(tmp_path_factory.mktemp("one"), ["A"])


def test_every_output_is_written_and_the_summary_links_them(full_study):
    tables, outputs = full_study
    for name in NAMES:
        assert Path(outputs[name]).stat().st_size > 0, name
        if name.startswith("plot_"):
            assert Path(outputs[name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = Path(outputs["summary"]).read_text()
    links = re.findall(r"\]\(([^)]+)\)", summary)
    # Every plot and table, not the summary itself (the Answer section links some of them twice).
    targets = {Path(outputs[name]).resolve() for name in NAMES if name != "summary"}
    assert {(Path(outputs["summary"]).parent / link).resolve() for link in links} == targets
    for link in links:
        assert (Path(outputs["summary"]).parent / link).exists(), link
    assert METRIC_DEFINITIONS.strip() in summary
    assert "file:A.csv" in summary  # the config that produced it
    assert set(tables["improvement"]["group"]) == {"all", "pair"}  # the dataset group, in the tables
    # cost per rule: 1 job of 3 s wall, 2.5 s CPU, 120 MiB (BENCHMARK), once for the whole grid
    assert "| finetune | 1 | 3.0 | 3.0 | 2.5 | 120 | 2.5 |" in summary
    assert "real_budget" not in tables["cost"] and len(tables["cost"]) == 1
    assert "| real_budget | generator | size | two_sample_auc | marginal_distance.mean |" in summary  # fidelity
    assert "| 256 | causalmixft | 64 | 0.600 (3) | 0.100 (3) |" in summary
    assert summary.index("# Answer: paired gains") < summary.index("# Appendix") < summary.index("## Configuration")
    # causalmixft rises with n on all 3 datasets: Page's exact p = (1/3!)^3 = 1/216 for a perfect order.
    trend = (
        tables["trend"]
        .query("group == 'all' and method == 'causalmixft' and split == 'test' and metric == 'roc_auc'")
        .iloc[0]
    )
    assert trend["page_p_increasing"] == pytest.approx(1 / 216)
    # Two-sided: 2/216; Holm over every finite trend p of the report (Page's and the sign tests').
    family = tables["trend"][["page_p", "sign_test_p"]].notna().to_numpy().sum()
    assert trend["page_p"] == pytest.approx(2 / 216)
    assert trend["page_p_holm"] == pytest.approx(min(1.0, family * 2 / 216))  # the family's smallest p
    # 2/216 alone would be significant; after correcting for the whole family it is not.
    assert trend["page_p_holm"] > 0.05
    # 3 of 3 datasets rise: sign test p = 2 x (1/2)^3 = 0.25; L = sum over datasets of sum_j j x rank_j
    # = 3 x (1 + 4 + 9) = 42 for a perfect increasing order of 3 sizes
    assert (trend["n_rho_positive"], trend["sign_test_p"], trend["page_L"]) == (3, pytest.approx(0.25), 42)


def test_missing_runs_are_listed_not_dropped_silently(full_study):
    tables, outputs = full_study
    missing = Path(outputs["missing"]).read_text().splitlines()
    assert len(missing) == 1 + len(SKIPPED)
    assert any(",causalmixft,B,1,256," in line for line in missing)
    summary = Path(outputs["summary"]).read_text()
    assert "34 of 36 expected runs are present; missing: 2 (causalmixft: 1, zeroshot: 1)" in summary
    assert "2 expected files are missing." in summary
    assert "| run | causalmixft | B | 1 | 256 | 256 |" in summary  # kind, method, dataset, fold, budget, size
    # Without its zero-shot reference, fold 0 of A drops out of A's improvements: one fold left.
    per_dataset = tables["improvement_per_dataset"].query("dataset == 'A' and method == 'finetune'")
    assert set(per_dataset["n_folds"]) == {1}
    scaling = tables["scaling_per_dataset"].query("method == 'causalmixft' and dataset == 'B' and size == 256")
    assert set(scaling["n_folds"]) == {1}


def test_one_dataset_does_not_crash_and_says_why_tests_do_not_apply(one_dataset):
    tables, outputs = one_dataset
    summary = Path(outputs["summary"]).read_text()
    assert set(tables["rank_tests"]["note"]) == {"too few datasets (1 with every competitor; at least 5 needed)"}
    # Page's L cannot run on one dataset; the sign test could (p = 1) but is below the study's minimum
    assert set(tables["trend"]["note"]) == {
        "needs at least 2 complete datasets and 3 sizes, got 1 and 3; sign test: too few datasets"}
    assert tables["trend"]["sign_test_p"].isna().all() and tables["improvement"]["ci_low"].isna().all()
    # the answer's rows with one dataset: a mean, no interval, no test
    assert "| 256 | causalmixft | 64 | 0.31 | roc_auc | 1 | +0.0125 |  |  |  | too few datasets |" in summary


def test_below_the_studys_minimum_a_group_gets_counts_but_no_interval_or_test(full_study):
    # The group "pair" has two datasets, the full study's minimum is 3: no Friedman, Page or sign test,
    # no bootstrap interval, no band around its fitted curve; group "all" (3 datasets) gets them all.
    tables, outputs = full_study
    tests = tables["rank_tests"].query("group == 'pair'")
    assert len(tests) == 4 and tests["note"].str.startswith("too few datasets").all()
    trend = tables["trend"].query("group == 'pair'")
    assert trend[["page_L", "page_p", "page_p_holm", "sign_test_p", "sign_test_p_holm"]].isna().all().all()
    assert (trend["page_n_datasets"] == 2).all() and trend["note"].str.startswith("too few datasets (2 complete)").all()
    assert (trend["n_rho_positive"] + trend["n_rho_negative"] <= 2).all()  # the counts stay
    improvement = tables["improvement"].query("n_datasets == 2")
    assert len(improvement) and improvement[["ci_low", "ci_high", "abs_ci_low", "abs_ci_high"]].isna().all().all()
    assert improvement["mean"].notna().all()
    assert tables["improvement"].query("group == 'all' and n_datasets == 3")["ci_low"].notna().any()
    fit = tables["scaling_fit"]
    assert fit.query("group == 'pair'")["band_low"].isna().all()
    assert fit.query("group == 'all' and n_datasets == 3")["band_low"].notna().any()


def test_a_study_without_any_run_still_reports(tmp_path):
    grid = study_grid(["A", "B"])
    outputs = default_outputs(tmp_path / "results")
    tables = aggregate_results(
        expected=with_budget(grid),
        metrics_files=grid_files(tmp_path / "none", grid),
        methods_with_real=["finetune", "causalmixft"],
        size_dependent=["causalmixft", "scm_only"],
        outputs=outputs,
    )
    assert len(tables["missing"]) == len(grid)
    assert "0 of 24 expected runs are present" in Path(outputs["summary"]).read_text()


def test_reruns_write_identical_bytes(one_dataset, tmp_path):
    _, first = one_dataset
    _, second = run_stage(tmp_path, ["A"])
    for name in NAMES:
        assert Path(first[name]).read_bytes() == Path(second[name]).read_bytes(), name


def test_outputs_must_name_every_file(tmp_path):
    outputs = default_outputs(tmp_path)
    del outputs["plot_val_vs_test"]
    with pytest.raises(ValueError, match="plot_val_vs_test"):
        aggregate_results(
            expected=with_budget(study_grid(["A"])), metrics_files=[], methods_with_real=[], size_dependent=[], outputs=outputs
        )


def test_docs_state_the_definitions_as_implemented():
    assert METRIC_DEFINITIONS in (REPO / "docs" / "metrics.md").read_text()


def test_improvement_curves_start_at_their_anchor(full_study):
    """The improvement plot's lines: real+synthetic methods start at finetune's n=0 improvement,
    purely synthetic ones at 0 (the reference itself); later points are the method's own rows."""
    from causalmixft.analysis.plots import improvement_curves
    from causalmixft.analysis.study import Study

    tables, _ = full_study
    improvement = tables["improvement"]
    study = Study.from_params(study_grid(["A", "B", "C"]), methods_with_real=["finetune", "causalmixft"],
                              size_dependent=["causalmixft", "scm_only"])
    lines = improvement_curves(improvement, study, "all", "test", "roc_auc")
    assert list(lines) == ["causalmixft", "scm_only"]

    def cell(method, size):
        row = improvement[(improvement["group"] == "all") & (improvement["split"] == "test")
                          & (improvement["metric"] == "roc_auc") & (improvement["method"] == method)
                          & (improvement["size"] == size)]
        return row["median"].item()

    causal = lines["causalmixft"]
    assert causal["size"].tolist() == [0, *SIZES]
    assert causal["median"].tolist() == pytest.approx([cell("finetune", 0), *(cell("causalmixft", s) for s in SIZES)])
    synthetic = lines["scm_only"]
    assert synthetic.iloc[0][["median", "q25", "q75"]].tolist() == [0.0, 0.0, 0.0]
    assert synthetic["median"].iloc[1:].tolist() == pytest.approx([cell("scm_only", s) for s in SIZES])


def test_improvement_plot_with_many_methods_draws_iqr_bars(tmp_path):
    """Beyond MAX_BANDS methods the IQR is drawn as dodged bars instead of bands."""
    from causalmixft.analysis import plots
    from causalmixft.analysis.study import Study

    generators = [f"gen{i}" for i in range(plots.MAX_BANDS + 1)]
    grid = [(m, "A", 0, 0) for m in ("zeroshot", "finetune")] + [(g, "A", 0, s) for g in generators for s in SIZES]
    study = Study.from_params(grid, methods_with_real=["finetune", *generators], size_dependent=generators)
    rows = [{"group": "all", "split": split, "metric": metric, "method": method, "size": size, "n_datasets": 1,
             "median": 0.1 * size / 64, "q25": 0.0, "q75": 0.2 * size / 64}
            for split, metric in plots.SCALING_PANELS for method, _, _, size in grid if method != "zeroshot"]
    path = tmp_path / "scaling_improvement.png"
    figure = plots.plot_scaling_improvement(pd.DataFrame(rows), study, path)
    assert figure.get_suptitle().endswith("bars: IQR")  # what the bars show: test_aggregate_plots.py
    lines = plots.improvement_curves(pd.DataFrame(rows), study, "all", "test", "roc_auc")
    assert [len(line) for line in lines.values()] == [3] * len(generators)


def test_the_fit_panels_name_one_dataset_count_when_every_method_has_it():
    # One line per method only where the counts differ: a long one-line label left the panel and
    # the constrained layout squeezed every axis of the study's 6-method plot to make room for it.
    from causalmixft.analysis.plots import _dataset_counts

    assert _dataset_counts({"causalmixft": 22, "scm_only": 22}) == "datasets: 22 per method"
    assert _dataset_counts({"causalmixft": 22, "scm_only": 21}) == "datasets:\ncausalmixft 22\nscm_only 21"


def test_two_real_budgets_are_aggregated_apart_and_the_effects_pair_them(tmp_path):
    """Hand-made metric files at budgets 32 and 128: causalmixft gains 0.01 x (dataset index + 1) over
    finetune at 32 and nothing at 128, on 5 datasets, 1 fold."""
    runs = tmp_path / "runs" / "tfm-small"
    datasets = [f"d{i}" for i in range(5)]
    expected = []
    for budget, gain in ((32, 0.01), (128, 0.0)):
        for i, dataset in enumerate(datasets):
            base = 0.70 + 0.01 * i
            for method, size, score in (("zeroshot", 0, base - 0.02), ("finetune", 0, base),
                                        ("causalmixft", budget, base + gain * (i + 1))):
                write_point(runs, method, dataset, 0, size, budget=budget, roc_auc=score, accuracy=score - 0.1)
                expected.append((method, dataset, 0, budget, size))
    metrics = [runs / m / d / f"fold{f}" / f"real{b}" / f"n{n}" / "metrics.json" for m, d, f, b, n in expected]
    outputs = default_outputs(tmp_path / "results")
    tables = aggregate_results(
        expected=expected, metrics_files=metrics, methods_with_real=["finetune", "causalmixft"],
        size_dependent=["causalmixft"], outputs=outputs,
        config={"analysis": {"equivalence_margin": 0.005, "min_datasets": 5}},
    )
    assert sorted(tables["runs_long"]["real_budget"].unique()) == [32, 128]
    assert set(tables["scaling"]["real_budget"]) == {32, 128}  # every v2 table per budget
    effects = pd.read_csv(outputs["effects"])
    test_auc = effects[(effects["split"] == "test") & (effects["metric"] == "roc_auc")]
    zeroshot = test_auc[test_auc["method"] == "zeroshot"]
    assert zeroshot["mean_diff"].tolist() == pytest.approx([-0.02, -0.02])  # zeroshot - finetune, both budgets
    test_auc = test_auc[test_auc["method"] == "causalmixft"].set_index("real_budget")
    # budget 32: gains 0.01..0.05, mean 0.03, sd 0.0158114 -> t = 4.2426 on 4 df, p = 0.013236. The family
    # (test ROC-AUC) has 4 cells: zeroshot at 32 and 128 (every difference -0.02, no spread: p = 0),
    # causalmixft at 128 (p = 1) and this one; Holm: sorted p 0, 0, 0.013236, 1 -> 0.013236 x 2 = 0.026472
    assert test_auc.loc[32, "mean_diff"] == pytest.approx(0.03) and test_auc.loc[32, "size"] == 32
    assert test_auc.loc[32, "size_ratio"] == pytest.approx(32 / 204)  # the fixtures' 204 real train rows
    assert test_auc.loc[32, "p_holm"] == pytest.approx(0.026472, rel=1e-3) and test_auc.loc[32, "verdict"] == "better"
    # budget 128: every difference 0 -> no spread, equivalent within the margin of 0.005
    assert test_auc.loc[128, "mean_diff"] == pytest.approx(0.0)
    assert test_auc.loc[128, "verdict"] == "equivalent within +-0.005"
    summary = outputs["summary"].read_text()
    assert summary.startswith("# Answer: paired gains over plain fine-tuning")
    assert "real budgets: 32, 128 rows" in summary and summary.count("# Appendix") == 1
    assert "expected runs over 5 datasets (d0, d1, d2, d3, d4)" in summary


def test_the_summary_counts_the_datasets_of_every_budget_not_only_the_largest(tmp_path):
    # d2 is too small for budget 128 (as the study's TabMWP probes are for 512): the grid still has 3 datasets
    runs = tmp_path / "runs" / "tfm-small"
    expected = [(method, dataset, 0, budget, size)
                for budget in (32, 128) for dataset in ("d0", "d1", "d2") if (budget, dataset) != (128, "d2")
                for method, size in (("zeroshot", 0), ("finetune", 0), ("causalmixft", budget))]
    for method, dataset, fold, budget, size in expected:
        write_point(runs, method, dataset, fold, size, budget=budget, roc_auc=0.7, accuracy=0.6)
    metrics = [runs / m / d / f"fold{f}" / f"real{b}" / f"n{n}" / "metrics.json" for m, d, f, b, n in expected]
    outputs = default_outputs(tmp_path / "results")
    aggregate_results(expected=expected, metrics_files=metrics, methods_with_real=["finetune", "causalmixft"],
                      size_dependent=["causalmixft"], outputs=outputs)
    summary = outputs["summary"].read_text()
    assert "from 15 expected runs over 3 datasets (d0, d1, d2)" in summary
    assert "the figures below show the largest, 2 of the datasets;" in summary


def test_a_run_that_chose_on_scm_rows_is_compared_on_the_real_validation_rows(tmp_path):
    # causalmixft_synthval scores 0.81 on the real validation rows and 0.60 on its selection set (real +
    # SCM rows, what chose its step); finetune 0.80 and zeroshot 0.70 on the real rows, test 0.75 for all.
    from causalmixft.io import read_json, write_json

    runs = tmp_path / "runs" / "tfm-small"
    expected = []
    for i in range(5):
        dataset = f"d{i}"
        for method, size, val in (("zeroshot", 0, 0.70), ("finetune", 0, 0.80), ("causalmixft_synthval", 128, 0.81)):
            path = write_run(runs, method, dataset, 0, size, [{"roc_auc": val, "accuracy": val}],
                             [{"roc_auc": 0.75, "accuracy": 0.75}], budget=256)
            expected.append((method, dataset, 0, 256, size))
            if method == "causalmixft_synthval":  # what runs.py writes for a run that selects on SCM rows
                record = read_json(path)
                for replicate in record["replicates"]:
                    for point in [*replicate["curve"], replicate["selected"]]:
                        point["select"] = {**point["val"], "roc_auc": 0.60, "accuracy": 0.60}
                write_json(path, record)
    outputs = default_outputs(tmp_path / "results")
    tables = aggregate_results(
        expected=expected, outputs=outputs,
        metrics_files=[runs / m / d / f"fold{f}" / f"real{b}" / f"n{n}" / "metrics.json" for m, d, f, b, n in expected],
        methods_with_real=["finetune", "causalmixft_synthval"], size_dependent=["causalmixft_synthval"],
    )
    long = tables["runs_long"]  # as published: val is the chooser, val_real the real rows
    synthval = long[(long["method"] == "causalmixft_synthval") & (long["metric"] == "roc_auc")]
    assert synthval.groupby("split")["value"].mean().to_dict() == pytest.approx(
        {"val": 0.60, "val_real": 0.81, "test": 0.75})
    effects = tables["effects"].set_index(["method", "split", "metric"])
    assert effects.loc[("causalmixft_synthval", "val", "roc_auc"), "mean_diff"] == pytest.approx(0.01)  # 0.81 - 0.80
    improvement = tables["improvement_per_dataset"]
    val = improvement[(improvement["method"] == "causalmixft_synthval") & (improvement["split"] == "val")
                      & (improvement["metric"] == "roc_auc")]
    assert val["improvement"].tolist() == [pytest.approx(100 * (0.81 / 0.70 - 1))] * 5  # not 0.60 / 0.70
    choices = tables["size_choices"]
    chosen = choices[(choices["method"] == "causalmixft_synthval") & (choices["metric"] == "roc_auc")]
    assert set(chosen["chosen_size"]) == {0}  # 0.80 (finetune, real rows) over 0.60 (the selection set)
