"""A picture of a discovered DAG: nodes in layers by longest path from the roots, label highlighted."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; the workflow runs without a display
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from causalmixft.io import atomic_path  # noqa: E402

ORIENTATION_STYLE = {"voted": "solid", "tie": "dashed", "cycle": "dotted"}


def plot_dag(dag: nx.DiGraph, path: str | os.PathLike, title: str = "") -> None:
    layers = {}
    for depth, generation in enumerate(nx.topological_generations(dag)):
        for node in generation:
            layers[node] = depth
    graph = dag.copy()
    nx.set_node_attributes(graph, layers, "layer")
    positions = nx.multipartite_layout(graph, subset_key="layer", align="horizontal", scale=-1)
    width = max(6.0, 1.1 * max((list(layers.values()).count(d) for d in set(layers.values())), default=1))
    height = max(4.0, 1.3 * (max(layers.values(), default=0) + 1))
    figure, axis = plt.subplots(figsize=(min(width, 40), min(height, 40)))
    colours = ["#f4a261" if dag.nodes[n].get("role") == "label" else "#a8dadc" for n in graph.nodes]
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
    axis.set_title(
        title + "\nsolid: voted direction, dashed: tie, dotted: cycle broken; width: edge frequency", fontsize=8
    )
    axis.margins(x=0.12, y=0.12)  # room for long column names at the ends of a layer
    axis.axis("off")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
