"""A finished study's report under docs/results/: the aggregate's tables, figures and summary, and a
README a researcher reads in one minute (the question, the answer in three sentences with its
bounds, one table, the heat map), every number read from the tables, none typed by hand.

    python -m causalmixft.analysis.publish results docs/results/study-v3 --title "Study v3" \
        --config config.yaml config/study.yaml [--run-notes how-it-ran.md]

refuses a destination that already holds files (a published report is never overwritten;
``--replace`` says it should be). ``tests/test_published_reports.py`` rebuilds every README from
its committed tables, so an edited number fails there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
from dataclasses import asdict
import tempfile
from pathlib import Path
from typing import Mapping

import pandas as pd

from causalmixft.analysis.collect import NOT_RUN
from causalmixft.analysis.effects import TOO_FEW, Analysis, overall
from causalmixft.analysis.outputs import OUTPUTS
from causalmixft.analysis.study import ALL
from causalmixft.io import atomic_path, write_json
from causalmixft.config_checks import merged_config

QUESTION = (
    "How does the amount of CausalMixFT synthetic data (rows drawn from a structural causal model fitted "
    "on the target table's real training rows) change fine-tuning of a tabular foundation model, on "
    "validation and on test rows, and does that depend on how scarce the real rows are?"
)
ANSWER_METHOD, SELECTION_METHOD = "causalmixft", "causalmixft_synthval"
PATHS = {output.name: output.path for output in OUTPUTS}  # an output's path in results/ and in a report
PUBLISHED = "publish.json"  # beside README.md: its title, the analysis settings, whether RUN.md is there
RUN_NOTES = "RUN.md"  # how the run was made (commits, command, parts, machine), written by whoever ran it
# The repository README's short answer lies between these lines; publishing writes it (answer_block).
ANSWER_START, ANSWER_END = "<!-- study answer: written by make publish-study -->", "<!-- end of study answer -->"


def _signed(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):+.4f}"


def _span(values: pd.Series, spec: str = "+.4f") -> str:
    low, high = float(values.min()), float(values.max())
    return format(low, spec) if low == high else f"{format(low, spec)} to {format(high, spec)}"


def tested_cells(effects: pd.DataFrame, method: str, metric: str, synthetic: bool = True) -> pd.DataFrame:
    """The test-split cells of ``method`` that carry a test (enough datasets): those with synthetic rows,
    or (``synthetic=False``) those of a method without them (size 0)."""
    effects = overall(effects)
    rows = effects[(effects["method"] == method) & (effects["split"] == "test") & (effects["metric"] == metric)
                   & ((effects["size"] > 0) == synthetic)]
    return rows[rows["verdict"].astype(str) != TOO_FEW]


def by_source_sentence(effects: pd.DataFrame) -> str:
    """CausalMixFT's test ROC-AUC gains per source group of effects.csv (TabArena tables, TabMWP tasks),
    each group's cells tested in Holm families of their own; "" with a single source."""
    parts = []
    for name in sorted(set(effects["group"]) - {ALL}):
        rows = effects[(effects["group"] == name) & (effects["method"] == ANSWER_METHOD) & (effects["split"] == "test")
                       & (effects["metric"] == "roc_auc") & (effects["size"] > 0)]
        if rows.empty:
            continue
        tested = rows[rows["verdict"].astype(str) != TOO_FEW]
        if tested.empty:
            parts.append(f"{name} (at most {int(rows['n_datasets'].max())} datasets): {TOO_FEW}")
            continue
        better, worse, equivalent = _counts(tested)
        parts.append(f"{name} ({_span(tested['n_datasets'], '.0f')} datasets): {_span(tested['mean_diff'])} "
                     f"({better} better, {worse} worse, {equivalent} equivalent of {len(tested)} cells; MDE "
                     f"{_span(tested['mde'], '.4f')})")
    if not parts:
        return ""
    return ("By source, CausalMixFT's test ROC-AUC gain over plain fine-tuning (Holm within each source): "
            + "; ".join(parts) + ".")


