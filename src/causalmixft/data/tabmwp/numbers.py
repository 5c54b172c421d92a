"""Reading numbers as TabMWP writes them, in tables and questions."""

from __future__ import annotations

import re

# A number as TabMWP writes it: optional minus, digits with optional thousands commas, optional decimals.
NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.])-?\d+(?:\.\d+)?(?!\d)")
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


WHOLE_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
WHOLE_FRACTION = re.compile(r"(-?\d+)\s*/\s*(\d+)")


def parse_number(text: str | float) -> float | None:
    """A whole text as a number: ``"$1,234.50"``, ``"12%"``, ``"-3"``, ``"3/10"``; else None."""
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip().replace("$", "").rstrip("%").strip()
    if WHOLE_NUMBER.fullmatch(value):
        return float(value.replace(",", ""))
    fraction = WHOLE_FRACTION.fullmatch(value)
    if fraction and int(fraction.group(2)):
        return int(fraction.group(1)) / int(fraction.group(2))
    return None


def numbers_in(text: str) -> list[str]:
    """The number tokens written in ``text`` (times of day such as 5:30 excluded), as written."""
    return NUMBER.findall(TIME.sub(" ", text))


def token_value(token: str) -> float:
    return float(token.replace(",", ""))


def table_cells(table: str) -> list[list[str]]:
    """The table's lines split into stripped cells."""
    return [[cell.strip() for cell in line.split("|")] for line in table.split("\n") if line.strip()]
