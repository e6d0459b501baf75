"""Notebook 03's figures."""
from __future__ import annotations

import numpy as np


def plot_score_distributions(all_scores: dict, metrics=(("test_f1", "held-out F1 of the explanation"),
                                                       ("detection", "detection balanced accuracy"))):
    """Cumulative distributions of per-unit scores, one line per kind of unit."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.2))
    for ax, (attr, label) in zip(np.atleast_1d(axes), metrics):
        for name, s in all_scores.items():
            v = np.sort(getattr(s, attr)[s.alive])
            ax.plot(v, 1 - np.arange(len(v)) / len(v), label=f"{name} (median {np.median(v):.2f})",
                    lw=2.5 if name == "SAE latents" else 1.2)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of units ≥ x")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_probing(results: dict, ks):
    """Sparse-probing accuracy against k, per task, with the full residual probe as a dashed line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for task, row in results.items():
        line, = ax.plot(ks, [row[f"k={k}"] for k in ks], "o-", label=task)
        ax.axhline(row["residual"], color=line.get_color(), ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k latents in the probe (dashed: probe on the whole residual stream)")
    ax.set_ylabel("held-out accuracy (balanced)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_absorption(result: dict):
    """How often the parent latent fires on each child's tokens, and how often they are absorbed."""
    import matplotlib.pyplot as plt

    items = sorted(result["per_child"].items(), key=lambda kv: kv[1]["parent latent fires"])
    names = [k for k, _ in items]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [v["parent latent fires"] for _, v in items], 0.4, label="parent latent fires")
    ax.bar(x + 0.2, [v["absorbed"] for _, v in items], 0.4, label="absorbed (a child latent fires instead)")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("fraction of the tokens")
    ax.set_title(f"{result['parent']}: parent latent #{result['parent_latent']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_splitting(widths, best_f1, family_sizes, concept: str):
    """Best held-out F1 for ``concept`` and the number of latents that track it, against width."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(widths, best_f1, "o-", label="best latent's held-out F1")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("SAE width (latents)")
    ax.set_ylabel("F1")
    ax2 = ax.twinx()
    ax2.plot(widths, family_sizes, "s--", color="gray", label="latents with precision ≥ 0.9")
    ax2.set_ylabel("latents in the family", color="gray")
    ax.set_title(concept, fontsize=9)
    fig.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
