"""A picture of a discovered DAG: nodes in layers by longest path from the roots, label highlighted.

Drawing cost grows with edges (one matplotlib arrow patch each), so a DAG with more than
``MAX_PLOTTED_NODES`` nodes is drawn as the label's Markov blanket only (parents, children, the
children's other parents), at most ``MAX_PLOTTED_NODES`` of them, and the title says how many
nodes were left out; ``dag.json`` always holds the full graph.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; the workflow runs without a display
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from causalmixft.io import atomic_path  # noqa: E402

# Beyond this many nodes a full layered drawing is both slow (seconds per hundred edges) and unreadable.
MAX_PLOTTED_NODES = 40
ORIENTATION_STYLE = {"voted": "solid", "meek": "solid", "extension": "dashed", "forced": "dotted"}
LEGEND = "solid: voted or compelled (Meek), dashed: consistent extension, dotted: forced; width: edge frequency"


def plotted_subgraph(dag: nx.DiGraph, max_nodes: int = MAX_PLOTTED_NODES) -> nx.DiGraph:
    """The whole DAG when small; otherwise the label's Markov blanket, capped at ``max_nodes`` nodes."""
    if dag.number_of_nodes() <= max_nodes:
        return dag
    labels = [n for n in dag.nodes if dag.nodes[n].get("role") == "label"]
    keep: list = []
    for label in labels:
        children = list(dag.successors(label))
        spouses = [p for c in children for p in dag.predecessors(c) if p != label]
        for node in [label, *dag.predecessors(label), *children, *spouses]:
            if node not in keep:
                keep.append(node)
    return dag.subgraph(keep[:max_nodes]).copy()


def plot_dag(dag: nx.DiGraph, path: str | os.PathLike, title: str = "") -> None:
    graph = plotted_subgraph(dag).copy()
    if graph.number_of_nodes() < dag.number_of_nodes():
        title += (
            f"\nlabel's Markov blanket only: {graph.number_of_nodes()} of {dag.number_of_nodes()} nodes "
            "(full graph in dag.json)"
        )
    layers = {}
    for depth, generation in enumerate(nx.topological_generations(graph)):
        for node in generation:
            layers[node] = depth
    nx.set_node_attributes(graph, layers, "layer")
    positions = nx.multipartite_layout(graph, subset_key="layer", align="horizontal", scale=-1)
    width = max(6.0, 1.1 * max((list(layers.values()).count(d) for d in set(layers.values())), default=1))
    height = max(4.0, 1.3 * (max(layers.values(), default=0) + 1))
    figure, axis = plt.subplots(figsize=(min(width, 40), min(height, 40)))
    colours = ["#f4a261" if graph.nodes[n].get("role") == "label" else "#a8dadc" for n in graph.nodes]
    nx.draw_networkx_nodes(graph, positions, node_color=colours, node_size=900, ax=axis)
    nx.draw_networkx_labels(graph, positions, font_size=7, ax=axis)
    for style in ("solid", "dashed", "dotted"):
        edges = [
            (u, v)
            for u, v, data in graph.edges(data=True)
            if ORIENTATION_STYLE.get(data.get("orientation"), "solid") == style
        ]
        widths = [0.5 + 2.5 * graph.edges[e].get("adjacent", 1.0) for e in edges]
        nx.draw_networkx_edges(
            graph, positions, edgelist=edges, style=style, width=widths, arrowsize=12, node_size=900, ax=axis
        )
    axis.set_title(f"{title}\n{LEGEND}", fontsize=8)
    axis.margins(x=0.12, y=0.12)  # room for long column names at the ends of a layer
    axis.axis("off")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
