"""Device and seeding: a GPU is used when present, never required."""
from __future__ import annotations

import random


def resolve_device(device=None):
    """The ``torch.device`` to run on: ``None`` picks the best one here (a CUDA GPU when there is
    one, else the CPU); ``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'mps'`` or a ``torch.device`` is
    checked to exist on this machine, with a message saying what to do when it does not. Every
    function of the course that takes a ``device=`` argument validates it with this."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'mps', a torch.device or None, got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"this torch ({torch.__version__}) is a CPU-only build" if torch.version.cuda is None else \
                f"torch finds no CUDA GPU here (torch {torch.__version__}, CUDA {torch.version.cuda})"
            raise ValueError(f"device={device!r}, but {build}: use device='cpu', or leave the device out "
                             "(None) to use a GPU when there is one and the CPU otherwise")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s): "
                             f"use 'cuda:0' … 'cuda:{torch.cuda.device_count() - 1}'")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but Apple's MPS backend is not available here: use device='cpu' "
                         "or leave the device out (None)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r}: the course runs on 'cpu', 'cuda' or 'mps'")
    return dev


def get_device(prefer: str | None = None):
    """``torch.device('cuda')`` when a GPU is available, else the CPU. ``prefer`` forces one."""
    if prefer is not None and prefer not in ("cpu", "cuda"):
        raise ValueError(f"prefer must be 'cpu', 'cuda' or None, got {prefer!r}")
    return resolve_device(prefer)


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that runs (and stored notebook outputs) repeat."""
    import numbers

    import numpy as np
    import torch

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)  # numpy integers are fine
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
