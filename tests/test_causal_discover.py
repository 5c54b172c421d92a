"""Discovery: PC/FCI on tables from known SCMs, the frequencies-to-DAG procedure, degenerate inputs."""

import zlib

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalmixft.causal import simulate
from causalmixft.causal.ci_data import encode_for_ci, find_degenerate_columns
from causalmixft.causal.discover import DiscoverySettings, discover_dag, stable_node_hashes
from causalmixft.causal.orient import EdgeFrequencies, orient_dag
from causalmixft.data.schema import TARGET
from causalmixft.errors import StageError


def skeleton(graph: nx.DiGraph) -> set[frozenset]:
    return {frozenset(e) for e in graph.edges}


@pytest.mark.parametrize("make", [simulate.chain, simulate.fork, simulate.collider, simulate.mixed])
def test_pc_fci_recover_the_skeleton_of_known_scms(make):
    table = make(1500, seed=3)
    result = discover_dag(table.frame, table.schema, seed=0)
    assert skeleton(result.dag) == skeleton(table.dag)
    assert nx.is_directed_acyclic_graph(result.dag)
    assert set(result.dag.nodes) == set(table.frame.columns)
    assert [r["algorithm"] for r in result.runs] == ["pc", "fci"]


def test_collider_at_the_label_is_oriented_into_the_label():
    table = simulate.collider(1500, seed=4)
    dag = discover_dag(table.frame, table.schema, seed=0).dag
    assert dag.has_edge("a", TARGET) and dag.has_edge("b", TARGET)
    assert dag.edges["a", TARGET]["orientation"] == "voted"


def test_discovery_is_deterministic_and_bootstrap_counts_every_run():
    table = simulate.mixed(300, seed=1)
    settings = {"bootstrap": 3, "edge_threshold": 0.5, "ci_test": "fisherz"}
    first = discover_dag(table.frame, table.schema, settings, seed=7)
    second = discover_dag(table.frame, table.schema, settings, seed=7)
    assert list(first.dag.edges(data=True)) == list(second.dag.edges(data=True))
    assert first.frequencies.runs == 6 and len(first.runs) == 6
    assert {r["resample"] for r in first.runs} == {0, 1, 2}
    adjacency = first.frequencies.adjacent
    assert np.allclose(adjacency, adjacency.T)
    assert np.allclose(
        first.frequencies.directed + first.frequencies.directed.T + first.frequencies.symmetric, adjacency
    )
    # each kept edge passed the threshold
    assert all(data["adjacent"] >= 0.5 for *_, data in first.dag.edges(data=True))


def test_dag_json_records_nodes_edges_frequencies_and_settings():
    table = simulate.chain(500, seed=2)
    record = discover_dag(table.frame, table.schema, seed=0).to_json()
    assert {n["name"] for n in record["nodes"]} == set(table.frame.columns)
    assert {n["role"] for n in record["nodes"] if n["name"] == TARGET} == {"label"}
    assert {(e["source"], e["target"]) for e in record["edges"]} == set(table.dag.edges)
    assert all({"a", "b", "adjacent", "a_to_b", "b_to_a", "undirected"} <= set(p) for p in record["edge_frequencies"])
    assert record["settings"]["algorithms"] == ["pc", "fci"] and record["ci_test"] == "fisherz"
    assert record["settings"]["ci_test"] == "auto"


def _frequencies(names, adjacent_pairs, directed_votes, runs=2):
    """Counts -> EdgeFrequencies: ``directed_votes[(u, v)]`` runs voted u -> v, the rest undirected."""
    index = {n: k for k, n in enumerate(names)}
    p = len(names)
    adjacent, directed, symmetric = np.zeros((p, p)), np.zeros((p, p)), np.zeros((p, p))
    for (u, v), count in adjacent_pairs.items():
        i, j = index[u], index[v]
        adjacent[i, j] = adjacent[j, i] = count
        forward, backward = directed_votes.get((u, v), 0), directed_votes.get((v, u), 0)
        directed[i, j], directed[j, i] = forward, backward
        symmetric[i, j] = symmetric[j, i] = count - forward - backward
    return EdgeFrequencies.from_counts(names, runs, adjacent, directed, symmetric)


