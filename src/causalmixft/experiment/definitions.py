"""Metric definitions as implemented, printed in report/summary.md and kept verbatim in docs/metrics.md."""

METRIC_DEFINITIONS = """\
- **Scores per run**: ROC-AUC (binary; one-vs-rest macro over the classes present for multiclass),
  accuracy, balanced accuracy and log-loss on validation and test, read at the validation-selected
  (early-stopped) step recorded in `selected` of the run's `metrics.json`.
- **Folds, then datasets**: every per-run quantity is first averaged over the folds of a dataset
  (mean over the folds with a finite value); medians, quartiles and ranks are then taken across
  datasets, so every dataset weighs the same. Quartiles use linear interpolation; IQR = q75 - q25.
- **Normalized improvement** over the reference (`zeroshot`), per (dataset, fold):
  100 x (s / s_ref - 1) for higher-is-better metrics and 100 x (1 - s / s_ref) for losses
  (log-loss), so a positive value always means better than the reference. Undefined when the
  reference run is missing or s_ref = 0. Mean over folds per dataset; median, quartiles, min, max
  and the number of datasets across datasets, per (method, size).
- **Average rank**: per dataset, competitors are ranked by fold-mean test score (1 = best, ties share
  their mean rank); ranks are averaged across datasets. Two selections: `per_size`, where every
  (method, size) of the grid is a competitor, and `val_chosen`, where each method competes at the
  size with the best fold-mean validation score of the same metric among its own runs (ties: the
  smallest size). Ranks need complete blocks: competitors without any score in the group are
  dropped first, then datasets lacking any remaining competitor; both are listed in `rank_tests.csv`.
- **Friedman test**: `scipy.stats.friedmanchisquare` (tie-corrected chi-square) when there are at
  least 3 competitors and at least 2 complete datasets; otherwise reported as not applicable with
  the reason.
- **Nemenyi critical difference**: CD = q_alpha sqrt(k (k + 1) / (6 N)) for k competitors and N
  datasets, q_alpha = studentized range quantile (1 - alpha, k, infinite df) / sqrt(2), alpha = 0.05;
  computed only when the Friedman test applies. In the diagram a bar joins competitors whose
  average ranks differ by less than CD (not significantly different).
- **Validation-test correlation gap** per run: 1 - Spearman correlation between the validation and
  the test scores over the run's evaluation steps (steps where both are finite). Undefined for fewer
  than 3 such steps or a constant curve (e.g. zero-shot runs, which have one step); undefined runs
  are counted, not dropped silently. Summarised as median and quartiles over runs per method,
  pooled over sizes (`size = all`) and per size.
- **Early-stopping regret** per run: best test score on the curve - test score at the
  validation-selected step (for log-loss: test at the selected step - lowest test on the curve);
  0 when validation picked the test-best step. Summarised as median, mean and max over runs.
- **Scaling curve**: for each size-dependent method, fold-mean scores at every synthetic size n > 0;
  the n = 0 point is plain fine-tuning (`finetune`) for methods that train on real plus synthetic
  rows, and the reference (`zeroshot`) for purely synthetic methods (no real and no synthetic rows
  leave the pre-trained model). Aggregated as median and quartiles across datasets per size.
- **Trend tests** per curve: per dataset, Spearman correlation between size (n = 0 included) and
  fold-mean score (at least 3 sizes, non-constant); a two-sided sign test (binomial, p = 1/2) on the
  signs of these correlations across datasets (zero or undefined correlations excluded); Page's L
  test (`scipy.stats.page_trend_test`) on the datasets with a score at every size, when there are at
  least 2 such datasets and 3 sizes, one-sided for an increasing order and separately for a
  decreasing order (L is reported for the increasing order). A trend is called significant when
  either one-sided p is below alpha / 2, which keeps the two-sided error rate at alpha.
- **Best size** per size-dependent method and dataset: the size (n = 0 included) with the best
  fold-mean validation score next to the size with the best fold-mean test score (ties: the smallest
  size); regret = test score at the test-best size - test score at the validation-chosen size
  (flipped for losses).
- **Fidelity**: every numeric value of a generator's fidelity reports, nested values as dotted keys
  (e.g. `two_sample_auc`, where 0.5 means indistinguishable from real rows;
  `tstr.train_on_synthetic_auc` and `tstr.train_on_real_auc`; `marginal_distance.mean`;
  `correlation_distance.mean_abs_diff`), except row counts and per-feature or per-class detail;
  mean over folds per dataset, then median and quartiles across datasets per generator and size.
  Keys a report lacks and null values are absent from its cells (see `n_datasets`).
- **Cost** per Snakemake rule, from its benchmark files: jobs (one per file; `repeat()` rows
  averaged), median and total wall seconds (`s`), total CPU seconds (`cpu_time`) and the largest
  `max_rss` (MiB, as Snakemake reports it). The aggregate rule's own benchmark is not included: it is
  written after the rule finishes.
- **Cost growth** (`cost_scaling.csv`) per rule and variant (a run's backbone/method, a sample's
  generator): the median job and a least-squares fit of log wall seconds on log `n_features` (from the
  prepared dataset's meta) and log synthetic size, each where the jobs span at least two values.
- **Cost projection** (`cost_projection.csv`) to a target grid (`config/tabarena.yaml`): its jobs per
  rule and variant times the median measured job, scaled by (n_features / their geometric mean over
  the measured jobs)^b and likewise for size, negative exponents taken as 0; fine-tuning also by the
  target's steps over the measured config's. CPU hours = wall hours x the median CPU/wall share. GPU
  hours only for GPU rules whose runs recorded a CUDA device in `metrics.json`; fine-tuning measured
  on a CPU gives CPU hours only. Variants without a measured job are listed and not counted, except
  a fine-tuning method, which takes the measured fine-tuning methods' jobs.
- **Missing runs**: every expected (method, dataset, fold, size) whose `metrics.json` is absent is
  listed in `missing.csv` and in this report. It contributes no value to any table; the
  `n_datasets` and `n_folds` columns show how many values each cell rests on.
"""
