"""Data with a known dictionary (Sharkey et al. 2022): many ground-truth directions in a smaller
space, a few active per sample. An SAE should recover the directions as decoder columns."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ToyDictionaryData:
    """``n_features`` random unit directions in ``d`` dimensions; each sample activates on average
    ``mean_active`` of them with magnitudes uniform in [0, 1]. With ``decay > 0`` feature ``i``
    fires with probability ∝ (i + 1) ** -decay (a few common features, a long tail of rare ones).
    ``offset`` > 0 adds a fixed random vector of that norm to every sample (like the large mean of
    a real residual stream)."""

    d: int = 32
    n_features: int = 64
    mean_active: float = 3.0
    decay: float = 0.0
    offset: float = 0.0
    seed: int = 0

    def __post_init__(self):
        import torch

        for name in ("d", "n_features", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} int, got {value!r}")
        if not 0 < self.mean_active <= self.n_features:
            raise ValueError(f"mean_active must be in (0, n_features={self.n_features}], got {self.mean_active!r}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset!r}")
        if self.decay < 0:
            raise ValueError(f"decay must be >= 0, got {self.decay!r}")
        g = torch.Generator().manual_seed(self.seed)
        dirs = torch.randn(self.n_features, self.d, generator=g)
        self.dictionary = dirs / dirs.norm(dim=1, keepdim=True)  # [n_features, d], unit rows
        freq = (torch.arange(self.n_features) + 1.0) ** -self.decay
        shift = torch.randn(self.d, generator=g)
        self.shift = shift / shift.norm() * self.offset
        self.probs = (freq * self.mean_active / freq.sum()).clamp(max=1.0)  # firing probability per feature

    def codes(self, n: int, generator):
        """Sparse ground-truth coefficients, shape [n, n_features]."""
        import torch

        active = torch.rand(n, self.n_features, generator=generator) < self.probs
        return active * torch.rand(n, self.n_features, generator=generator)

    def sample(self, n: int, generator):
        """``n`` samples x = codes @ dictionary, shape [n, d]."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        return self.codes(n, generator) @ self.dictionary + self.shift

    def batches(self, batch_size: int, seed: int = 0):
        """An endless seeded iterator of batches [batch_size, d] (what sae-lens's trainer consumes)."""
        import torch

        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        g = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, g)
