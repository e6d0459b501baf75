"""Data with a known dictionary (Sharkey et al. 2022): many ground-truth directions in a smaller
space, a few active per sample. An SAE should recover the directions as decoder rows."""
from __future__ import annotations

import dataclasses
import functools

from ._validate import as_int


@dataclasses.dataclass(frozen=True)
class ToyDictionaryData:
    """``n_features`` random unit directions in ``d`` dimensions; each sample activates on average
    ``mean_active`` of them with magnitudes uniform in [0, 1]. With ``decay > 0`` feature ``i``
    fires with probability ∝ (i + 1) ** -decay (a few common features, a long tail of rare ones).
    ``offset`` > 0 adds a fixed random vector of that norm to every sample (like the large mean of
    a real residual stream). The dataclass is its own configuration: the tensors are built on first use."""

    d: int = 32
    n_features: int = 64
    mean_active: float = 3.0
    decay: float = 0.0
    offset: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name, minimum in (("d", 1), ("n_features", 1), ("seed", 0)):
            object.__setattr__(self, name, as_int(getattr(self, name), name, minimum))
        if not 0 < self.mean_active <= self.n_features:
            raise ValueError(f"mean_active must be in (0, n_features={self.n_features}], got {self.mean_active!r}")
        if not self.offset >= 0:
            raise ValueError(f"offset must be >= 0, got {self.offset!r}")
        if not self.decay >= 0:
            raise ValueError(f"decay must be >= 0, got {self.decay!r}")

    @functools.cached_property
    def _tensors(self):
        import torch

        g = torch.Generator().manual_seed(self.seed)
        dirs = torch.randn(self.n_features, self.d, generator=g)
        freq = (torch.arange(self.n_features) + 1.0) ** -self.decay
        shift = torch.randn(self.d, generator=g)
        return (dirs / dirs.norm(dim=1, keepdim=True), shift / shift.norm() * self.offset,
                (freq * self.mean_active / freq.sum()).clamp(max=1.0))

    @property
    def dictionary(self):
        """The true dictionary: [n_features, d], unit rows."""
        return self._tensors[0]

    @property
    def shift(self):
        """The fixed offset added to every sample: [d]."""
        return self._tensors[1]

    @property
    def probs(self):
        """Firing probability of each feature: [n_features]."""
        return self._tensors[2]

    def codes(self, n: int, generator):
        """Sparse ground-truth coefficients, shape [n, n_features]."""
        import torch

        n = as_int(n, "n")
        active = torch.rand(n, self.n_features, generator=generator) < self.probs
        return active * torch.rand(n, self.n_features, generator=generator)

    def sample(self, n: int, generator):
        """``n`` samples x = codes @ dictionary (+ offset), shape [n, d]."""
        return self.codes(as_int(n, "n"), generator) @ self.dictionary + self.shift

    def batches(self, batch_size: int, seed: int = 0):
        """An endless seeded iterator of batches [batch_size, d] (what sae-lens's trainer consumes)."""
        import torch

        batch_size, seed = as_int(batch_size, "batch_size"), as_int(seed, "seed", 0)
        g = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, g)


# The known-dictionary data of part 1 (64 features in 32 dimensions, ~3 active per sample).
TOY_DATA = ToyDictionaryData(d=32, n_features=64, mean_active=3.0, seed=0)
