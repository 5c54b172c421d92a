"""The run grid: every (method, dataset, fold, real budget, synthetic size) run of a config, in one place.

A *cell* is the real data one run sees: a (dataset, fold, budget) with ``budget`` real rows
(train + validation). Budgets come from ``protocol.real_budget`` (an int or a list), or from a
dataset's own ``budgets`` where a small table cannot give the larger ones. Smaller budgets are
nested in larger ones and every budget of a fold shares its test rows (data/splits.py).

A synthetic size is given as an absolute row count (``512``) or as a multiple of the cell's real
train rows (``"4x"``): :class:`SizeSpec`. A multiple resolves per budget, so the same spec stands
for different row counts at different budgets; the grid keeps both so the report can tell a ratio
from an absolute size. Size 0 is "real rows only" and has no sample file.

The rules, the failure scan and the aggregate read runs, samples and sizes from here; nothing else
derives them. Pure Python, no file access: it imports only the method table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from causalmixft.methods import Method

RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$")


@dataclass(frozen=True, order=True)
class SizeSpec:
    """One entry of ``synthetic.sizes``: ``value`` rows, or ``value`` x the real train rows."""

    value: float
    relative: bool = False

    @classmethod
    def parse(cls, spec: int | float | str) -> "SizeSpec":
        if isinstance(spec, bool):
            raise ValueError(f"synthetic size {spec!r} is neither a row count nor a multiple like '4x'")
        if isinstance(spec, int):
            if spec < 0:
                raise ValueError(f"synthetic size {spec} is negative")
            return cls(float(spec))
        match = RATIO.match(str(spec))
        if match is None:
            raise ValueError(f"synthetic size {spec!r} is neither a row count nor a multiple like '4x'")
        return cls(float(match[1]), relative=True)

    @property
    def label(self) -> str:
        """As the config spells it: ``512`` or ``4x`` (``0.25x``)."""
        return f"{self.value:g}x" if self.relative else str(int(self.value))

    def rows(self, train_rows: int) -> int:
        """The synthetic row count at a budget with ``train_rows`` real train rows."""
        return int(round(self.value * train_rows)) if self.relative else int(self.value)


def train_rows(budget: int, val_fraction: float) -> int:
    """Real train rows of a budget: the rest after ``round(val_fraction * budget)`` validation rows."""
    return int(budget) - int(round(val_fraction * budget))


@dataclass(frozen=True)
class Run:
    method: str
    dataset: str
    fold: int
    budget: int
    size: int

    def key(self) -> tuple[str, str, int, int, int]:
        return (self.method, self.dataset, self.fold, self.budget, self.size)


@dataclass(frozen=True)
class Sample:
    generator: str
    dataset: str
    fold: int
    budget: int
    size: int


@dataclass(frozen=True)
class Grid:
    datasets: tuple[str, ...]
    folds: tuple[int, ...]
    budgets: tuple[int, ...]  # protocol.real_budget, sorted
    methods: tuple[Method, ...]
    sizes: tuple[SizeSpec, ...]  # synthetic.sizes as configured
    val_fraction: float
    replicates: int = 1
    sizes_by_generator: Mapping[str, tuple[SizeSpec, ...]] = field(default_factory=dict)
    budgets_by_dataset: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    selection_rows: int = 0  # synthetic rows a method that selects on SCM rows reads beyond its size

    def dataset_budgets(self, dataset: str) -> tuple[int, ...]:
        """The budgets ``dataset`` runs at: its own ``budgets`` entry, else every budget."""
        return self.budgets_by_dataset.get(dataset, self.budgets)

    def cells(self) -> list[tuple[str, int, int]]:
        """(dataset, fold, budget) of every split the grid needs."""
        return [(d, f, b) for d in self.datasets for f in self.folds for b in self.dataset_budgets(d)]

    def train_rows(self, budget: int) -> int:
        return train_rows(budget, self.val_fraction)

    def size_specs(self, generator: str | None) -> tuple[SizeSpec, ...]:
        """The size specs ``generator`` is sampled at (its ``sizes_by_generator`` entry, else all)."""
        return self.sizes_by_generator.get(generator, self.sizes) if generator else self.sizes

    def sample_sizes(self, generator: str, budget: int) -> list[int]:
        """The row counts above 0 ``generator`` is sampled at, at ``budget``: sorted, each once."""
        n_train = self.train_rows(budget)
        return sorted({spec.rows(n_train) for spec in self.size_specs(generator)} - {0})

    def method_sizes(self, method: Method, budget: int) -> list[int]:
        """Where ``method`` runs: n = 0 only without synthetic rows, else its generator's sizes above 0."""
        return self.sample_sizes(method.generator, budget) if method.size_dependent else [0]

    def runs(self) -> list[Run]:
        return [
            Run(method.name, dataset, fold, budget, size)
            for method in self.methods
            for dataset, fold, budget in self.cells()
            for size in self.method_sizes(method, budget)
        ]

    def input_size(self, method: Method, size: int) -> int:
        """The sample a run at ``size`` reads: its own, or ``selection_rows`` more for a method that
        also selects on SCM rows (rows ``size..`` of the nested draw, never trained on)."""
        return size + self.selection_rows if method.selects_on_synthetic else size

    def samples(self, generators: Iterable[str] | None = None) -> list[Sample]:
        """Every sample file the grid needs: each generator's sizes, and the larger draws that
        methods selecting on SCM rows read. ``generators`` limits the list to those."""
        wanted = set(generators) if generators is not None else None
        found = set()
        for run in self.runs():
            method = self.method(run.method)
            if method.generator and (wanted is None or method.generator in wanted) and run.size > 0:
                found.add(Sample(method.generator, run.dataset, run.fold, run.budget, self.input_size(method, run.size)))
        return sorted(found, key=lambda s: (s.generator, s.dataset, s.fold, s.budget, s.size))

    def method(self, name: str) -> Method:
        for method in self.methods:
            if method.name == name:
                return method
        raise KeyError(f"method {name!r} is not in the grid ({[m.name for m in self.methods]})")

    def size_label(self, method: Method, budget: int, size: int) -> str:
        """How the config named ``size`` at ``budget`` (``4x``, ``512``, ``0``); several specs that
        give the same rows are joined with ``=``."""
        if size == 0:
            return "0"
        n_train = self.train_rows(budget)
        labels = [spec.label for spec in self.size_specs(method.generator) if spec.rows(n_train) == size]
        return "=".join(labels) if labels else str(size)

    def dropped_methods(self) -> list[str]:
        """Methods with synthetic rows that have no size above 0 anywhere (a config that would
        silently drop them)."""
        return [
            m.name
            for m in self.methods
            if m.size_dependent and not any(self.sample_sizes(m.generator, b) for b in self.budgets)
        ]
