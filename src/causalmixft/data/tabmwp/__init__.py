"""Classification tasks derived from TabMWP, and the ``tabmwp:<task>`` dataset source.

TabMWP (Lu et al., ICLR 2023: 38,431 grade-school math word problems, each with a small
table) is a question-answering benchmark, not a table of rows to classify. This package
derives classification tasks from it, one row per problem (docs/tabmwp.md has the full
account, including every feature's definition):

- ``solved-<solver>`` (gpt3, t5, tapex): did that published solver answer the test problem
  correctly (PromptPG's per-problem results)? Features describe the problem (table shape,
  the numbers in the table, question length and keywords, number of choices, answer form).
- ``grade``: the problem's grade band (1-3, 4-6, 7-8) from the same features plus the
  full-schema fields (unit, title, answer type); only problems that carry a grade.
- ``probe-shortage``, ``probe-enough-money``, ``probe-linear``: table-determined
  multiple-choice templates whose gold answer follows from a few numbers read from the
  table (compare two quantities, a sum against a budget, a constant slope).

Inputs are the upstream problem files: offline the partial copies in a local folder
(``problems_dev1k.json``, ``problems_test1k.json``, ``tabmwp_test_pot.jsonl``), online the
full ``problems_{train,dev,test}.json`` downloaded from the pinned upstream commit and
checked against their git blob ids. :func:`~.tasks.build_tasks` parses them, counts every
problem it cannot use by reason, and :func:`~.tables.write_tables` writes one
``<task>.csv.gz`` per task plus ``build_report.json``. The tables built from the offline files
ship in ``resources/tabmwp``.

Each table has the columns ``problem_id``, ``upstream_split`` (train/dev/test of the
official TabMWP split), the features, then ``target`` (string labels). The dataset loader
(:func:`~.tables.load_task`) drops the two bookkeeping columns, so neither can leak into a model.

Modules, in the order a build runs them (each imports only those above it):

- ``errors``: :class:`TabmwpError`;
- ``upstream``: the pinned upstream files, their checksums, downloading them;
- ``problems``: reading the problem files into :class:`~.problems.Problem` records;
- ``numbers``: reading numbers as TabMWP writes them;
- ``features``: the features of a problem (table, question, choices, answer form);
- ``rows``: a built task's table and the collector of its rows and dropped problems;
- ``probes``: the probe templates, their parsers and label rules, :func:`label_rule_fidelity`;
- ``tasks``: the solved and grade tasks, the task registry, :func:`~.tasks.build_tasks` and its report;
- ``tables``: writing the tables, and loading one as the ``tabmwp:`` source;
- ``__main__``: the command line.

Command line::

    python -m causalmixft.data.tabmwp build --src <folder of TabMWP files> --out resources/tabmwp
    python -m causalmixft.data.tabmwp download --dest .cache/tabmwp/upstream
"""

from causalmixft.data.tabmwp.probes import label_rule_fidelity

__all__ = ["label_rule_fidelity"]
