"""Figures of notebook 04: the joint distribution of input and output scores, steering success by
output-score quartile, and success–fluency curves of the methods over strength."""
from __future__ import annotations

import numpy as np


def plot_scores(sweep: dict, success: np.ndarray, title: str):
    """Input vs output score of every scored latent (colour: steering success), and success by
    output-score quartile."""
    import matplotlib.pyplot as plt

    out, inp = np.asarray(sweep["output_score"]), np.asarray(sweep["input_score"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    points = left.scatter(inp, out, c=success, s=8, cmap="viridis")
    fig.colorbar(points, ax=left, label="steering success")
    left.set(xlabel="input score", ylabel="output score", title="every scored latent")
    edges = np.quantile(out, [0, 0.25, 0.5, 0.75, 1])
    quartile = np.clip(np.searchsorted(edges, out, side="right") - 1, 0, 3)
    right.bar(range(1, 5), [success[quartile == q].mean() for q in range(4)])
    right.axhline(success.mean(), color="k", ls="--", label="all latents")
    right.set(xlabel="output-score quartile", ylabel="mean success", title=title, xticks=range(1, 5))
    right.legend()
    fig.tight_layout()
    return fig


def plot_methods(rows: list, methods, success: str = "hit"):
    """Success against fluency (unsteered LM log-prob per token) over strength, per method (mean
    over concepts); prompting and unsteered text are single points."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        strengths = sorted({r["strength"] for r in mine})
        xs = [np.mean([r["lm_logprob"] for r in mine if r["strength"] == s]) for s in strengths]
        ys = [np.mean([r[success] for r in mine if r["strength"] == s]) for s in strengths]
        ax.plot(xs, ys, "o-" if len(strengths) > 1 else "s", label=method)
    ax.set(xlabel="fluency: unsteered LM log-prob per generated token", ylabel=f"concept {success} (mean over concepts)",
           title="success against fluency, strength increasing to the left")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
