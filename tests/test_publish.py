"""The published README: its sentences and table come from the effect tables (hand-made here, with
the numbers the text must carry worked out by hand); publishing never overwrites a report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalmixft.analysis.collect import MISSING_COLUMNS, NOT_RUN
from causalmixft.analysis.effects import EFFECT_COLUMNS, SELECTION_COLUMNS, TOO_FEW, Analysis
from causalmixft.analysis.outputs import OUTPUTS
from causalmixft.analysis.publish import (ANSWER_END, ANSWER_START, answer_block, answer_in, answer_sentences,
                                         answer_table, by_source_sentence, publish, readme_of, render_readme)

ANALYSIS = Analysis(equivalence_margin=0.01)


def cell(method, budget, size, ratio, metric, mean, low, high, mde, verdict, n=20, split="test", group="all"):
    # mde_holm: the MDE at Holm's first level, here 1.5 x the per-test MDE
    return dict(real_budget=budget, group=group, method=method, size=size, size_ratio=ratio, split=split, metric=metric,
                n_datasets=n, mean_diff=mean, ci_low=low, ci_high=high, mde=mde, mde_holm=1.5 * mde, verdict=verdict)


def effects_table() -> pd.DataFrame:
    rows = [
        # causalmixft: two cells per metric; one AUC cell better, one equivalent (accuracy has no margin)
        cell("causalmixft", 32, 26, 1.0, "roc_auc", 0.0120, 0.0040, 0.0200, 0.0060, "better"),
        cell("causalmixft", 128, 102, 1.0, "roc_auc", -0.0010, -0.0050, 0.0030, 0.0035, "equivalent within +-0.01"),
        cell("causalmixft", 32, 26, 1.0, "accuracy", 0.0050, -0.0070, 0.0170, 0.0090, "inconclusive"),
        cell("causalmixft", 128, 102, 1.0, "accuracy", -0.0020, -0.0080, 0.0040, 0.0050, "inconclusive"),
        # a cell with too few datasets counts nowhere in the sentences
        cell("causalmixft", 512, 410, 1.0, "roc_auc", 0.5, np.nan, np.nan, np.nan, TOO_FEW, n=3),
        # validation rows and size 0 are not the headline
        cell("causalmixft", 32, 26, 1.0, "roc_auc", 0.9, 0.8, 1.0, 0.01, "better", split="val"),
        cell("zeroshot", 32, 0, 0.0, "roc_auc", -0.02, -0.03, -0.01, 0.01, "worse"),
        cell("causalmixft_synthval", 32, 26, 1.0, "roc_auc", 0.0030, -0.0010, 0.0070, 0.0050, "inconclusive"),
        cell("causalmixft_synthval", 128, 102, 1.0, "roc_auc", -0.0080, -0.0120, -0.0040, 0.0040, "worse"),
    ]
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def selection_table() -> pd.DataFrame:
    rows = [
        dict(real_budget=32, method="causalmixft", metric="roc_auc", n_datasets=20, regret=0.0040, regret_random=0.0090,
             regret_zero=0.0060, note=""),
        dict(real_budget=128, method="causalmixft", metric="roc_auc", n_datasets=20, regret=0.0020, regret_random=0.0050,
             regret_zero=0.0030, note=""),
        dict(real_budget=512, method="causalmixft", metric="roc_auc", n_datasets=3, regret=0.9, regret_random=0.9,
             regret_zero=0.9, note=TOO_FEW),
    ]
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def test_the_three_sentences_carry_the_ranges_counts_and_bounds_of_the_tested_cells():
    first, second, third = answer_sentences(effects_table(), selection_table(), ANALYSIS)
    # AUC gains -0.0010 and +0.0120, accuracy -0.0020 and +0.0050; 1 of 4 tests better, none worse
    assert "test ROC-AUC by -0.0010 to +0.0120 and test accuracy by -0.0020 to +0.0050" in first
    # zeroshot - finetune = -0.02 at budget 32: plain fine-tuning itself gained +0.0200 over zero-shot
    assert first.startswith("Against plain fine-tuning on the same real rows (which itself changed test ROC-AUC by "
                            "+0.0200 from the zero-shot backbone across the real budgets), CausalMixFT changed")
    (with_steps, *_) = answer_sentences(effects_table(), selection_table(), ANALYSIS, early_stopping_table())
    assert with_steps.startswith(
        "Against plain fine-tuning on the same real rows (which itself changed test ROC-AUC by +0.0200 from the "
        "zero-shot backbone across the real budgets, its validation rows keeping the zero-shot weights (step 0) "
        "in 80% and 25% of its replicates at 32 and 128 real rows, where a step drawn at random would be step 0 "
        "in 10%), CausalMixFT changed")
    # curves of another length at 32 rows: a chance reference per budget
    other = early_stopping_table()
    other.loc[other["real_budget"] == 32, "step0_chance"] = 0.2
    (per_budget, *_) = answer_sentences(effects_table(), selection_table(), ANALYSIS, other)
    assert "would be step 0 in 20% and 10%)" in per_budget
    assert "over 20 datasets in each of 2 real-budget x synthetic-size cells" in first
    assert "of the 4 tests 1 better and 0 worse after Holm correction" in first
    # bounds: the lowest interval end and the highest, per metric; 1 of the 2 AUC cells equivalent (the
    # margin is in ROC-AUC); MDE 0.0035-0.0060 per test, 1.5 x that at Holm's first level
    assert "beyond -0.0050 to +0.0200 ROC-AUC or -0.0080 to +0.0170 accuracy" in second
    assert "1 of the 2 ROC-AUC cells are equivalent to no effect within +-0.01 ROC-AUC" in second
    assert ("minimum detectable effect at 80% power is 0.0035 to 0.0060 ROC-AUC per comparison "
            "(0.0053 to 0.0090 at the level of Holm's first step in the family)") in second
    assert "by -0.0080 to +0.0030 (0 better, 1 worse of 2)" in third
    assert "lost 0.0020 to 0.0040 test ROC-AUC" in third and "0.0050 to 0.0090 for a size drawn at random" in third
    assert "0.0030 to 0.0060 for always n = 0" in third and "0.9" not in third


def test_with_too_few_datasets_everywhere_the_answer_says_so_and_gives_no_interval():
    few = effects_table().assign(verdict=TOO_FEW)
    (only,) = answer_sentences(few, selection_table(), ANALYSIS)
    assert TOO_FEW in only and "interval" in only and "[" not in only


def test_the_table_puts_both_metrics_of_a_cell_side_by_side():
    lines = answer_table(effects_table()).splitlines()
    row = next(line for line in lines if line.startswith("| causalmixft | 32 |"))
    assert row == ("| causalmixft | 32 | 1x | +0.0120 [+0.0040, +0.0200] | better | +0.0050 [-0.0070, +0.0170] | "
                   "inconclusive | 0.0060 / 0.0090 | 20 |")
    assert not any(line.startswith("| zeroshot") for line in lines)  # size 0 has no synthetic rows


def runs_long_table() -> pd.DataFrame:
    """4 runs (2 methods x 2 datasets), 2 replicates each, 2 rows (metrics) per replicate."""
    rows = [dict(method=m, dataset=d, fold=0, real_budget=32, size=s, replicate=r, split="test", metric=k, value=0.5)
            for m, s in (("finetune", 0), ("causalmixft", 26)) for d in ("a", "b") for r in (0, 1)
            for k in ("roc_auc", "accuracy")]
    return pd.DataFrame(rows)


def early_stopping_table() -> pd.DataFrame:
    """Plain fine-tuning kept step 0 in 80 % of replicates at 32 rows and 25 % at 128 (other rows: not read)."""
    rows = [dict(real_budget=b, group=g, method=m, size=z, n_datasets=20, n_replicates=60, step0_share=share,
                 step0_chance=0.1, selected_step_median=0, evaluations_median=10)
            for b, g, m, z, share in ((128, "all", "finetune", "all", 0.25), (32, "all", "finetune", "all", 0.8),
                                      (32, "openml", "finetune", "all", 0.5), (32, "all", "causalmixft", "all", 0.7),
                                      (32, "all", "causalmixft", "26", 0.6))]
    return pd.DataFrame(rows)


def missing_table(not_run: int = 0, generator_failed: int = 0) -> pd.DataFrame:
    rows = ([("run", "causalmixft", "c", 0, 32, 26, "", NOT_RUN)] * not_run
            + [("run", "causalmixft", "d", 0, 32, 26, "", "generator causalmixft failed (x): one class")] * generator_failed)
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)


def fake_results(root, missing: pd.DataFrame | None = None):
    for output in OUTPUTS:
        path = root / output.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    effects_table().to_csv(root / "tables" / "effects.csv", index=False)
    selection_table().to_csv(root / "tables" / "size_selection_chance.csv", index=False)
    runs_long_table().to_csv(root / "tables" / "runs_long.csv", index=False)
    early_stopping_table().to_csv(root / "tables" / "early_stopping.csv", index=False)
    (missing_table() if missing is None else missing).to_csv(root / "tables" / "missing.csv", index=False)


def test_publish_copies_the_outputs_writes_the_readme_and_never_overwrites(tmp_path):
    results, dest = tmp_path / "results", tmp_path / "docs" / "study"
    fake_results(results)
    readme = publish(results, dest, "Study", ANALYSIS)
    text = readme.read_text()
    assert text.startswith("# Study\n\n**Question.**") and "](plots/effect_heatmap.png)" in text
    tables = {"effects": effects_table(), "size_selection_chance": selection_table(), "runs_long": runs_long_table(),
              "missing": missing_table(), "early_stopping": early_stopping_table()}
    assert text == render_readme("Study", tables, ANALYSIS, {o.name: o.path for o in OUTPUTS})
    assert "Runs: 4 of the grid's 4 fine-tuning runs" in text and "2 paired replicates each); none missing." in text
    assert all((dest / o.path).is_file() for o in OUTPUTS)
    assert readme_of(dest) == text  # what the golden test rebuilds from the published tables
    with pytest.raises(FileExistsError, match="already holds a report"):
        publish(results, dest, "Study again", ANALYSIS)
    assert readme.read_text() == text
    publish(results, dest, "Study again", ANALYSIS, replace=True)
    assert readme.read_text().startswith("# Study again")
    assert [p.name for p in dest.parent.iterdir()] == ["study"]  # no staging folder left


def test_publish_without_the_answer_tables_fails_and_writes_nothing(tmp_path):
    results, dest = tmp_path / "results", tmp_path / "docs" / "study"
    fake_results(results)
    (results / "tables" / "effects.csv").unlink()
    with pytest.raises(FileNotFoundError, match="tables/effects.csv"):
        publish(results, dest, "Study", ANALYSIS)
    assert not dest.exists()


def test_run_notes_are_published_beside_the_readme_and_linked_from_it(tmp_path):
    results, dest, notes = tmp_path / "results", tmp_path / "docs" / "study", tmp_path / "how.md"
    fake_results(results)
    notes.write_text("# How it ran\nparts 1-5\n")
    text = publish(results, dest, "Study", ANALYSIS, run_notes=notes).read_text()
    assert (dest / "RUN.md").read_text() == "# How it ran\nparts 1-5\n"
    assert text.endswith("How the run was made (code commits, command, parts, machine): [RUN.md](RUN.md).\n")
    assert readme_of(dest) == text
    without = publish(results, tmp_path / "other", "Study", ANALYSIS).read_text()
    assert "RUN.md" not in without and not (tmp_path / "other" / "RUN.md").exists()


def test_missing_run_notes_fail_before_anything_is_written(tmp_path):
    results, dest = tmp_path / "results", tmp_path / "docs" / "study"
    fake_results(results)
    with pytest.raises(FileNotFoundError, match="run notes .*absent.md"):
        publish(results, dest, "Study", ANALYSIS, run_notes=tmp_path / "absent.md")
    assert not dest.parent.exists()  # checked before the staging folder is made


def test_runs_ruled_out_by_a_generator_failure_are_counted_and_published(tmp_path):
    results, dest = tmp_path / "results", tmp_path / "docs" / "study"
    fake_results(results, missing_table(generator_failed=1))
    text = publish(results, dest, "Study", ANALYSIS).read_text()
    assert "Runs: 4 of the grid's 5 fine-tuning runs" in text
    assert "missing: 1 ruled out by a generator failure ([missing.csv](tables/missing.csv))." in text
    assert "Incomplete" not in text


def test_a_run_with_runs_not_run_is_refused_unless_published_as_incomplete(tmp_path):
    results, dest = tmp_path / "results", tmp_path / "docs" / "study"
    fake_results(results, missing_table(not_run=2, generator_failed=1))
    with pytest.raises(ValueError, match="2 runs of the grid were not run .*--incomplete"):
        publish(results, dest, "Study", ANALYSIS)
    assert not dest.exists()
    text = publish(results, dest, "Partial", ANALYSIS, incomplete=True).read_text()
    assert text.startswith("# Partial\n\n**Incomplete.** 2 runs of the grid were not run")
    assert "Runs: 4 of the grid's 7 fine-tuning runs" in text and "missing: 2 not run, 1 ruled out" in text
    assert readme_of(dest) == text


def test_the_sources_are_summed_up_apart_and_never_enter_the_answer():
    groups = pd.DataFrame([
        cell("causalmixft", 32, 26, 1.0, "roc_auc", 0.0300, 0.0100, 0.0500, 0.0200, "better", n=15, group="tabarena"),
        cell("causalmixft", 128, 102, 1.0, "roc_auc", -0.0040, -0.0090, 0.0010, 0.0070, "equivalent within +-0.01",
             n=15, group="tabarena"),
        cell("causalmixft", 32, 26, 1.0, "roc_auc", 0.2, np.nan, np.nan, np.nan, TOO_FEW, n=4, group="tabmwp"),
        cell("causalmixft", 32, 26, 1.0, "accuracy", 0.9, 0.8, 1.0, 0.01, "better", n=15, group="tabarena"),
    ], columns=EFFECT_COLUMNS)
    table = pd.concat([effects_table(), groups], ignore_index=True)
    assert by_source_sentence(table) == (
        "By source, CausalMixFT's test ROC-AUC gain over plain fine-tuning (Holm within each source): tabarena (15 "
        "datasets): -0.0040 to +0.0300 (1 better, 0 worse, 1 equivalent of 2 cells; MDE 0.0070 to 0.0200); tabmwp "
        "(at most 4 datasets): too few datasets.")
    assert answer_sentences(table, selection_table(), ANALYSIS) == answer_sentences(effects_table(), selection_table(),
                                                                                    ANALYSIS)
    assert answer_table(table) == answer_table(effects_table())
    assert by_source_sentence(effects_table()) == ""  # one source: nothing to break down


REPO_README = f"""# Project

