"""Superposition as a phase change: 2 features in 1 dimension. The sweep of the paper's phase
diagram, the closed-form losses of the three ideal solutions, and the classification of a trained
model (:func:`classify_phase`, the reference solution of the notebook's exercise 6)."""
from __future__ import annotations

import math

import torch

from ._inputs import as_tensor, check_probability, integer

PHASES = ("not represented", "dedicated dimension", "superposition")


def classify_phase(W, threshold=0.5):
    """What happened to the second ("extra") feature of a 2-feature model? One code per instance:
    0 = not represented, 1 = dedicated dimension (feature 0 dropped), 2 = superposition (both kept)."""
    represented = W.norm(dim=1) > threshold
    first, extra = represented[:, 0], represented[:, 1]
    return torch.where(extra, torch.where(first, 2, 1), 0)


def phase_grid(n_importance: int = 8, n_density: int = 8, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    """The 2 -> 1 sweep of the paper's phase diagram: feature 0 has importance 1, feature 1 (the
    "extra" feature) a relative importance from ``importance_range``; both share the density 1 - S.
    Returns (relative_importances, densities, importance [N, 2], feature_probability [N, 2]) with
    N = n_importance * n_density, importance-major (reshape a result to [n_importance, n_density])."""
    n_importance, n_density = integer(n_importance, "n_importance"), integer(n_density, "n_density")
    if not 0 < importance_range[0] < importance_range[1]:
        raise ValueError(f"importance_range must be (low, high) with 0 < low < high, got {importance_range}")
    if not 0 < density_range[0] < density_range[1] <= 1:
        raise ValueError(f"density_range must be (low, high) with 0 < low < high <= 1, got {density_range}")
    relative = torch.logspace(math.log10(importance_range[0]), math.log10(importance_range[1]), n_importance)
    density = torch.logspace(math.log10(density_range[0]), math.log10(density_range[1]), n_density)
    r, d = torch.meshgrid(relative, density, indexing="ij")
    importance = torch.stack([torch.ones(r.numel()), r.flatten()], -1)
    return relative, density, importance, torch.stack([d.flatten(), d.flatten()], -1)


def ideal_solution_losses(relative_importance, density) -> torch.Tensor:
    """Closed-form expected loss of the three ideal 2 -> 1 solutions, stacked on a last axis in the
    order of PHASES: W = [1, 0] (the extra feature is replaced by its mean p/2 through the bias),
    W = [0, 1] (feature 0 replaced by its mean), W = [1, -1] with b = 0 (antipodal: exact unless both
    features are active, then each output misses min(x_0, x_1), and E[min^2] = 1/6)."""
    I = as_tensor(relative_importance, "relative_importance")
    p = as_tensor(density, "density")
    check_probability(p, "density")
    variance = p / 3 - p ** 2 / 4  # Var(x) of one feature
    return torch.stack(torch.broadcast_tensors(I * variance, variance, p ** 2 * (1 + I) / 6), -1)


def theoretical_phase(relative_importance, density) -> torch.Tensor:
    """The ideal solution with the lowest loss (codes as in classify_phase). Superposition wins when
    p < 4 I / (2 + 5 I) for I <= 1, and when p < 4 / (5 + 2 I) for I >= 1."""
    return ideal_solution_losses(relative_importance, density).argmin(-1)
