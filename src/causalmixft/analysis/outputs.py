"""Every output of the aggregate stage, named once: its file, its place in the HTML report, its caption.

The rule's ``output:`` (workflow/rules/aggregate.smk, with a ``report()`` for each output that has a
subcategory), ``report.aggregate_results`` (which writes every table and figure by name) and the
report's captions (``write_captions``) all read ``OUTPUTS``: a new table is one ``Output`` here plus
the code that computes it. Definitions of the numbers: docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from causalmixft.io import atomic_path

CATEGORY = "Results"  # the HTML report's category of every output; the subcategory is per output


@dataclass(frozen=True)
class Output:
    """One file of the stage: ``path`` under the results folder; ``subcategory`` ("Answer", "Plots",
    "Tables", "Summary") and ``caption`` (reStructuredText) for the HTML report, empty for a file
    kept out of it (per-run and per-dataset detail: too large to show)."""

    name: str
    path: str
    subcategory: str = ""
    caption: str = ""

    @property
    def kind(self) -> str:
        """``table`` (a CSV file), ``plot`` (a PNG file) or ``summary`` (report/summary.md)."""
        return {".csv": "table", ".png": "plot"}.get(Path(self.path).suffix, "summary")


SUMMARY = (
    "Generated summary of the study: first the answer (the paired gains over plain fine-tuning with intervals, MDE, "
    "TOST and verdicts, and the validation-chosen size against chance), then an appendix with the figures, the "
    "fidelity of the synthetic rows, the measured cost per rule, the missing runs, links to every table, the metric "
    "definitions as implemented and the configuration that produced the results."
)
PER_DATASET = (
    "Per-dataset scaling curves: the fold-mean score at each synthetic size n, one panel per dataset and one line "
    "per size-dependent method; the dashed line is the zero-shot score of that dataset."
)

OUTPUTS: tuple[Output, ...] = (
    Output("summary", "report/summary.md", "Summary", SUMMARY),
    Output("effects", "tables/effects.csv", "Answer",
        "The answer's table: per real budget x group (all datasets; with mixed sources each source too) x method x "
        "synthetic size x split x metric, the paired difference to "
        "plain fine-tuning averaged replicates -> folds -> datasets (units: score points, 0.01 = one AUC point), "
        "its t interval over datasets, the two-sided paired t test with Holm over the named family (split x "
        "metric, per group), the minimum detectable effect at the configured power from the observed SD, and two one-sided "
        "tests against the equivalence margin fixed in the config (analysis.equivalence_margin). Fewer than "
        "analysis.min_datasets datasets: \"too few datasets\", no interval and no test."),
    Output("size_selection_chance", "tables/size_selection_chance.csv", "Answer",
        "The validation-chosen synthetic size beside its chance references: agreement (the chosen size is a test-"
        "best one) and regret (best test score minus test score at the chosen size), against a size drawn uniformly "
        "from the same candidates and against always n = 0 (plain fine-tuning). Units are averaged replicates -> "
        "folds -> datasets; intervals over datasets only with enough datasets."),
    Output("plot_effect_heatmap", "plots/effect_heatmap.png", "Answer",
        "Paired test ROC-AUC gain of each method over plain fine-tuning, per real budget (rows) and synthetic size "
        "as a multiple of the real train rows (columns): the mean over datasets of the per-dataset difference "
        "(replicates -> folds -> datasets). A star marks a cell whose Holm-adjusted paired t test (family: test "
        "ROC-AUC, every budget, method and size) rejects 0 at 0.05; grey text marks a cell with fewer than 5 "
        "datasets, where no test is made. Intervals, MDE and TOST are in effects.csv."),
    Output("plot_scaling_fit", "plots/scaling_fit.png", "Answer",
        "Improvement over plain fine-tuning (score minus the fine-tuned score, in the metric's units) against the "
        "synthetic size n on a log2 axis, one row per dataset group: a least-squares polynomial (quadratic in log2 "
        "n, linear with two sizes) through every dataset's fold-mean improvements, and its 95 % percentile-"
        "bootstrap band from refitting on resampled datasets. Dots mark the measured sizes; the dashed line is "
        "plain fine-tuning."),
    Output("scaling_fit", "tables/scaling_fit.csv", "Answer",
        "The fitted improvement over plain fine-tuning on a grid of log2-spaced synthetic sizes (``measured``: a "
        "size of the grid), absolute (score units) and normalized (% of the fine-tuned score), with its 95 % "
        "bootstrap band over datasets (none over fewer than analysis.min_datasets), per dataset group, subset "
        "(``all`` datasets or ``above_chance``), method, split and metric."),
    Output("chance", "tables/chance.csv", "Answer",
        "Per dataset and method (size-dependent methods at their validation-chosen size): fold-mean test ROC-AUC "
        "with a 95 % t interval over folds and whether it lies above 0.5. A dataset is near chance when no method's "
        "interval does; the fitted curves are repeated without such datasets."),
    Output("plot_scaling", "plots/scaling.png", "Plots",
        "Scores versus the number of synthetic rows n added to the fine-tuning pool: median across datasets (line) "
        "and interquartile range (band; vertical bars when more than four methods share a panel) of the fold-mean "
        "validation accuracy, test accuracy and test ROC-AUC, one line per size-dependent method. The n=0 point is "
        "plain fine-tuning for methods that train on real plus synthetic rows and the zero-shot model for purely "
        "synthetic methods; the dashed line is the zero-shot median."),
    Output("plot_scaling_improvement", "plots/scaling_improvement.png", "Plots",
        "Normalized improvement over the zero-shot model (%, DESIGN.md) versus the number of synthetic rows n: "
        "median across datasets with the interquartile range (a band with up to four methods, vertical bars with "
        "the methods set side by side beyond that), panels validation accuracy, test accuracy and test ROC-AUC. "
        "Unlike the raw scores of the scaling plot, each dataset is measured against its own zero-shot score, so "
        "the spread shows how methods differ rather than how datasets do. The n=0 point is plain fine-tuning for "
        "methods that train on real plus synthetic rows and 0 (the zero-shot model) for purely synthetic methods."),
    Output("plot_scaling_per_dataset_val_accuracy", "plots/scaling_per_dataset_val_accuracy.png", "Plots", PER_DATASET),
    Output("plot_scaling_per_dataset_test_accuracy", "plots/scaling_per_dataset_test_accuracy.png", "Plots", PER_DATASET),
    Output("plot_scaling_per_dataset_test_roc_auc", "plots/scaling_per_dataset_test_roc_auc.png", "Plots", PER_DATASET),
    Output("plot_critical_difference", "plots/critical_difference.png", "Plots",
        "Critical-difference diagrams of the average test rank across datasets (1 = best), for every (method, size) "
        "configuration and for each method at its validation-chosen size. A thick bar joins competitors whose "
        "average ranks differ by less than the Nemenyi critical difference; the Friedman test result, or why it "
        "does not apply, is printed below each diagram."),
    Output("plot_val_vs_test", "plots/val_vs_test.png", "Plots",
        "Normalized improvement over the zero-shot model on validation (x) and on test (y), one point per "
        "(configuration, dataset). Points on the dotted diagonal improve equally on both splits; points below it "
        "improve less on test than validation suggests."),
    Output("improvement", "tables/improvement.csv", "Tables",
        "Normalized improvement over the zero-shot model, 100 x (score / zero-shot score - 1) (sign flipped for "
        "losses), per (dataset, fold), averaged over folds per dataset, then median, quartiles, IQR, min and max "
        "across datasets for every (method, size), on validation and on test."),
    Output("ranks", "tables/ranks.csv", "Tables",
        "Average test rank across datasets (1 = best) of every (method, size) configuration (selection "
        "``per_size``) and of each method at its validation-chosen size (selection ``val_chosen``, with the sizes "
        "validation chose). Only datasets with a score for every competitor are ranked."),
    Output("rank_tests", "tables/rank_tests.csv", "Tables",
        "Friedman test and Nemenyi critical difference for each ranking, with the competitors and datasets dropped "
        "to obtain complete blocks. With fewer than 5 datasets the tests are not run (\"too few datasets\")."),
    Output("paired_tests", "tables/paired_tests.csv", "Tables",
        "Each competitor against plain fine-tuning on fold-mean test scores: exact Wilcoxon signed-rank test over "
        "datasets, Holm-corrected within each group, metric and selection. With too few datasets for the exact test "
        "to reach alpha the table says so instead of giving a p-value."),
    Output("replicate_spread", "tables/replicate_spread.csv", "Tables",
        "Seed spread: the standard deviation of the validation-selected scores across fine-tuning replicates of one "
        "fold (same data, different seeds), averaged over folds, then median and quartiles across datasets, per "
        "method and size."),
    Output("scaling", "tables/scaling.csv", "Tables",
        "Median, quartiles, min and max across datasets of the fold-mean score at each synthetic size for every "
        "size-dependent method (``source`` names the method whose runs give the point: the n=0 point comes from "
        "plain fine-tuning or, for purely synthetic methods, from the zero-shot model)."),
    Output("trend", "tables/trend.csv", "Tables",
        "Trend of each scaling curve: per-dataset Spearman correlation between size and score with a sign test "
        "across datasets, and Page's L test for an increasing and for a decreasing order of the sizes; neither over "
        "fewer than analysis.min_datasets datasets (\"too few datasets\")."),
    Output("best_size", "tables/best_size.csv", "Tables",
        "Per size-dependent method and dataset, the synthetic size validation picks (n = 0, the method's anchor, "
        "included) chosen per fold and fine-tuning replicate on that fold's own validation rows, next to the size "
        "test would have picked, and the test score lost by trusting validation (regret), averaged over replicates, "
        "then folds."),
    Output("gap_regret", "tables/gap_regret.csv", "Tables",
        "Validation-test correlation gap (1 - Spearman correlation of a run's validation and test curves) and "
        "early-stopping regret (best test score on the curve - test score at the validation-selected step), medians "
        "over runs per method, pooled over sizes (size ``all``) and per size."),
    Output("early_stopping", "tables/early_stopping.csv", "Tables",
        "Where early stopping ended: per method (pooled over sizes, size ``all``, and per size) the share of "
        "fine-tuning replicates whose validation-selected step is 0, i.e. that kept the starting weights, averaged "
        "replicates -> folds -> datasets, beside its chance reference (a step drawn at random among the curve's "
        "evaluation points), with the median selected step and the median number of evaluation points."),
    Output("fidelity", "tables/fidelity.csv", "Tables",
        "Fidelity of the synthetic rows per generator and size: median across datasets of the fold-mean value of "
        "every key of the fidelity reports (e.g. two-sample ROC-AUC, 0.5 = indistinguishable)."),
    Output("cost", "tables/cost.csv", "Tables",
        "Cost per Snakemake rule from its benchmark files: jobs, median and total wall-clock seconds, total CPU "
        "seconds and peak resident memory (MiB)."),
    Output("missing", "tables/missing.csv", "Tables",
        "Expected runs (and fidelity reports) whose files are absent: they contribute no value to any table."),
    Output("runs_long", "tables/runs_long.csv"),
    Output("improvement_per_dataset", "tables/improvement_per_dataset.csv"),
    Output("gap_regret_runs", "tables/gap_regret_runs.csv"),
    Output("size_choices", "tables/size_choices.csv"),
    Output("scaling_per_dataset", "tables/scaling_per_dataset.csv"),
)
BY_NAME = {output.name: output for output in OUTPUTS}
TABLES = tuple(output.name for output in OUTPUTS if output.kind == "table")
PLOTS = tuple(output.name for output in OUTPUTS if output.kind == "plot")


def paths(results_dir: str | Path = "results") -> dict[str, Path]:
    """Every output's file under ``results_dir``, by name."""
    return {output.name: Path(results_dir) / output.path for output in OUTPUTS}


def write_captions(folder: str | Path) -> dict[str, Path]:
    """Each reported output's caption as ``folder/{name}.rst`` (Snakemake's ``report()`` reads a
    caption from a file); a file already holding the text is left alone. Returns {name: file}."""
    files = {}
    for output in OUTPUTS:
        if not output.subcategory:
            continue
        files[output.name] = path = Path(folder) / f"{output.name}.rst"
        text = output.caption + "\n"
        if not path.is_file() or path.read_text() != text:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
    return files
