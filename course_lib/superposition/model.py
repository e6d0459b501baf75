"""The toy model of superposition (Elhage et al., 2022), its data and its loss.

The model squeezes ``n_features`` sparse features into ``n_hidden`` dimensions and reads them back
with the same (tied) weights::

    h  = W x                 (or h = ReLU(W x): the "ReLU hidden layer" variant)
    x' = ReLU(W^T h + b)

Many models ("instances", e.g. one per sparsity) are trained at once: ``W`` has shape
``[n_instances, n_hidden, n_features]`` and a batch has shape ``[batch, n_instances, n_features]``.
Feature i's direction is the column ``W[k, :, i]`` of instance k, written W_i below.

:func:`generate_batch`, :func:`toy_forward` and :func:`importance_weighted_loss` are the reference
solutions of the notebook's exercises 1-3 (the notebook's solution code is the same code).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._inputs import as_tensor, check_probability, integer


def sparsity_sweep(n_instances: int, p_min: float = 0.05) -> torch.Tensor:
    """Feature probabilities p = 1 - S from 1 (dense) down to ``p_min``, evenly spaced on a log scale
    (the paper's ``20 ** -linspace(0, 1, n)`` for p_min = 0.05)."""
    n_instances = integer(n_instances, "n_instances")
    if not 0 < p_min <= 1:
        raise ValueError(f"p_min must lie in (0, 1], got {p_min!r}")
    return p_min ** torch.linspace(0, 1, n_instances)


def generate_batch(batch_size, feature_probability, generator=None):
    """Sparse features of shape ``[batch_size, *feature_probability.shape]``: each one independently
    uniform in [0, 1] with probability p, else 0."""
    shape = (batch_size, *feature_probability.shape)
    values = torch.rand(shape, generator=generator)
    active = torch.rand(shape, generator=generator) < feature_probability
    return torch.where(active, values, 0.0)


def toy_forward(W, b_final, x, relu_hidden=False):
    """x' = ReLU(W^T h + b) with h = W x (or ReLU(W x)), for every instance at once.

    W [n_instances, n_hidden, n_features], b_final [n_instances, n_features],
    x [batch, n_instances, n_features] -> x' [batch, n_instances, n_features]."""
    h = torch.einsum("ihf,bif->bih", W, x)
    if relu_hidden:
        h = torch.relu(h)
    return torch.relu(torch.einsum("ihf,bih->bif", W, h) + b_final)


def importance_weighted_loss(x, x_hat, importance):
    """One loss per instance, shape [n_instances]: sum_i I_i (x_i - x'_i)^2, averaged over the batch."""
    return (importance * (x - x_hat) ** 2).sum(-1).mean(0)


class ToyModel(nn.Module):
    """``n_instances`` toy models side by side, one per row of ``feature_probability``.

    feature_probability: p = 1 - S, shape [n_instances] or [n_instances, n_features].
    importance: I, a number, shape [n_features] or [n_instances, n_features].
    """

    def __init__(self, n_features: int, n_hidden: int, feature_probability, importance=1.0,
                 relu_hidden: bool = False, seed: int = 0):
        super().__init__()
        n_features, n_hidden = integer(n_features, "n_features"), integer(n_hidden, "n_hidden")
        p = as_tensor(feature_probability, "feature_probability")
        if p.dim() not in (1, 2) or (p.dim() == 2 and p.shape[1] != n_features):
            raise ValueError(f"feature_probability must have shape [n_instances] or [n_instances, "
                             f"n_features={n_features}], got {tuple(p.shape)}")
        if p.dim() == 1:
            p = p[:, None].expand(-1, n_features)
        check_probability(p)
        n_instances = p.shape[0]
        imp = as_tensor(importance, "importance")
        if imp.shape not in ((), (n_features,), (n_instances, n_features)):
            raise ValueError(f"importance must be a number or have shape [n_features={n_features}] or "
                             f"[n_instances={n_instances}, n_features={n_features}], got {tuple(imp.shape)}")
        if bool((imp < 0).any()):
            raise ValueError("importance must be non-negative")
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances
        self.relu_hidden = relu_hidden
        self.register_buffer("feature_probability", p.clone())
        self.register_buffer("importance", imp.expand(n_instances, n_features).clone())
        g = torch.Generator().manual_seed(integer(seed, "seed", minimum=0))
        std = math.sqrt(2 / (n_hidden + n_features))  # Xavier-normal, per instance
        self.W = nn.Parameter(torch.randn(n_instances, n_hidden, n_features, generator=g) * std)
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return toy_forward(self.W, self.b_final, x, self.relu_hidden)
