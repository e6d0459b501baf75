"""Figures of notebook 01: the 2-D geometries, feature norms with their interference, dimensions
per feature, the phase diagram, and the neurons of ReLU-hidden models. Each returns the figure."""
from __future__ import annotations

import math

import torch

from ._inputs import as_tensor, check_W
from .measures import (
    STICKY_FRACTIONS,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    features_per_neuron,
    interference,
)
from .phases import PHASES

PHASE_COLOURS = ("#d9d9d9", "#4a90d9", "#1a1a1a")


def _feature_colours(n: int):
    import matplotlib.pyplot as plt

    return plt.cm.viridis([0.9 * i / max(n - 1, 1) for i in range(n)])


def draw_features_2d(ax, W: torch.Tensor, title: str | None = None) -> None:
    """Draw the columns of one 2-D instance ``W`` [2, n_features] as arrows from the origin
    (colour: feature index, dark = most important)."""
    from matplotlib.patches import Circle

    W = W.detach()
    colours = _feature_colours(W.shape[1])
    ax.add_patch(Circle((0, 0), 1, fill=False, lw=0.5, color="0.8"))
    for i in range(W.shape[1]):
        x, y = W[:, i].tolist()
        ax.plot([0, x], [0, y], color=colours[i], lw=1.5)
        ax.scatter([x], [y], color=colours[i], s=14, zorder=3)
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), xticks=[], yticks=[], aspect="equal")
    if title:
        ax.set_title(title, fontsize=9)