def _step0_shares(early_stopping: pd.DataFrame | None) -> tuple[str, str, str] | None:
    """("83%, 27% and 30%", "32, 128 and 512", "9%"): plain fine-tuning's share of replicates whose
    validation-selected step is 0, per real budget (all datasets, all sizes), and its chance reference
    (a step drawn at random among the curve's evaluations; one figure where the budgets share it)."""
    if early_stopping is None:
        return None
    rows = early_stopping[(early_stopping["method"] == "finetune") & (early_stopping["group"] == "all")
                          & (early_stopping["size"].astype(str) == "all")].sort_values("real_budget")
    if rows.empty:
        return None
    chances = list(dict.fromkeys(f"{chance:.0%}" for chance in rows["step0_chance"]))
    return (_listed([f"{share:.0%}" for share in rows["step0_share"]]), _listed([str(b) for b in rows["real_budget"]]),
            _listed(chances))


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _counts(cells: pd.DataFrame) -> tuple[int, int, int]:
    verdicts = cells["verdict"].astype(str)
    return int((verdicts == "better").sum()), int((verdicts == "worse").sum()), int(verdicts.str.startswith("equivalent").sum())


def answer_sentences(effects: pd.DataFrame, selection: pd.DataFrame, analysis: Analysis,
                     early_stopping: pd.DataFrame | None = None) -> list[str]:
    """At most three sentences: the gains of ``causalmixft`` (both metrics) against plain fine-tuning
    (and what that itself did: its gain over zero-shot and, from ``early_stopping``, how often its
    validation rows kept the zero-shot weights), their bounds, and what selecting on SCM rows and
    choosing the size on validation rows did."""
    auc, acc = (tested_cells(effects, ANSWER_METHOD, metric) for metric in ("roc_auc", "accuracy"))
    if auc.empty or acc.empty:
        return [f"{ANSWER_METHOD} against plain fine-tuning: {TOO_FEW} in every cell, so no interval or test is given."]
    both = pd.concat([auc, acc])
    better, worse, _ = _counts(both)
    equivalent = _counts(auc)[2]  # the margin is in ROC-AUC: accuracy has no equivalence test
    datasets = _span(auc["n_datasets"], ".0f")
    # What plain fine-tuning itself moved: a null against a recipe that leaves the backbone where it was
    # says less than one against a recipe that moved it (effects' zeroshot rows are zeroshot - finetune).
    zeroshot = tested_cells(effects, "zeroshot", "roc_auc", synthetic=False)
    context = [] if zeroshot.empty else [f"which itself changed test ROC-AUC by {_span(-zeroshot['mean_diff'])} from "
                                         f"the zero-shot backbone across the real budgets"]
    kept = _step0_shares(early_stopping)
    if kept:
        shares, budgets, chance = kept
        context.append(f"its validation rows keeping the zero-shot weights (step 0) in {shares} of its replicates "
                       f"at {budgets} real rows, where a step drawn at random would be step 0 in {chance}")
    context = f" ({', '.join(context)})" if context else ""
    sentences = [
        f"Against plain fine-tuning on the same real rows{context}, CausalMixFT changed test ROC-AUC by "
        f"{_span(auc['mean_diff'])} and test accuracy by {_span(acc['mean_diff'])} (mean paired differences over "
        f"{datasets} datasets in each of {len(auc)} real-budget x synthetic-size cells; of the {len(both)} tests "
        f"{better} better and {worse} worse after Holm correction).",
        f"No {1 - analysis.alpha:.0%} interval reaches beyond {_signed(auc['ci_low'].min())} to "
        f"{_signed(auc['ci_high'].max())} ROC-AUC or {_signed(acc['ci_low'].min())} to "
        f"{_signed(acc['ci_high'].max())} accuracy, {equivalent} of the {len(auc)} ROC-AUC cells are equivalent to "
        f"no effect within {analysis.margin_text()} (two one-sided tests, Holm over the family), and the minimum "
        f"detectable effect at {analysis.power:.0%} power is {_span(auc['mde'], '.4f')} ROC-AUC per comparison "
        f"({_span(auc['mde_holm'], '.4f')} at the level of Holm's first step in the family).",
    ]
    synthval = tested_cells(effects, SELECTION_METHOD, "roc_auc")
    chosen = selection[(selection["method"] == ANSWER_METHOD) & (selection["metric"] == "roc_auc")
                       & (selection["note"].fillna("").astype(str) != TOO_FEW)]
    parts = []
    if not synthval.empty:
        s_better, s_worse, _ = _counts(synthval)
        parts.append(f"choosing the step on real plus unseen SCM validation rows ({SELECTION_METHOD}) changed test "
                     f"ROC-AUC by {_span(synthval['mean_diff'])} ({s_better} better, {s_worse} worse of "
                     f"{len(synthval)})")
    if not chosen.empty:
        parts.append(f"choosing the synthetic size on validation rows lost {_span(chosen['regret'], '.4f')} test "
                     f"ROC-AUC to the test-best size, against {_span(chosen['regret_random'], '.4f')} for a size "
                     f"drawn at random and {_span(chosen['regret_zero'], '.4f')} for always n = 0")
    if parts:
        text = "; ".join(parts)
        sentences.append(text[0].upper() + text[1:] + ".")
    return sentences


