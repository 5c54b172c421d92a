"""Every generator by name: CausalMixFT (:mod:`causalmixft.generators.causalmixft`) and one per
module of :mod:`causalmixft.baselines`.

A generator's module defines ``GENERATOR`` (its class, built as ``GENERATOR(dataset=...,
**options, **needs)``) and ``NEEDS``: what the workflow hands it besides its config options
(``synthetic.<name>``): ``"dag"`` (the fold's discovered DAG, ``dag=networkx.DiGraph``),
``"backbone"`` (``weights=`` the backbone weights directory), ``"scm_quality"`` (``quality=``
scm.quality). Every generator is fitted by the fit_generator rule and sampled by the
sample_generator rule; the discover_dag rule writes the DAG of those that need it. Adding a
generator is one module in ``causalmixft/baselines/`` plus its name in the config's
``synthetic.generators``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

from causalmixft import baselines
from causalmixft.generators.protocol import Generator

CAUSALMIXFT = "causalmixft"
NEEDS = ("dag", "backbone", "scm_quality")


def modules() -> dict[str, str]:
    """Generator name -> its module: causalmixft first, then the baselines' modules, sorted."""
    return {
        CAUSALMIXFT: f"causalmixft.generators.{CAUSALMIXFT}",
        **{name: f"{baselines.__name__}.{name}" for name in baselines.names()},
    }


def names() -> list[str]:
    """Every generator: causalmixft first, then the baselines' modules, sorted."""
    return list(modules())


def module_name(name: str) -> str:
    """The module that defines generator ``name`` (a job imports it by name: a code input of its rule)."""
    try:
        return modules()[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; known: {names()}") from None


def module(name: str) -> ModuleType:
    """Generator ``name``'s module, imported, its ``NEEDS`` checked."""
    loaded = importlib.import_module(module_name(name))
    unknown = set(getattr(loaded, "NEEDS", ())) - set(NEEDS)
    if unknown:
        raise ValueError(f"{loaded.__name__}.NEEDS has unknown entries {sorted(unknown)}; known: {NEEDS}")
    return loaded


def needs(name: str) -> tuple[str, ...]:
    """What generator ``name`` is handed besides its options (its module's ``NEEDS``)."""
    return tuple(getattr(module(name), "NEEDS", ()))


def generator_class(name: str) -> type:
    """The class of generator ``name``, its module imported by name (``module_name``).

    By name, so that a job pays for (and its rule names as code) only the generator it builds.
    """
    return module(name).GENERATOR


def _factory(name: str) -> Callable[..., Generator]:
    def factory(**options) -> Generator:
        return generator_class(name)(**options)

    factory.__name__ = f"make_{name}"
    return factory


GENERATORS: dict[str, Callable[..., Generator]] = {name: _factory(name) for name in names()}


def make_generator(name: str, **options) -> Generator:
    try:
        factory = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; known: {sorted(GENERATORS)}") from None
    return factory(**options)
