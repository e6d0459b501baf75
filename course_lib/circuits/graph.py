"""Drawing attribution graphs (matplotlib, no server) and labelling their features with the world's
ground truth (notebook 03's scoring: each feature's explanation is the label predicate with the best
F1 on the train split; its F1 is measured on the held-out split).

Layout: token positions on the x axis, layers on the y axis (the token embeddings below layer 0, the
logits above the last layer); the nodes of one (layer, position) side by side. Features are circles,
error nodes grey squares; edge width ∝ |weight|, blue for positive edges, red for negative ones.
"""
from __future__ import annotations

import textwrap

import numpy as np
import torch

from .attribution import Graph
from .transcoders import check_transcoders

POSITIVE, NEGATIVE, ERROR_COLOUR, FEATURE_COLOUR = "#2166ac", "#b2182b", "#bbbbbb", "#fdb863"


def _shown(graph: Graph):
    """The node indices to draw, and the edge mask among all nodes."""
    keep = graph.keep if graph.keep is not None else torch.ones(graph.n_nodes, dtype=torch.bool)
    if graph.keep is None:  # an unpruned graph: no empty error nodes, no token without an edge
        used = (graph.adjacency != 0).any(0) | (graph.adjacency != 0).any(1)
        keep = keep & (used | torch.arange(graph.n_nodes).ge(graph.slice("logit").start))
    edges = graph.edge_mask if graph.edge_mask is not None else graph.adjacency != 0
    return keep.nonzero()[:, 0].tolist(), edges & keep[:, None] & keep[None, :]


def layout(graph: Graph, nodes: list) -> tuple[dict, np.ndarray, float]:
    """``({node index: (x, y)}, centres, width)``: y = layer; each position gets a column as wide as
    its busiest layer needs (``centres[p]`` its x), the nodes of one (layer, position) side by side."""
    cells: dict = {}
    for i in nodes:
        node = graph.node(i)
        cells.setdefault((node.layer, node.position), []).append(i)
    busiest = np.ones(graph.n_pos)
    for (_, p), members in cells.items():
        busiest[p] = max(busiest[p], len(members))
    widths = np.maximum(1.0, 0.6 * busiest)
    centres = np.cumsum(widths) - widths / 2
    xy = {}
    for (layer, p), members in cells.items():
        members.sort(key=lambda i: (graph.node(i).kind != "error", -abs(graph.node(i).activation or 0)))
        half = 0.42 * (widths[p] - 0.4)
        offsets = np.linspace(-half, half, len(members)) if len(members) > 1 else [0.0]
        for i, dx in zip(members, offsets):
            xy[i] = (float(centres[p] + dx), float(layer))
    return xy, centres, float(widths.sum())


def _label(graph: Graph, i: int, labels: dict | None, tokenizer) -> str:
    node = graph.node(i)
    if node.kind == "feature":
        name = f"L{node.layer}/{node.feature}"
        if hasattr(labels, "label"):  # an object that labels any feature, e.g. labels.FeatureLabels
            return textwrap.fill(labels.label(node.layer, node.feature), 20, max_lines=4, placeholder="…")
        found = (labels or {}).get((node.layer, node.feature))
        if found is None:
            return name
        text, f1 = found if isinstance(found, tuple) else (found, None)
        text += f" ({f1:.2f})" if f1 is not None else ""
        return name + "\n" + textwrap.fill(text, 20, max_lines=3, placeholder="…")
    if node.kind == "error":
        return ""
    if node.kind == "token":
        return graph.str_tokens[node.position]
    word = tokenizer.convert_ids_to_tokens(node.token) if tokenizer is not None else str(node.token)
    return f"{word}\np={node.activation:.2f}"