def answer_table(effects: pd.DataFrame, methods: tuple[str, ...] = (ANSWER_METHOD, SELECTION_METHOD)) -> str:
    """Markdown: per method x real budget x synthetic size, test ROC-AUC and accuracy gains side by side."""
    effects = overall(effects)
    test = effects[(effects["split"] == "test") & (effects["size"] > 0) & effects["method"].isin(methods)]
    lines = [
        "| method | real rows | synthetic / real train | test ROC-AUC gain [95 % CI] | verdict | "
        "test accuracy gain [95 % CI] | verdict | MDE (ROC-AUC) per test / Holm | datasets |",
        "|---|---:|---:|---|---|---|---|---:|---:|",
    ]
    for (method, budget, ratio), cell in test.groupby(["method", "real_budget", "size_ratio"], sort=True):
        by_metric = {row.metric: row for row in cell.itertuples()}
        auc, acc = by_metric.get("roc_auc"), by_metric.get("accuracy")
        mde = "" if auc is None or pd.isna(auc.mde) else f"{auc.mde:.4f} / {auc.mde_holm:.4f}"
        lines.append(f"| {method} | {budget} | {ratio:.3g}x | {_gain(auc)} | {_verdict(auc)} | {_gain(acc)} | "
                     f"{_verdict(acc)} | {mde} | {'' if auc is None else auc.n_datasets} |")
    return "\n".join(lines)


def _gain(row) -> str:
    if row is None:
        return "n/a"
    if pd.isna(row.ci_low):
        return _signed(row.mean_diff)
    return f"{_signed(row.mean_diff)} [{_signed(row.ci_low)}, {_signed(row.ci_high)}]"


def _verdict(row) -> str:
    return "" if row is None else str(row.verdict)


RUN_KEY = ["method", "dataset", "fold", "real_budget", "size"]


def not_run(missing: pd.DataFrame) -> pd.DataFrame:
    """The rows of missing.csv for runs that were never run (or failed), not ruled out by a recorded
    generator failure: a report with any is not the study its config describes."""
    return missing[(missing["kind"] == "run") & (missing["reason"] == NOT_RUN)]


def runs_sentence(runs_long: pd.DataFrame, missing: pd.DataFrame, link: str) -> str:
    """How many of the grid's fine-tuning runs the numbers come from, and what is missing and why."""
    done = runs_long.groupby(RUN_KEY).ngroups
    absent = missing[missing["kind"] == "run"]
    unrun = len(not_run(missing))
    replicates = runs_long["replicate"].nunique()
    sentence = (f"Runs: {done:,} of the grid's {done + len(absent):,} fine-tuning runs (method x dataset x fold x "
                f"real budget x synthetic size; {replicates} paired replicates each)")
    if absent.empty:
        return sentence + "; none missing."
    failed = len(absent) - unrun
    reasons = [f"{unrun:,} not run" if unrun else "", f"{failed:,} ruled out by a generator failure" if failed else ""]
    return sentence + f"; missing: {', '.join(r for r in reasons if r)} ([missing.csv]({link}))."


README_TABLES = ("effects", "size_selection_chance", "runs_long", "missing", "early_stopping")  # what it is written from


