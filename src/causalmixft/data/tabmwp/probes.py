"""The probe tasks: question templates whose gold answer follows from a few numbers in the table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from causalmixft.data.tabmwp.numbers import parse_number, table_cells
from causalmixft.data.tabmwp.problems import Problem, ProblemSet
from causalmixft.data.tabmwp.rows import Rows, TaskTable, id_order

class ParseFailure(Exception):
    """A probe problem whose numbers cannot be read; the message is the drop reason."""


@dataclass(frozen=True)
class Probe:
    """A question template whose gold answer is determined by a few numbers in the table."""

    name: str
    detect: str  # lower-cased substring that marks a problem as an instance of the template
    labels: tuple[str, ...]  # the gold answers the template allows
    features: dict[str, str]  # feature name -> definition
    parse: Callable[[Problem], dict[str, float]]
    rule: Callable[[dict[str, float]], str]  # the label the numbers imply
    rule_text: str


def parse_shortage(problem: Problem) -> dict[str, float]:
    """'At a price of $X, is there a shortage or a surplus?' over Price | Quantity demanded | Quantity supplied."""
    match = re.search(r"at a price of (\$[\d,.]*\d)", problem.question, re.IGNORECASE)
    if not match:
        raise ParseFailure("question_unparsed")
    cells = table_cells(problem.table)
    if [c.lower() for c in cells[0]] != ["price", "quantity demanded", "quantity supplied"]:
        raise ParseFailure("table_header_unexpected")
    price = parse_number(match.group(1))
    body = [[parse_number(c) for c in line] for line in cells[1:]]
    if any(len(line) != 3 or None in line for line in body):
        raise ParseFailure("table_number_unparsed")
    rows = [line for line in body if line[0] == price]
    if len(rows) != 1:
        raise ParseFailure("price_row_not_found")
    _, demanded, supplied = rows[0]
    return {"price": price, "quantity_demanded": demanded, "quantity_supplied": supplied}


def rule_shortage(x: dict[str, float]) -> str:
    if x["quantity_demanded"] == x["quantity_supplied"]:
        return "neither"
    return "shortage" if x["quantity_demanded"] > x["quantity_supplied"] else "surplus"


ENOUGH = re.compile(r"^.+ has (\$[\d,.]*\d)\. Does (?:he|she|they) have enough to buy (.+)\?$")


def parse_enough_money(problem: Problem) -> dict[str, float]:
    """'<Name> has $B. Does she have enough to buy a A and a C?' over a price list 'item | $price'."""
    match = ENOUGH.match(problem.question.strip())
    if not match:
        raise ParseFailure("question_unparsed")
    prices = {}
    for line in table_cells(problem.table):
        value = parse_number(line[-1]) if len(line) == 2 else None
        if value is None:
            raise ParseFailure("table_not_a_price_list")
        if _item(line[0]) in prices:
            raise ParseFailure("table_item_repeated")
        prices[_item(line[0])] = value
    items = _two_items(match.group(2), prices)
    if items is None:
        raise ParseFailure("item_not_in_table")
    return {"budget": parse_number(match.group(1)), "price_a": prices[items[0]], "price_b": prices[items[1]]}


def _item(text: str) -> str:
    return re.sub(r"^(?:an?|some|the)\s+", "", text.strip().lower())


def _two_items(text: str, prices: Mapping[str, float]) -> tuple[str, str] | None:
    """Split 'a X and a Y' at the ' and ' that leaves two items of the price list."""
    parts = text.split(" and ")
    for cut in range(1, len(parts)):
        first, second = _item(" and ".join(parts[:cut])), _item(" and ".join(parts[cut:]))
        if first in prices and second in prices:
            return first, second
    return None


def rule_enough_money(x: dict[str, float]) -> str:
    return "yes" if round(x["budget"] - x["price_a"] - x["price_b"], 6) >= 0 else "no"


LINEAR_PAIRS = 3


def parse_linear(problem: Problem) -> dict[str, float]:
    """'Is the function linear or nonlinear?' over an 'x | y' table of three pairs."""
    cells = table_cells(problem.table)
    if [c.lower() for c in cells[0]] != ["x", "y"]:
        raise ParseFailure("table_header_unexpected")
    pairs = [[parse_number(c) for c in line] for line in cells[1:]]
    if any(len(pair) != 2 or None in pair for pair in pairs):
        raise ParseFailure("table_number_unparsed")
    if len(pairs) != LINEAR_PAIRS:
        raise ParseFailure(f"not_{LINEAR_PAIRS}_pairs")
    out = {}
    for i, (x, y) in enumerate(pairs, start=1):
        out[f"x{i}"], out[f"y{i}"] = x, y
    return out


def rule_linear(v: dict[str, float]) -> str:
    """Linear when the slope between consecutive points is constant (exact rational arithmetic)."""
    xs = [Fraction(str(v[f"x{i}"])) for i in range(1, LINEAR_PAIRS + 1)]
    ys = [Fraction(str(v[f"y{i}"])) for i in range(1, LINEAR_PAIRS + 1)]
    if len(set(xs)) != len(xs):
        return "not_a_function_of_distinct_x"
    slopes = {(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(LINEAR_PAIRS - 1)}
    return "linear" if len(slopes) == 1 else "nonlinear"


PROBES = {
    "probe-shortage": Probe(
        "probe-shortage",
        "shortage or a surplus",
        ("shortage", "surplus"),
        {
            "price": "the price asked about (the $ amount in the question)",
            "quantity_demanded": "quantity demanded in the table row of that price",
            "quantity_supplied": "quantity supplied in the table row of that price",
        },
        parse_shortage,
        rule_shortage,
        "shortage if quantity_demanded > quantity_supplied, surplus if smaller",
    ),
    "probe-enough-money": Probe(
        "probe-enough-money",
        "have enough to buy",
        ("yes", "no"),
        {
            "budget": "the money the person has (the $ amount in the question)",
            "price_a": "price in the table of the first item named in the question",
            "price_b": "price in the table of the second item named in the question",
        },
        parse_enough_money,
        rule_enough_money,
        "yes if budget >= price_a + price_b, else no",
    ),
    "probe-linear": Probe(
        "probe-linear",
        "linear or nonlinear",
        ("linear", "nonlinear"),
        {f"{axis}{i}": f"{axis} value of the table's row {i}" for i in range(1, LINEAR_PAIRS + 1) for axis in "xy"},
        parse_linear,
        rule_linear,
        "linear if (y2-y1)/(x2-x1) == (y3-y2)/(x3-x2), else nonlinear",
    ),
}


def label_rule_fidelity(meta: Mapping, rows: pd.DataFrame) -> dict:
    """For a probe task: how often rows (e.g. synthetic ones) obey the rule that makes the real label.

    Real rows agree by construction (the builder checks it), so on synthetic rows this measures
    whether a generator recovered the rule of a few numbers, not just their marginals. Empty for
    every other dataset.
    """
    source = str(meta.get("source", ""))
    task = source.removeprefix("tabmwp:").partition("@")[0]
    if not source.startswith("tabmwp:") or task not in PROBES:
        return {}
    probe = PROBES[task]
    features = list(probe.features)
    complete = rows[features].notna().all(axis=1)
    implied = [probe.rule(dict(zip(features, map(float, values))))
               for values in rows.loc[complete, features].itertuples(index=False)]
    labels = rows.loc[complete, "target"].astype(str).to_numpy()
    agreement = float(np.mean(np.asarray(implied) == labels)) if implied else float("nan")
    majority = float(pd.Series(labels).value_counts(normalize=True).iloc[0]) if len(labels) else float("nan")
    return {"label_rule": {"rule": probe.rule_text, "agreement": agreement, "majority_label_share": majority,
                           "rows": int(complete.sum())}}


def build_probe(found: ProblemSet, src: Path, probe: Probe) -> TaskTable:
    """One row per problem of the template: numbers read from the table, label the gold answer."""
    rows = Rows()
    disagree: list[str] = []
    for problem in found.problems.values():
        if probe.detect not in problem.question.lower():
            continue
        if str(problem.answer) not in probe.labels:
            rows.drop("gold_answer_not_a_template_label", problem.pid)
            continue
        try:
            numbers = probe.parse(problem)
        except ParseFailure as failure:
            rows.drop(str(failure), problem.pid)
            continue
        if probe.rule(numbers) != problem.answer:
            disagree.append(problem.pid)
        rows.add(problem, numbers, str(problem.answer))
    notes = {
        "template": probe.detect,
        "rule": probe.rule_text,
        "rule_agrees_with_gold": len(rows.rows) - len(disagree),
        "rule_disagrees_with_gold": sorted(disagree, key=id_order),
        "universe": f"problems whose question contains {probe.detect!r}",
    }
    return rows.table(probe.name, probe.features, (), notes)
