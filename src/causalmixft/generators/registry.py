"""Every generator by name: CausalMixFT and one per module of :mod:`causalmixft.baselines`.

``causalmixft`` is fitted by the causal stage's own rules (discover_dag, fit_scm); every other
generator by the generic fit_generator rule, which hands it its config options and what its
module's ``NEEDS`` asks for. Adding a generator is one module in ``causalmixft/baselines/`` plus
its name in the config's ``synthetic.generators``.
"""

from __future__ import annotations

import importlib
from typing import Callable

from causalmixft import baselines
from causalmixft.generators.protocol import Generator

CAUSALMIXFT = "causalmixft"


def names() -> list[str]:
    """Every generator: causalmixft first, then the baselines' modules, sorted."""
    return [CAUSALMIXFT, *baselines.names()]


def rule_fitted() -> list[str]:
    """The generators the fit_generator and sample_generator rules handle (all but causalmixft)."""
    return baselines.names()


def module_name(name: str) -> str:
    """The module that defines generator ``name`` (a job imports it by name: a code input of its rule)."""
    if name == CAUSALMIXFT:
        return "causalmixft.causal.generator"
    baselines.module(name)  # an unknown name fails here, naming the known ones
    return f"causalmixft.baselines.{name}"


def needs(name: str) -> tuple[str, ...]:
    """What generator ``name`` is handed besides its options (``baselines.NEEDS``); causalmixft: nothing."""
    return () if name == CAUSALMIXFT else baselines.needs(name)


def generator_class(name: str) -> type:
    """The class of generator ``name``, its module imported by name (``module_name``).

    By name, so that a job pays for (and its rule names as code) only the generator it builds.
    """
    if name == CAUSALMIXFT:
        return importlib.import_module(module_name(name)).CausalMixFTGenerator
    return baselines.generator_class(name)


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