def draw(graph: Graph, labels: dict | None = None, ax=None, tokenizer=None, title: str | None = None):
    """Draw ``graph`` (a pruned one: its ``keep`` nodes and ``edge_mask`` edges; an unpruned one: every
    node with an edge). ``labels``: {(layer, feature): label or (label, F1)} (see :func:`label_features`), or
    an object whose ``label(layer, feature)`` gives a feature's whole text;
    ``tokenizer`` names the logit nodes. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    if not isinstance(graph, Graph):
        raise TypeError(f"draw takes a Graph (from attribute or prune), got {type(graph).__name__}")
    nodes, edges = _shown(graph)
    xy, centres, total = layout(graph, nodes)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(8.0, 1.3 * total), 1.9 * (graph.n_layers + 2)))
    targets, sources = edges.nonzero(as_tuple=True)
    weights = graph.adjacency[targets, sources]
    if len(weights):
        width = 0.3 + 4.0 * (weights.abs() / weights.abs().max()).numpy()
        segments = [(xy[int(s)], xy[int(t)]) for s, t in zip(sources, targets)]
        colours = [POSITIVE if float(w) > 0 else NEGATIVE for w in weights]
        ax.add_collection(LineCollection(segments, linewidths=width, colors=colours, alpha=0.45, zorder=1))
    for k, i in enumerate(sorted(nodes, key=lambda i: xy[i][::-1])):  # by layer, then x
        node, (x, y) = graph.node(i), xy[i]
        if node.kind in ("feature", "error"):
            ax.scatter([x], [y], s=140 if node.kind == "feature" else 70, zorder=2, edgecolors="k", linewidths=0.5,
                       marker="o" if node.kind == "feature" else "s",
                       c=FEATURE_COLOUR if node.kind == "feature" else ERROR_COLOUR)
        text = _label(graph, i, labels, tokenizer)
        if text:
            above = node.kind != "feature" or k % 2 == 0  # neighbouring features alternate above and below
            ax.annotate(text, (x, y), textcoords="offset points",
                        xytext=(0, 0 if node.kind != "feature" else 8 if above else -8),
                        ha="center", va="center" if node.kind != "feature" else "bottom" if above else "top",
                        fontsize=6, zorder=3,
                        bbox=None if node.kind == "feature" else dict(boxstyle="round", fc="white", ec="0.6"))
    ax.set_xlim(0, total)
    ax.set_ylim(-1.6, graph.n_layers + 0.7)
    ax.set_yticks(range(-1, graph.n_layers + 1), ["embed"] + [f"layer {l}" for l in range(graph.n_layers)] + ["logits"])
    ax.set_xticks(centres, [str(p) for p in range(graph.n_pos)])
    ax.set_xlabel("position")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    n_feat = sum(graph.node(i).kind == "feature" for i in nodes)
    ax.set_title(title or f"{' '.join(graph.str_tokens)!r}: {n_feat} features, {int(edges.sum())} edges", fontsize=9)
    return ax


def label_features(model, transcoders, features, config=None, min_support: int = 8) -> dict:
    """Each (layer, feature) of ``features`` with its best ground-truth label and that label's
    held-out F1: ``{(layer, feature): (label, f1)}``. The transcoders' features are computed on
    held-out world text (``config``: a :class:`course_lib.interpretation.CollectConfig`); the label
    is the predicate with the best train-split F1 against where the feature fires (notebook 03's
    explainer, among predicates holding on ≥ ``min_support`` train tokens)."""
    from ..interpretation import CollectConfig, build_predicates, collect, explain, precision_recall_f1

    config = CollectConfig(n_docs=200) if config is None else config
    features = sorted({(int(l), int(f)) for l, f in features})
    if not features:
        return {}
    data = collect(model, config)
    check_transcoders(transcoders)
    layers = sorted({l for l, _ in features})
    ids = torch.tensor([model.tokenizer.convert_tokens_to_ids(list(row)) for row in data.rows])
    rows, cols = torch.from_numpy(data.doc), torch.from_numpy(data.col)
    acts = {l: [] for l in layers}
    with torch.no_grad():
        for start in range(0, len(ids), config.batch_size):
            batch = ids[start:start + config.batch_size].to(model.cfg.device)
            _, cache = model.run_with_cache(batch, names_filter=[f"blocks.{l}.ln2.hook_normalized" for l in layers])
            here = (rows >= start) & (rows < start + len(batch))
            for l in layers:
                x = cache[f"blocks.{l}.ln2.hook_normalized"][rows[here] - start, cols[here]]
                acts[l].append(transcoders.encode_layer(x, l)[:, [f for ll, f in features if ll == l]].cpu())
    fires = torch.cat([torch.cat(acts[l]) for l in layers], dim=1) > 0  # columns in the order of ``features``
    preds = build_predicates(data, min_support)
    train = torch.from_numpy(data.train)
    f1_train = precision_recall_f1(fires[train], preds.matrix[train])[2]
    best, _ = explain(f1_train, preds.matrix[train].sum(0), min_support)
    f1_test = precision_recall_f1(fires[~train], preds.matrix[~train])[2]
    return {feat: (preds.names[int(b)], float(f1_test[u, b])) for u, (feat, b) in enumerate(zip(features, best))}
