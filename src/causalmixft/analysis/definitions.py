"""Metric definitions as implemented, printed in report/summary.md and kept verbatim in docs/metrics.md."""

METRIC_DEFINITIONS = """\
- **Scores per run**: ROC-AUC (binary; one-vs-rest macro over the classes present for multiclass),
  accuracy, balanced accuracy and log-loss on validation and test, read at the validation-selected
  (early-stopped) step of each fine-tuning replicate (`replicates[r].selected` of the run's
  `metrics.json`). A run holds `protocol.seeds` replicates; replicate r's seed derives from
  (dataset, fold, r, protocol.seed) only, so every method and size of a fold shares its seeds.
- **Averaging: replicates -> folds -> datasets**: every per-replicate quantity is first averaged over
  the replicates of a run, then over the folds of a dataset (means over finite values); medians,
  quartiles, means with intervals, tests and ranks are then taken across datasets, so every dataset
  weighs the same. Quartiles use linear interpolation; IQR = q75 - q25.
- **The answer (`effects.csv`)**, per real budget x group x method x synthetic size x split x metric
  (group `all`: every dataset, the answer; with mixed sources also each source, e.g. `tabarena` and
  `tabmwp`, tested in families of its own, `vs finetune: <split> <metric> (<group>)`): per
  (dataset, fold, replicate) the difference method - `finetune` (the same seed and test rows),
  averaged replicates -> folds -> datasets; across datasets the mean, a t interval (1 - alpha), a
  two-sided one-sample t test with Holm once per family (`vs finetune: <split> <metric>`: every
  budget, method and size), the minimum detectable effect (t_{1-alpha/2} + t_{power}) x SD / sqrt(n)
  from the observed SD of the dataset differences (`mde`, per test; `mde_holm` at alpha / m, the
  level of Holm's first step over the family's m tested cells), and, for the metric the margin was
  fixed for (ROC-AUC: the margin's schema says so), two one-sided tests (TOST) against the
  equivalence margin fixed in the config (`analysis.equivalence_margin`), Holm-corrected over the
  same family (`tost_p_holm`). Verdict: better / worse (Holm p < alpha), equivalent (TOST Holm p <
  alpha), else inconclusive; with fewer than
  `analysis.min_datasets` datasets only the mean and counts ("too few datasets"). `size_ratio` is the
  synthetic size over the run's real train rows. For `causalmixft_synthval`, `runs_long.csv`'s `val`
  is the selection set it chose on (real validation plus SCM rows) and `val_real` its real validation
  rows; a table that compares methods (effects, improvement, ranks, paired tests, scaling, trend) reads
  its real validation rows as its `val`, the rows every method is scored on, and the size choice reads
  the selection set (the `n = 0` candidate, `finetune`, has none: it is scored on the real rows).
- **Size choice against chance (`size_selection_chance.csv`)**: per unit (method, dataset, fold,
  replicate, metric) over the candidate sizes (n = 0 from `finetune`): agreement (validation's choice
  is a test-best size) and regret (best test - test at the choice), beside a size drawn uniformly
  from the candidates (agreement = share of test-best candidates, regret = mean regret) and always
  n = 0; units -> folds -> datasets, t intervals with enough datasets, cut to the values' range
  (agreement in [0, 1], regret >= 0).
- **Improvement** over the reference (`zeroshot`), per (dataset, fold): normalized,
  100 x (s / s_ref - 1) for higher-is-better metrics and 100 x (1 - s / s_ref) for losses (log-loss),
  in % of the reference score; and absolute, s - s_ref (s_ref - s for losses), in the metric's own
  units (e.g. ROC-AUC points). Positive always means better than the reference. Undefined when the
  reference run is missing (the normalized one also when s_ref = 0). Mean over folds per dataset;
  across datasets per (method, size): median, quartiles, min, max, the number of datasets, and the
  mean with a 95 % percentile-bootstrap interval (4,000 resamples of the datasets, seed 0; none
  over fewer than `analysis.min_datasets` datasets).
- **Validation-chosen size** (one definition for every table and plot): for a size-dependent method
  the candidates are n = 0 (its anchor, see Scaling curve) and every synthetic size it ran at. Per
  (dataset, fold, replicate) the candidate with the best validation score of that fold's own
  validation rows is chosen (ties: the smallest size; candidates need a finite validation score, a
  NaN test score never removes one) and that fold's test score at it is reported; then replicates
  -> folds -> datasets. Never chosen from scores averaged over folds: fold j's validation rows are
  other folds' test rows.
- **Average rank**: per dataset, competitors are ranked by fold-mean test score (1 = best, ties share
  their mean rank); ranks are averaged across datasets. Two selections: `per_size`, where every
  (method, size) of the grid is a competitor, and `val_chosen`, where each size-dependent method
  competes at its validation-chosen size. Ranks need complete blocks: competitors without any score
  in the group are dropped first, then datasets lacking any remaining competitor; both are listed in
  `rank_tests.csv`.
- **Friedman test**: `scipy.stats.friedmanchisquare` (tie-corrected chi-square) when there are at
  least 3 competitors and at least 5 complete datasets; below 5 datasets it is not run and the
  report says "too few datasets" (the chi-square approximation does not hold there).
- **Nemenyi critical difference**: CD = q_alpha sqrt(k (k + 1) / (6 N)) for k competitors and N
  datasets, q_alpha = studentized range quantile (1 - alpha, k, infinite df) / sqrt(2), alpha = 0.05;
  computed only when the Friedman test applies. In the diagram a bar joins competitors whose
  average ranks differ by less than CD (not significantly different).
- **Paired tests** (`paired_tests.csv`): each competitor against plain fine-tuning (`finetune`) on
  fold-mean test scores, exact two-sided Wilcoxon signed-rank test over datasets (zero differences
  dropped), Holm-corrected within each group x metric x selection. Not run, with the words "too few
  datasets", when even the most extreme outcome could not reach alpha (fewer than 6 non-zero
  differences at alpha = 0.05).
- **Seed spread** (`replicate_spread.csv`): per (method, size), the standard deviation (ddof 1) of
  the selected scores across the replicates of one fold, mean over folds, then median and quartiles
  across datasets.
- **Validation-test correlation gap** per fine-tuning replicate: 1 - Spearman correlation between
  the validation and the test scores over its evaluation steps (steps where both are finite).
  Undefined for fewer than 3 such steps or a constant curve (e.g. zero-shot runs, which have one
  step); undefined curves are counted, not dropped silently. Summarised per method, pooled over
  sizes (`size = all`) and per size: mean over replicates, folds (and sizes) per dataset, then median
  and quartiles across datasets.
- **Early-stopping regret** per fine-tuning replicate: best test score on the curve - test score at
  the validation-selected step (for log-loss: test at the selected step - lowest test on the curve);
  0 when validation picked the test-best step. Summarised like the gap (dataset first), with the
  largest dataset value and the number of positive curves.
- **Scaling curve**: for each size-dependent method, fold-mean scores at every synthetic size n > 0;
  the n = 0 point is plain fine-tuning (`finetune`) for methods that train on real plus synthetic
  rows, and the reference (`zeroshot`) for purely synthetic methods (no real and no synthetic rows
  leave the pre-trained model). Aggregated as median and quartiles across datasets per size.
- **Trend tests** per curve: per dataset, Spearman correlation between size (n = 0 included) and
  fold-mean score (at least 3 sizes, non-constant); a two-sided sign test (binomial, p = 1/2) on the
  signs of these correlations across datasets (zero or undefined correlations excluded); Page's L
  test (`scipy.stats.page_trend_test`) on the datasets with a score at every size, when there are at
  least 3 sizes; neither test over fewer than `analysis.min_datasets` datasets ("too few datasets";
  the counts stay), one-sided for an increasing and for a decreasing order, two-sided
  p = twice the smaller one (L is reported for the increasing order). Every trend p-value of one
  report (Page's and the sign tests', all groups, metrics and splits) forms one Holm family; a trend
  is called significant when its Holm-adjusted two-sided Page p is below alpha.
- **Best size** per size-dependent method and dataset: the validation-chosen sizes (how often each
  size won over the (fold, replicate) units) next to the sizes test would have chosen the same way;
  regret = test score at the test-best size - test score at the validation-chosen size (flipped for
  losses) per unit, then replicates -> folds; `agree_share` = share of units where both sizes agree.
- **Fitted curve** (`scaling_fit.csv`, figure `scaling_fit.png`, `causalmixft.analysis.fitted`):
  gains over plain fine-tuning (`finetune`) per (dataset, fold), s - s_ft (flipped for losses) and
  100 x (s / s_ft - 1), then fold means, for every size-dependent method at every n > 0; a
  least-squares polynomial in log2 n through every (dataset, size) point, degree 2 (1 with two
  sizes, 0 with one), evaluated on 33 log2-spaced sizes plus the measured ones; the band is the 95 %
  percentile range of 4,000 refits on datasets resampled with replacement (seed 0; no band over
  fewer than `analysis.min_datasets` datasets). Both for `all`
  datasets and for `above_chance` (without the near-chance ones).
- **Chance** (`chance.csv`): per dataset and method (size-dependent methods at their
  validation-chosen size), the fold-mean test ROC-AUC with a 95 % t interval over folds (mean
  +- t(0.975, k - 1) x SD / sqrt(k) for k folds; descriptive), and a one-sided test of "above 0.5"
  that holds with one fold: when the scores are independent of the labels, a fold's test ROC-AUC
  has mean 0.5 and SD sqrt((n1 + n0 + 1) / (12 n1 n0)) (the Mann-Whitney null; n1, n0 the test
  rows of one class and of the rest; for the multi-class one-vs-rest mean, the mean of the classes'
  SDs, an upper bound), whatever the training draw; the folds' test rows are disjoint, so
  z = (fold mean - 0.5) / (sqrt(sum of the folds' null variances) / k), p = P(Z > z), Holm-corrected
  over the dataset's methods (`null_se`, `z`, `p`, `p_holm`; class counts from the split stage's
  meta.json). A dataset is `above chance` when any method's corrected p is below 0.05, `near chance`
  when none is (`undetermined` only where no test class counts were read and fewer than 2 folds ran;
  then the t interval decides). The multi-class bound is loose when some classes have a few test rows
  (each such class's SD is large), so a many-class table can stay `near chance` at a clearly higher
  mean (the conservative side: it is never called above chance by mistake). Near-chance datasets
  stay in every table; the fitted curve is repeated without them.
- **Fidelity**: every numeric value of a generator's fidelity reports, nested values as dotted keys
  (e.g. `two_sample_auc`, where 0.5 means indistinguishable from real rows;
  `tstr.train_on_synthetic_auc` and `tstr.train_on_real_auc`; `marginal_distance.mean`;
  `correlation_distance.mean_abs_diff`), except row counts and per-feature or per-class detail;
  mean over folds per dataset, then median and quartiles across datasets per generator and size.
  Keys a report lacks and null values are absent from its cells (see `n_datasets`).
- **Cost** per Snakemake rule, from its benchmark files: jobs (one per file; `repeat()` rows
  averaged), median and total wall seconds (`s`), total and median CPU seconds (`cpu_time`) and the
  largest `max_rss` (MiB, as Snakemake reports it), over every real budget of the grid. The aggregate
  rule's own benchmark is not included: it is written after the rule finishes.
- **Where early stopping ended**: per method and size, the share of fine-tuning replicates whose
  validation-selected step is 0 (the starting weights kept, so fine-tuning changed nothing), averaged
  replicates -> folds (-> sizes) -> datasets; its chance reference is the same average of 1 / the
  curve's evaluation points (a step drawn at random among them). With few validation rows, ties at the
  first point keep step 0 (the first best point wins).
- **Missing runs**: every expected (method, dataset, fold, size) whose `metrics.json` is absent is
  listed in `missing.csv` and in this report. It contributes no value to any table; the
  `n_datasets` and `n_folds` columns show how many values each cell rests on.
"""
