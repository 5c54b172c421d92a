"""The layers of docs/ARCHITECTURE.md hold: no module imports a package its layer may not know.

Counted on the package's import graph (imports inside functions too; `if TYPE_CHECKING:` imports,
which never run, are not counted by causalmixft.workflow_code)."""

from __future__ import annotations

import pytest
from test_package_imports import package_graph

# top-level part of the package -> the parts it may not import (docs/ARCHITECTURE.md, "Layers")
STUDY = {"experiment", "analysis", "workflow_config", "workflow_code", "preflight", "study_parts", "study_checkpoints"}
FORBIDDEN = {
    "data": {"methods", "grid", "model", "causal", "baselines", "generators", *STUDY},  # data knows no method
    "model": {"data", "methods", "grid", "layout", "causal", "baselines", "generators", *STUDY},  # no SCM, no study
    "causal": {"methods", "grid", "model", "baselines", "generators", *STUDY},
    "baselines": {"methods", "grid", "generators", *STUDY},
    "generators": {"methods", "grid", *STUDY},  # generators know no experiment
    "methods": {"data", "model", "causal", "baselines", "generators", "layout", *STUDY},
    "grid": {"data", "model", "causal", "baselines", "generators", "layout", "io", *STUDY},
    "layout": {"data", "model", "causal", "baselines", "generators", "methods", "grid", *STUDY},
    "experiment": {"analysis", "workflow_config", "workflow_code", "preflight", "generators", "causal", "baselines"},
    # the aggregation reads result files: no model, no generator, no fine-tuning run
    "analysis": {"experiment", "model", "data", "workflow_config", "workflow_code", "preflight", "generators", "causal",
                 "baselines"},
}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        banned = FORBIDDEN.get(part(module), set())
        found += [f"{module} -> {t}" for t in sorted(targets) if t.startswith("causalmixft.") and part(t) in banned]
    return found


def test_the_checker_finds_an_import_against_the_layers():
    graph = {"causalmixft.data.prepare": {"causalmixft.methods"}, "causalmixft.grid": {"causalmixft.methods"}}
    assert violations(graph) == ["causalmixft.data.prepare -> causalmixft.methods"]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_against_its_layer(layer):
    graph = {m: t for m, t in package_graph().items() if part(m) == layer}
    assert graph, f"no module in layer {layer!r}: the table is out of date"
    assert violations(graph) == []