intro

{ANSWER_START}
The study is running.
{ANSWER_END}

## Rest
"""


def test_publishing_writes_the_short_answer_into_the_repository_readme_and_nothing_else(tmp_path):
    results, dest, readme = tmp_path / "results", tmp_path / "docs" / "results" / "study", tmp_path / "README.md"
    fake_results(results)
    readme.write_text(REPO_README)
    publish(results, dest, "Study v3", ANALYSIS, readme=readme)
    text = readme.read_text()
    sentences = " ".join(answer_sentences(effects_table(), selection_table(), ANALYSIS, early_stopping_table()))
    block = f"**Answer (Study v3; [the report](docs/results/study/README.md)).** {sentences}"
    assert text == REPO_README.replace("The study is running.", block)
    assert answer_in(text) == block == answer_block(dest, "docs/results/study/README.md")
    # a second publication (--replace) rewrites the block, not the rest
    publish(results, dest, "Study v3b", ANALYSIS, replace=True, readme=readme)
    assert readme.read_text().count(ANSWER_START) == 1 and "**Answer (Study v3b;" in readme.read_text()
    assert readme.read_text().endswith("\n\n## Rest\n")


def test_an_incomplete_run_says_so_in_the_short_answer_too(tmp_path):
    results, dest, readme = tmp_path / "results", tmp_path / "study", tmp_path / "README.md"
    fake_results(results, missing_table(not_run=2))
    readme.write_text(REPO_README)
    publish(results, dest, "Partial", ANALYSIS, incomplete=True, readme=readme)
    assert answer_in(readme.read_text()).startswith("**Incomplete: 2 runs of the grid were not run.** **Answer (Partial;")


def test_a_readme_without_an_answer_block_fails_before_anything_is_written(tmp_path):
    results, dest, readme = tmp_path / "results", tmp_path / "docs" / "study", tmp_path / "README.md"
    fake_results(results)
    readme.write_text("# Project\n")
    with pytest.raises(ValueError, match="README.md: no answer block"):
        publish(results, dest, "Study", ANALYSIS, readme=readme)
    assert not dest.exists() and readme.read_text() == "# Project\n"
    assert answer_in("# Project\n") == ""
