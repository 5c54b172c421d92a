"""Augmentation baselines and causal controls: one module per synthetic-data generator.

A module ``causalmixft/baselines/<name>.py`` is the generator ``<name>``; it defines

- ``GENERATOR``: a class implementing :class:`causalmixft.generators.protocol.Generator` whose
  ``name`` is ``<name>``, built as ``GENERATOR(dataset=..., **options, **needs)``;
- ``NEEDS``: what the workflow hands it besides its config options (``synthetic.<name>``):
  ``"dag"`` (the discovered DAG of the fold, ``dag=networkx.DiGraph``), ``"backbone"``
  (``weights=`` the backbone weights directory), ``"scm_quality"`` (``quality=`` scm.quality).

Heavy libraries (torch, ctgan, imbalanced-learn, dowhy) are imported inside the generators, so
listing the modules and reading ``NEEDS`` costs nothing at workflow parse time. The modules are
registered in :data:`causalmixft.generators.registry.GENERATORS` under their names: adding a
generator is one module here plus its name in the config's ``synthetic.generators``. The
workflow's fit and sample steps around them are the kit's (:mod:`causalmixft.generators.steps`).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

HELPERS = frozenset({"common"})  # modules of this package that are not generators
NEEDS = ("dag", "backbone", "scm_quality")


def names() -> list[str]:
    """Every generator module of this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS and not m.name.startswith("_"))


def module(name: str) -> ModuleType:
    if name not in names():
        raise ValueError(f"unknown baseline generator {name!r}; known: {names()}")
    loaded = importlib.import_module(f"{__name__}.{name}")
    unknown = set(getattr(loaded, "NEEDS", ())) - set(NEEDS)
    if unknown:
        raise ValueError(f"{loaded.__name__}.NEEDS has unknown entries {sorted(unknown)}; known: {NEEDS}")
    return loaded


def needs(name: str) -> tuple[str, ...]:
    return tuple(getattr(module(name), "NEEDS", ()))


def generator_class(name: str):
    return module(name).GENERATOR
