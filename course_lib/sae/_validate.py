"""Argument checks shared by the SAE modules: clear errors, numpy integers accepted."""
from __future__ import annotations

import numbers


def as_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as a Python int (numpy integers too), or a ValueError saying what was expected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be a {kind} int, got {value!r}")
    return int(value)
