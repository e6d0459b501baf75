"""Input checks shared by the package: a clear ValueError saying what was expected."""
from __future__ import annotations

import operator

import torch


def as_tensor(value, name: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a tensor of numbers, got {type(value).__name__}") from err


def check_probability(p: torch.Tensor, name: str = "feature_probability") -> None:
    if p.numel() == 0:
        raise ValueError(f"{name} is empty")
    if not bool(((p > 0) & (p <= 1)).all()):
        raise ValueError(f"{name} must lie in (0, 1]: it is the probability p = 1 - S that a feature is "
                         f"active; got values from {p.min().item():.3g} to {p.max().item():.3g}")


def check_W(W) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or W.dim() != 3:
        got = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(f"W must be a tensor of shape [n_instances, n_hidden, n_features], got {got}")
    return W.detach()


def integer(value, name: str, minimum: int = 1) -> int:
    """``value`` as a Python int (NumPy and torch integers welcome), at least ``minimum``."""
    try:
        if isinstance(value, bool) or getattr(value, "is_floating_point", lambda: False)():
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