def render_readme(title: str, tables: Mapping[str, pd.DataFrame], analysis: Analysis, links: Mapping[str, str],
                  run_notes: str | None = None) -> str:
    """The README from the aggregate's ``tables`` (by output name: ``README_TABLES``; ``effects`` and
    ``size_selection_chance`` needed, the others used where given: how complete the run is, how often
    plain fine-tuning kept the zero-shot weights); ``links``: output name (analysis.outputs) -> path
    relative to the README; ``run_notes``: the notes on how the run was made, linked at the end."""
    effects, runs_long, missing = tables["effects"], tables.get("runs_long"), tables.get("missing")
    budgets = ", ".join(str(b) for b in sorted(effects["real_budget"].unique()))
    counted = runs_long is not None and missing is not None
    unrun = len(not_run(missing)) if counted else 0
    sentences = answer_sentences(effects, tables["size_selection_chance"], analysis, tables.get("early_stopping"))
    by_source = by_source_sentence(effects)
    return "\n".join([
        f"# {title}",
        "",
        *([f"**Incomplete.** {unrun:,} runs of the grid were not run: every number below comes from part of the "
           f"study and is not its answer.", ""] if unrun else []),
        f"**Question.** {QUESTION}",
        "",
        f"**Answer.** {' '.join(sentences)}",
        "",
        f"Real budgets: {budgets} rows (train + validation, nested; every budget of a fold shares its test rows). "
        f"Differences are paired (same test rows, same fine-tuning seeds), averaged replicates -> folds -> datasets; "
        f"units are score points (0.01 = one ROC-AUC point). Holm families: one per split x metric (and source "
        f"group). The equivalence margin {analysis.margin_text()} is the config's `analysis.equivalence_margin`, fixed "
        f"before the run; \"equivalent\" means both one-sided tests reject after Holm over the family (a TOST at "
        f"level alpha is the {1 - 2 * analysis.alpha:.0%} interval inside the margin, so a "
        f"{1 - analysis.alpha:.0%} interval may cross it). The MDE is the smallest true gain a test detects with "
        f"{analysis.power:.0%} power from the observed spread, per test and at alpha / m (m: the family's cells)."
        + (f" {runs_sentence(runs_long, missing, links['missing'])}" if counted else ""),
        "",
        *([by_source, ""] if by_source else []),
        answer_table(effects),
        "",
        f"![Paired test ROC-AUC gain over plain fine-tuning, real budget x synthetic size]({links['plot_effect_heatmap']})",
        "",
        f"Appendix: [the full summary]({links['summary']}) (every cell on validation and test, the size choice "
        f"against chance, figures, fidelity, measured cost, missing runs, definitions, the configuration); "
        f"machine-readable: [effects.csv]({links['effects']}), "
        f"[size_selection_chance.csv]({links['size_selection_chance']}), [runs_long.csv]({links['runs_long']}).",
        "",
        *([f"How the run was made (code commits, command, parts, machine): [{run_notes}]({run_notes}).", ""]
          if run_notes else []),
    ])