def plot_geometry(W: torch.Tensor, feature_probability: torch.Tensor):
    """Top row: the feature directions W_i in the 2-D hidden space; bottom row: W^T W (diagonal =
    ||W_i||^2, off-diagonal = interference between features), one column per sparsity."""
    import matplotlib.pyplot as plt

    W = check_W(W)
    p = as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    n = W.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.45 * n, 3.2), squeeze=False)
    for k in range(n):
        draw_features_2d(axes[0, k], W[k], f"S = {1 - p[k]:.2f}")
        axes[1, k].imshow((W[k].T @ W[k]).numpy(), cmap="RdBu_r", vmin=-1.3, vmax=1.3)
        axes[1, k].set(xticks=[], yticks=[])
    axes[0, 0].set_ylabel("columns $W_i$")
    axes[1, 0].set_ylabel("$W^T W$")
    fig.suptitle("5 features in 2 dimensions: dense (left) to sparse (right)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_feature_norms(W: torch.Tensor, feature_probability: torch.Tensor):
    """One panel per sparsity: a bar per feature (most important on top) whose length is ||W_i||
    and whose colour is its interference sum_{j != i} (W^_i . W_j)^2 (dark: a dimension of its own)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    W = check_W(W)
    p = as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    norms, interf = feature_norms(W), interference(W)
    n, n_features = W.shape[0], W.shape[2]
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n + 1, 0.05 * n_features + 2), sharey=True, squeeze=False)
    cmap, scale = plt.cm.plasma, Normalize(0, 1)
    for k, ax in enumerate(axes[0]):
        ax.barh(range(n_features), norms[k].numpy(), color=cmap(scale(interf[k].clamp(max=1).numpy())), height=0.85)
        represented = int((norms[k] > 0.5).sum())
        ax.set_title(f"S = {1 - p[k]:.2f}\n{represented} of {n_features} features", fontsize=9)
        ax.set_xlim(0, 1.3)
        ax.set_xlabel("$||W_i||$")
    axes[0, 0].invert_yaxis()
    axes[0, 0].set_ylabel("feature i (importance decreases downwards)")
    fig.colorbar(plt.cm.ScalarMappable(scale, cmap), ax=axes[0].tolist(), label="interference (clipped at 1)")
    return fig


def plot_dimensionality(W: torch.Tensor, feature_probability: torch.Tensor, threshold: float = 0.5):
    """D* = m / ||W||_F^2 (line) and the feature dimensionalities D_i of the represented features
    (dots) against 1 / (1 - S), with the sticky fractions as dashed lines."""
    import matplotlib.pyplot as plt

    W = check_W(W)
    p = as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    x = (1 / p).numpy()
    D_i, represented = feature_dimensionality(W), feature_norms(W) > threshold
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for fraction in STICKY_FRACTIONS:
        ax.axhline(fraction, color="0.6", ls="--", lw=0.8)
    right = ax.twinx()  # label the sticky fractions on the right-hand axis
    right.set(ylim=(0, 1.1), yticks=list(STICKY_FRACTIONS), yticklabels=list(STICKY_FRACTIONS.values()))
    right.tick_params(labelsize=8, length=0)
    for k in range(W.shape[0]):
        dots = D_i[k][represented[k]].numpy()
        ax.scatter([x[k]] * len(dots), dots, s=12, alpha=0.35, color="tab:blue", lw=0,
                   label="$D_i$ of a represented feature" if k == 0 else None)
    ax.plot(x, dimensions_per_feature(W).numpy(), "o-", color="black", ms=4, label="$D^* = m / ||W||_F^2$")
    ax.set(xscale="log", xlabel="1 / (1 - S)   (sparser to the right)", ylabel="dimensions per feature",
           ylim=(0, 1.1))
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def plot_phase_diagram(phases: torch.Tensor, relative_importance: torch.Tensor, density: torch.Tensor):
    """The phase diagram: what happens to the extra feature, for every (density, relative importance)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    def edges(centres):  # cell edges halfway (in log) between the centres
        logs = centres.log()
        mid = (logs[1:] + logs[:-1]) / 2
        return torch.cat([2 * logs[:1] - mid[:1], mid, 2 * logs[-1:] - mid[-1:]]).exp().numpy()

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.pcolormesh(edges(density), edges(relative_importance), phases.numpy(), cmap=ListedColormap(PHASE_COLOURS),
                  vmin=-0.5, vmax=2.5)
    I = torch.logspace(math.log10(relative_importance.min()) - 0.2, math.log10(relative_importance.max()) + 0.2, 200)
    boundary = torch.where(I <= 1, 4 * I / (2 + 5 * I), 4 / (5 + 2 * I))  # closed form, see theoretical_phase
    ax.plot(boundary.numpy(), I.numpy(), color="tab:red", ls="--", lw=1.5, label="closed-form boundary")
    ax.plot([4 / 7, 1.5], [1, 1], color="tab:red", ls="--", lw=1.5)
    ax.set(xscale="log", yscale="log", xlabel="feature density 1 - S (both features)",
           ylabel="relative importance of the extra feature",
           xlim=tuple(edges(density)[[0, -1]]), ylim=tuple(edges(relative_importance)[[0, -1]]))
    handles = [Patch(color=c, label=name) for c, name in zip(PHASE_COLOURS, PHASES)]
    ax.legend(handles=handles + ax.get_lines()[:1], loc="upper left", bbox_to_anchor=(1.02, 1), title="extra feature")
    ax.set_title("2 features in 1 dimension", fontsize=10)
    fig.tight_layout()
    return fig


def plot_neurons(W: torch.Tensor, feature_probability: torch.Tensor, threshold: float = 0.3):
    """ReLU-hidden models: per neuron, its weights from each feature stacked as coloured bars
    (positive weights excite the neuron, up; negative ones inhibit it, down)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    W = check_W(W)
    p = as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    n, n_hidden, n_features = W.shape
    colours = _feature_colours(n_features)
    counts = features_per_neuron(W, threshold)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 1.4, 3.3), sharey=True, squeeze=False)
    for k, ax in enumerate(axes[0]):
        up, down = torch.zeros(n_hidden), torch.zeros(n_hidden)
        for i in range(n_features):
            w = W[k, :, i]
            ax.bar(range(n_hidden), w.clamp(min=0).numpy(), bottom=up.numpy(), color=colours[i], width=0.7)
            ax.bar(range(n_hidden), w.clamp(max=0).numpy(), bottom=down.numpy(), color=colours[i], width=0.7, alpha=0.35)
            up, down = up + w.clamp(min=0), down + w.clamp(max=0)
        poly = int((counts[k] > 1).sum())
        ax.set_title(f"1 - S = {p[k]:.2f}\n{poly} of {n_hidden} neurons polysemantic", fontsize=9)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(range(n_hidden))
        ax.set_xlabel("neuron")
    axes[0, 0].set_ylabel("weight from each feature")
    axes[0, -1].legend(handles=[Patch(color=colours[i], label=f"feature {i}") for i in range(n_features)],
                       loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    return fig

