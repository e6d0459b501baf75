"""Device and seeding: a GPU is used when present, never required."""
from __future__ import annotations

import random


def get_device(prefer: str | None = None):
    """``torch.device('cuda')`` when a GPU is available, else the CPU. ``prefer`` forces one."""
    import torch

    if prefer is not None:
        if prefer not in ("cpu", "cuda"):
            raise ValueError(f"prefer must be 'cpu', 'cuda' or None, got {prefer!r}")
        if prefer == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' but no CUDA GPU is available; use prefer=None or 'cpu'")
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that runs (and stored notebook outputs) repeat."""
    import numpy as np
    import torch

    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