def publish(results: Path, dest: Path, title: str, analysis: Analysis, replace: bool = False,
            run_notes: Path | None = None, incomplete: bool = False, readme: Path | None = None) -> Path:
    """Copy every aggregate output present under ``results`` to ``dest`` and write ``dest/README.md``;
    ``run_notes`` (a Markdown file on how the run was made) becomes ``dest/RUN.md``, linked from it.
    A run with runs of its grid not run is refused unless ``incomplete`` (its README then says so first).
    ``readme`` (the repository's README) gets the short answer between its ``ANSWER_START`` and
    ``ANSWER_END`` lines (:func:`answer_block`).

    The report is assembled in a temporary folder beside ``dest`` and moved into place whole, so a
    failure leaves no partial report."""
    results, dest = Path(results), Path(dest)
    if run_notes is not None and not Path(run_notes).is_file():
        raise FileNotFoundError(f"[publish] the run notes {run_notes} are not a file")
    if readme is not None:
        with_answer(Path(readme).read_text(), "", readme)  # no answer block to write into: fail before writing
    needed = (*README_TABLES, "summary", "plot_effect_heatmap")
    missing = [o.path for o in OUTPUTS if o.name in needed and not (results / o.path).is_file()]
    if missing:
        raise FileNotFoundError(f"[publish] {results}: the aggregate's outputs are missing: {', '.join(missing)}")
    unrun = not_run(pd.read_csv(results / PATHS["missing"]))
    if len(unrun) and not incomplete:
        raise ValueError(f"[publish] {results}: {len(unrun):,} runs of the grid were not run ({PATHS['missing']}): "
                         "finish the run, or pass --incomplete to publish it marked as incomplete")
    if dest.exists() and any(dest.iterdir()) and not replace:
        raise FileExistsError(f"[publish] {dest} already holds a report; pass --replace to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        for output in OUTPUTS:
            if (results / output.path).is_file():
                (stage / output.path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(results / output.path, stage / output.path)
        if run_notes is not None:
            shutil.copyfile(run_notes, stage / RUN_NOTES)
        # what the README is written from besides the tables: the golden test rewrites it from these
        write_json(stage / PUBLISHED, {"title": title, "analysis": asdict(analysis),
                                       "run_notes": RUN_NOTES if run_notes is not None else None})
        (stage / "README.md").write_text(readme_of(stage))
        if dest.exists():
            shutil.rmtree(dest)
        stage.rename(dest)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    if readme is not None:
        readme = Path(readme)
        text = with_answer(readme.read_text(), answer_block(dest, os.path.relpath(dest / "README.md", readme.parent)),
                           readme)
        with atomic_path(readme) as tmp:
            tmp.write_text(text)
    return dest / "README.md"


def answer_block(report: Path, link: str) -> str:
    """The repository README's short answer: a published report's answer sentences (what its README
    opens with, read from its tables), with a link to it; ``link`` is the report's README as the
    repository README reaches it. ``tests/test_published_reports.py`` checks the README against it."""
    settings, tables = _published(report)
    unrun = len(not_run(tables["missing"]))
    sentences = answer_sentences(tables["effects"], tables["size_selection_chance"], Analysis(**settings["analysis"]),
                                 tables["early_stopping"])
    incomplete = f"**Incomplete: {unrun:,} runs of the grid were not run.** " if unrun else ""
    return f"{incomplete}**Answer ({settings['title']}; [the report]({link})).** {' '.join(sentences)}"


def with_answer(text: str, block: str, readme: Path | str = "README.md") -> str:
    """``text`` with the lines between ``ANSWER_START`` and ``ANSWER_END`` replaced by ``block``."""
    start, end = text.find(ANSWER_START), text.find(ANSWER_END)
    if start < 0 or end < start:
        raise ValueError(f"[publish] {readme}: no answer block to write the short answer into (a line "
                         f"{ANSWER_START!r}, then a line {ANSWER_END!r})")
    return text[:start] + f"{ANSWER_START}\n{block}\n" + text[end:]


def answer_in(text: str) -> str:
    """The short answer between ``ANSWER_START`` and ``ANSWER_END`` of a README's ``text`` ('' if none)."""
    start, end = text.find(ANSWER_START), text.find(ANSWER_END)
    return text[start + len(ANSWER_START):end].strip() if 0 <= start < end else ""


def readme_of(report: Path) -> str:
    """The README a published report's tables and ``publish.json`` give (what the golden test compares)."""
    settings, tables = _published(report)
    return render_readme(settings["title"], tables, Analysis(**settings["analysis"]), PATHS, settings.get("run_notes"))


def _published(report: Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    """(``publish.json``'s settings, the README's tables by name) of a published report."""
    report = Path(report)
    settings = json.loads((report / PUBLISHED).read_text())
    return settings, {name: pd.read_csv(report / PATHS[name]) for name in README_TABLES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a finished run's results folder (after the aggregate)")
    parser.add_argument("dest", type=Path, help="the report's folder, e.g. docs/results/study-v3")
    parser.add_argument("--title", required=True)
    parser.add_argument("--config", nargs="+", type=Path, required=True,
                        help="the run's config files in merge order (the analysis block: margin, alpha, power)")
    parser.add_argument("--replace", action="store_true", help="overwrite a report already at dest")
    parser.add_argument("--run-notes", type=Path, help=f"Markdown on how the run was made, published as {RUN_NOTES}")
    parser.add_argument("--incomplete", action="store_true",
                        help="publish a run with runs of its grid not run (its README says so first)")
    parser.add_argument("--readme", type=Path,
                        help="the repository README: its answer block gets the report's short answer")
    args = parser.parse_args(argv)
    analysis = Analysis.from_config(merged_config(args.config))
    print(publish(args.results, args.dest, args.title, analysis, args.replace, args.run_notes, args.incomplete,
                  args.readme))


if __name__ == "__main__":
    main()
