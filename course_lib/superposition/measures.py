"""Measuring what a toy model learnt: which features are represented (norms), how much they share
their direction (interference, feature dimensionality), dimensions per feature and its sticky
fractions, the angles of a 2-D geometry, and polysemantic neurons.

:func:`interference`, :func:`feature_dimensionality` and :func:`features_per_neuron` are the
reference solutions of the notebook's exercises 4, 5 and 7."""
from __future__ import annotations

import torch

from ._inputs import check_W, integer

STICKY_FRACTIONS = {1.0: "1", 3 / 4: "3/4", 2 / 3: "2/3", 1 / 2: "1/2", 2 / 5: "2/5", 3 / 8: "3/8"}
EPS = 1e-8


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """||W_i|| of every feature, shape [n_instances, n_features]: ~1 if represented, ~0 if not."""
    return check_W(W).norm(dim=1)


def interference(W):
    """How much the other features project onto feature i's direction: sum_{j != i} (W^_i . W_j)^2,
    shape [n_instances, n_features]. 0 for a feature with a dimension of its own (and for W_i = 0)."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    overlaps = torch.einsum("khi,khj->kij", W_hat, W) ** 2
    return overlaps.sum(-1) - overlaps.diagonal(dim1=1, dim2=2)


def feature_dimensionality(W):
    """D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2, shape [n_instances, n_features]; 0 for an unlearnt feature."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    shared = (torch.einsum("khi,khj->kij", W_hat, W) ** 2).sum(-1)
    return W.norm(dim=1) ** 2 / shared.clamp_min(1e-8)


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """D* = m / ||W||_F^2, hidden dimensions per learnt feature, shape [n_instances]."""
    W = check_W(W)
    return W.shape[1] / (W ** 2).sum((1, 2)).clamp_min(EPS)


def nearest_sticky_fraction(value: float) -> tuple[float, str]:
    """The sticky fraction closest to ``value``, as (fraction, label)."""
    return min(STICKY_FRACTIONS.items(), key=lambda item: abs(item[0] - value))


def sticky_plateaus(D_star, tolerance: float = 0.02, min_length: int = 2) -> list[tuple[str, int, int]]:
    """Where D* *sticks*: runs of at least ``min_length`` consecutive sweep points that all lie within
    ``tolerance`` of the same sticky fraction, as (label, first index, last index)."""
    min_length = integer(min_length, "min_length")
    labels = []
    for d in torch.as_tensor(D_star).tolist():
        fraction, label = nearest_sticky_fraction(d)
        labels.append(label if abs(d - fraction) <= tolerance else None)
    plateaus, start = [], 0
    for k in range(1, len(labels) + 1):
        if k == len(labels) or labels[k] != labels[start]:
            if labels[start] is not None and k - start >= min_length:
                plateaus.append((labels[start], start, k - 1))
            start = k
    return plateaus


def neighbour_angles(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """For one instance with a 2-D hidden space, ``W`` [2, n_features]: the angles in degrees between
    neighbouring represented features (||W_i|| > threshold), going once round the circle."""
    if not isinstance(W, torch.Tensor) or W.shape[0] != 2 or W.dim() != 2:
        got = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(f"W must be one instance with a 2-D hidden space, shape [2, n_features], got {got}")
    W = W.detach()
    keep = W.norm(dim=0) > threshold
    angles = torch.sort(torch.rad2deg(torch.atan2(W[1, keep], W[0, keep]))).values
    if angles.numel() < 2:
        return torch.empty(0)
    return torch.diff(torch.cat([angles, angles[:1] + 360]))


def features_per_neuron(W, threshold=0.3):
    """For ReLU-hidden models: how many features excite each neuron (weight > threshold),
    shape [n_instances, n_hidden]. 1 = monosemantic, 2+ = polysemantic."""
    return (W > threshold).sum(-1)