def test_orientation_threshold_votes_and_ties_follow_the_documented_rules():
    names = ["a", "b", "c", TARGET]
    freq = _frequencies(
        names,
        {("a", "b"): 2, ("b", "c"): 1, ("c", TARGET): 2, ("a", TARGET): 1},
        {("b", "a"): 1, ("c", TARGET): 2},
        runs=4,
    )
    result = orient_dag(freq, threshold=0.5)
    # adjacency 1/4 < 0.5: b-c and a-target are dropped
    assert set(result.dag.edges) == {("b", "a"), ("c", TARGET)}
    assert result.dag.edges["b", "a"]["orientation"] == "voted"
    # threshold 0 keeps every pair seen in any run, and only those
    assert skeleton(orient_dag(freq, threshold=0.0).dag) == {
        frozenset(p) for p in [("a", "b"), ("b", "c"), ("c", TARGET), ("a", TARGET)]
    }
    # with no votes at all, a - target - b (a, b non-adjacent) must not become a collider at the label
    tie = orient_dag(_frequencies(names, {("a", TARGET): 2, ("b", TARGET): 2}, {}), threshold=0.5)
    assert skeleton(tie.dag) == {frozenset(("a", TARGET)), frozenset(("b", TARGET))}
    assert tie.dag.in_degree(TARGET) == 1  # a chain through the label (a -> target -> b)
    assert {d["orientation"] for *_, d in tie.dag.edges(data=True)} == {"extension"}
    assert tie.new_colliders == []
    # ... but with a and b adjacent (no collider possible), the label is the sink of its undecided edges
    shielded = {("a", TARGET): 2, ("b", TARGET): 2, ("a", "b"): 2}
    triangle = orient_dag(_frequencies(names, shielded, {}), threshold=0.5)
    assert set(triangle.dag.edges) == {("a", TARGET), ("b", TARGET), ("a", "b")}


def test_a_voted_cycle_loses_its_weakest_orientation_but_keeps_the_adjacency():
    names = ["a", "b", "c", TARGET]
    votes = {("a", "b"): 4, ("b", "c"): 4, ("c", "a"): 3}  # c -> a has the smallest margin
    freq = _frequencies(names, {("a", "b"): 4, ("b", "c"): 4, ("a", "c"): 4}, votes, runs=4)
    result = orient_dag(freq, threshold=0.5)
    assert nx.is_directed_acyclic_graph(result.dag)
    assert result.cycles_broken == [["c", "a"]]
    assert skeleton(result.dag) == {frozenset(p) for p in [("a", "b"), ("b", "c"), ("a", "c")]}
    # the broken edge a - c is then compelled by Meek's R2 (a -> b -> c) rather than left to a convention
    assert result.dag.edges["a", "c"]["orientation"] == "meek"
    assert result.dag.edges["a", "c"]["cycle_broken"] and not result.dag.edges["a", "b"]["cycle_broken"]


def v_structures(graph: nx.DiGraph) -> set[tuple]:
    return {
        (min(a, b), x, max(a, b))
        for x in graph.nodes
        for a in graph.predecessors(x)
        for b in graph.predecessors(x)
        if a < b and not graph.has_edge(a, b) and not graph.has_edge(b, a)
    }


def test_meek_rule_r1_propagates_a_voted_arrow_without_a_new_collider():
    names = ["a", "b", "c", TARGET]
    freq = _frequencies(names, {("a", "b"): 2, ("b", "c"): 2}, {("a", "b"): 2})
    dag = orient_dag(freq, threshold=0.5).dag
    assert dag.has_edge("b", "c") and dag.edges["b", "c"]["orientation"] == "meek"


@pytest.mark.parametrize("seed", range(12))
def test_orientation_of_a_cpdag_gives_a_markov_equivalent_dag(seed):
    """Votes only on v-structure edges, ties elsewhere (a CPDAG's information): the DAG must have the
    true skeleton and exactly the true v-structures, with nothing forced."""
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(7)] + [TARGET]
    order = list(rng.permutation(names))
    truth = nx.DiGraph([(order[i], order[j]) for i in range(8) for j in range(i + 1, 8) if rng.random() < 0.35])
    truth.add_nodes_from(names)
    in_collider = {frozenset((a, x)) for a, x, b in v_structures(truth)} | {
        frozenset((b, x)) for a, x, b in v_structures(truth)
    }
    votes = {(u, v): 2 for u, v in truth.edges if frozenset((u, v)) in in_collider}
    freq = _frequencies(names, {(u, v): 2 for u, v in truth.edges}, votes)
    result = orient_dag(freq, threshold=0.5)
    assert skeleton(result.dag) == skeleton(truth)
    assert v_structures(result.dag) == v_structures(truth)
    assert nx.is_directed_acyclic_graph(result.dag) and result.new_colliders == []


def test_a_graph_without_consistent_extension_forces_and_records_the_fewest_colliders():
    names = ["a", "b", "c", "d", TARGET]
    square = {("a", "b"): 2, ("b", "c"): 2, ("c", "d"): 2, ("d", "a"): 2}  # chordless, all undirected
    result = orient_dag(_frequencies(names, square, {}), threshold=0.5)
    assert nx.is_directed_acyclic_graph(result.dag) and skeleton(result.dag) == {frozenset(e) for e in square}
    assert len(result.new_colliders) == 1 and v_structures(result.dag) == {
        (min(a, b), x, max(a, b)) for a, x, b in result.new_colliders
    }
    assert "forced" in {d["orientation"] for *_, d in result.dag.edges(data=True)}


