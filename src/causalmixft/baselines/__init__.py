"""Augmentation baselines and causal controls: one module per synthetic-data generator.

A module ``causalmixft/baselines/<name>.py`` is the generator ``<name>``; it defines
``GENERATOR`` (a class implementing :class:`causalmixft.generators.protocol.Generator` whose
``name`` is ``<name>``) and ``NEEDS`` (what the workflow hands it besides its config options),
as :mod:`causalmixft.generators.registry` describes; the registry lists these modules beside
CausalMixFT's and imports a generator's module by name.

Heavy libraries (torch, ctgan, imbalanced-learn, dowhy) are imported inside the generators, so
listing the modules and reading ``NEEDS`` costs nothing at workflow parse time. Adding a
generator is one module here plus its name in the config's ``synthetic.generators``. The
workflow's fit and sample steps around them are the kit's (:mod:`causalmixft.generators.steps`).
"""

from __future__ import annotations

import pkgutil

HELPERS = frozenset({"common"})  # modules of this package that are not generators


def names() -> list[str]:
    """Every generator module of this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS and not m.name.startswith("_"))
