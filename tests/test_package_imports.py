"""The package's import graph has no circle: every module can be read (and imported) after the
modules it imports, also counting imports inside functions."""

from __future__ import annotations

from conftest import REPO

from causalmixft.workflow_code import imported_modules

SRC = REPO / "src"


def package_graph() -> dict[str, set[str]]:
    root = SRC / "causalmixft"
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return {name: imported_modules(name, SRC) for name in names}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_no_module_of_the_package_imports_itself_through_others():
    graph = package_graph()
    assert "causalmixft.data.tabmwp.tables" in graph["causalmixft.data.sources"]  # imports are seen
    assert cycles(graph) == []


def package_level(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the package's top-level modules and subpackages (causal, baselines, ...)."""

    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for source, targets in graph.items():
        folded.setdefault(top(source), set()).update(top(t) for t in targets if top(t) != top(source))
    return folded


def test_the_generator_kit_sits_above_the_generators_and_no_subpackages_import_each_other_in_a_circle():
    graph = package_graph()
    packages = package_level(graph)
    assert "causalmixft.causal" in packages["causalmixft.generators"]  # edges between subpackages are seen
    assert cycles(packages) == []
    # The kit (protocol, registry, CausalMixFT, loading, seeding, sampling, casting, fidelity, the
    # rules' steps) builds on causal/ and baselines/; causal/ (discovery, the SCM) imports neither.
    assert not packages["causalmixft.causal"] & {"causalmixft.baselines", "causalmixft.generators"}
    # The one missing-value fill the SCM and the baselines share sits below both, in data/.
    for user in ("causalmixft.causal.scm", "causalmixft.baselines.smote"):
        assert "causalmixft.data.impute" in graph[user]
    assert "causalmixft.generators" not in packages["causalmixft.baselines"]
    # The baselines reach into causal/ only for the SCM that the two SCM controls fit on their DAGs.
    reached = {t for name, targets in graph.items() if name.startswith("causalmixft.baselines") for t in targets}
    assert {t for t in reached if t.startswith("causalmixft.causal")} == {"causalmixft.causal.scm"}