def test_constant_duplicate_and_collinear_columns_leave_the_tests_and_rejoin_the_dag():
    table = simulate.chain(600, seed=5)
    frame = table.frame.copy()
    frame["const"] = 3.0
    frame["a_twin"] = frame["a"] * 2.0 + 1.0  # a unit change: |corr| = 1
    frame["sum_bc"] = frame["b"] + frame["c"]
    frame = frame[["a", "b", "c", "const", "a_twin", "sum_bc", TARGET]]
    schema = simulate.schema_for(frame)
    result = discover_dag(frame, schema, seed=0)
    excluded = result.ci_data.excluded
    assert excluded["const"]["reason"] == "constant"
    assert excluded["a_twin"] == {"reason": "duplicate", "determined_by": ["a"]}
    assert excluded["sum_bc"]["reason"] == "collinear"
    assert set(excluded["sum_bc"]["determined_by"]) == {"b", "c"}
    dag = result.dag
    assert dag.degree("const") == 0
    assert dag.has_edge("a", "a_twin") and dag.edges["a", "a_twin"]["orientation"] == "duplicate"
    assert set(dag.predecessors("sum_bc")) == {"b", "c"} and dag.out_degree("sum_bc") == 0
    assert skeleton(dag.subgraph(["a", "b", "c", TARGET])) == skeleton(table.dag)
    assert nx.is_directed_acyclic_graph(dag)


def test_a_feature_that_copies_the_label_becomes_the_labels_child():
    table = simulate.chain(300, seed=6)
    frame = table.frame.copy()
    frame.insert(0, "leak", frame[TARGET])
    schema = simulate.schema_for(frame, categorical=["leak"])
    result = discover_dag(frame, schema, seed=0)
    assert result.ci_data.excluded["leak"]["determined_by"] == [TARGET]
    assert list(result.dag.predecessors("leak")) == [TARGET]


def test_degenerate_column_search_examines_the_label_first():
    matrix = np.column_stack([np.arange(10.0), np.arange(10.0) % 2, np.arange(10.0) % 2])
    excluded = find_degenerate_columns(matrix, ["x", "twin", TARGET], first=TARGET)
    assert excluded == {"twin": {"reason": "duplicate", "determined_by": [TARGET]}}


def _all_categorical_table():
    """a -> b -> target, all categorical; the label depends on b non-monotonically in b's codes."""
    rng = np.random.default_rng(0)
    n = 800
    a = rng.choice(["x", "y", "z"], n)
    b = np.where(rng.random(n) < 0.8, a, rng.choice(["x", "y", "z"], n))
    target = np.where(rng.random(n) < 0.85, (b == "y").astype(int).astype(str), rng.choice(["0", "1"], n))
    frame = pd.DataFrame({"a": a, "b": b, "noise": rng.choice(["p", "q"], n), TARGET: target})
    return frame, simulate.schema_for(frame, categorical=["a", "b", "noise"])


@pytest.mark.parametrize("ci_test", ["auto", "gsq", "chisq"])
def test_all_categorical_data_with_discrete_tests(ci_test):
    frame, schema = _all_categorical_table()
    # alpha 0.01: a 5% test has a 1-in-20 false dependence by design, and one is enough to add an edge
    result = discover_dag(frame, schema, {"ci_test": ci_test, "alpha": 0.01}, seed=0)
    assert result.ci_test == ("gsq" if ci_test == "auto" else ci_test)
    assert skeleton(result.dag) == {frozenset(("a", "b")), frozenset(("b", TARGET))}


def test_fisherz_on_level_codes_misses_a_non_monotone_separation():
    """The documented price of Fisher-z on codes: the label depends on the middle level of b, which
    no linear function of b's code captures, so the true b-label edge is lost."""
    frame, schema = _all_categorical_table()
    found = skeleton(discover_dag(frame, schema, {"ci_test": "fisherz", "alpha": 0.01}, seed=0).dag)
    assert frozenset(("a", "b")) in found
    assert frozenset(("b", TARGET)) not in found


def test_discrete_tests_bin_numeric_columns():
    table = simulate.chain(1500, seed=8)
    result = discover_dag(table.frame, table.schema, {"ci_test": "gsq"}, seed=0)
    assert skeleton(result.dag) == skeleton(table.dag)


def test_kci_runs_on_a_capped_subsample():
    table = simulate.chain(400, seed=9)
    result = discover_dag(
        table.frame, table.schema, {"ci_test": "kci", "kci_max_rows": 60, "algorithms": ["pc"]}, seed=0
    )
    assert result.runs[0]["rows"] == 60
    assert nx.is_directed_acyclic_graph(result.dag)


def test_single_feature_and_missing_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    target = np.where(x + rng.normal(size=300) * 0.5 > 0, "yes", "no")
    x[::7] = np.nan
    frame = pd.DataFrame({"x": x, TARGET: target})
    schema = simulate.schema_for(frame)
    result = discover_dag(frame, schema, seed=0)
    assert skeleton(result.dag) == {frozenset(("x", TARGET))}
    assert result.ci_data.imputed == {"x": int(np.isnan(x).sum())}


def test_mv_fisherz_deletes_missing_values_test_by_test():
    table = simulate.chain(1500, seed=12)
    frame = table.frame.copy()
    frame.loc[::9, "b"] = np.nan
    result = discover_dag(frame, table.schema, {"ci_test": "mv_fisherz"}, seed=0)
    assert result.ci_test == "mv_fisherz"
    assert skeleton(result.dag) == skeleton(table.dag)
    assert result.ci_data.imputed == {"b": int(frame["b"].isna().sum())}


def test_categorical_missing_values_are_filled_with_the_most_frequent_code():
    table = simulate.mixed(200, seed=2)
    frame = table.frame.copy()
    frame.loc[:9, "colour"] = np.nan
    ci = encode_for_ci(frame, table.schema)
    colour = ci.matrix[:, ci.names.index("colour")]
    most_frequent = table.schema.feature("colour").levels.index(frame["colour"].mode()[0])
    assert ci.imputed == {"colour": 10} and (colour[:10] == most_frequent).all()


def test_max_rows_subsamples_before_discovery():
    table = simulate.chain(700, seed=10)
    result = discover_dag(table.frame, table.schema, {"max_rows": 250}, seed=0)
    assert result.rows_used == 250 and result.runs[0]["rows"] == 250


def test_tiny_data_gives_a_dag_not_a_library_error():
    table = simulate.collider(12, seed=11)
    result = discover_dag(table.frame, table.schema, seed=0)
    assert nx.is_directed_acyclic_graph(result.dag)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"alpha": 2}, "alpha"),
        ({"algorithms": ["ges"]}, "algorithms"),
        ({"ci_test": "spearman"}, "ci_test"),
        ({"edge_threshold": 1.5}, "edge_threshold"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_settings_are_a_stage_error(settings, message):
    table = simulate.chain(50, seed=0)
    with pytest.raises(StageError, match=message):
        discover_dag(table.frame, table.schema, settings, dataset="chain")


def test_bad_tables_are_a_stage_error():
    table = simulate.chain(50, seed=0)
    with pytest.raises(StageError, match=r"\[discover\] chain: .*single class"):
        one_class = table.frame.assign(target="1")
        discover_dag(one_class, table.schema, dataset="chain")
    with pytest.raises(StageError, match="at least 5"):
        discover_dag(table.frame.iloc[:4], table.schema, dataset="chain")
    with pytest.raises(StageError, match="lacks"):
        discover_dag(table.frame.drop(columns="b"), table.schema, dataset="chain")
    assert DiscoverySettings.from_config({"algorithms": ["pc"]}).algorithms == ("pc",)


def test_fci_nodes_hash_by_a_salt_free_checksum_only_while_discovery_runs():
    from causallearn.graph.GraphNode import GraphNode

    node = GraphNode("Glucose")
    with stable_node_hashes():
        assert hash(node) == zlib.crc32(b"Glucose")
        assert hash(GraphNode("Glucose")) == hash(node) and GraphNode("Glucose") == node
    assert hash(node) == hash("Glucose")  # causal-learn's own hash is back


def test_a_wide_dag_is_drawn_as_the_labels_markov_blanket(tmp_path):
    from causalmixft.causal.plot import MAX_PLOTTED_NODES, plot_dag, plotted_subgraph

    wide = nx.DiGraph([(f"x{i}", f"x{i + 1}") for i in range(200)])
    wide.add_edges_from([("x5", TARGET), (TARGET, "x9"), ("x50", "x9")])
    wide.nodes[TARGET]["role"] = "label"
    shown = plotted_subgraph(wide)
    assert set(shown.nodes) == {TARGET, "x5", "x9", "x8", "x50"}
    small = wide.subgraph([f"x{i}" for i in range(MAX_PLOTTED_NODES)])
    assert plotted_subgraph(small) is small
    plot_dag(wide, tmp_path / "dag.png", title="wide")
    assert (tmp_path / "dag.png").stat().st_size > 0
