"""Benchmark: training throughput (samples = tokens per second) of the from-scratch trainer and
of sae-lens's ``SAETrainer``, same data, same SAE size (ReLU + L1), same batch size, one run."""
from __future__ import annotations

import dataclasses
import time

from ._validate import as_int


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Both trainers are timed over ``steps`` steps after ``warmup`` untimed ones."""

    d_in: int = 128
    d_sae: int = 1024
    batch_size: int = 1024
    steps: int = 100
    warmup: int = 10

    def __post_init__(self):
        for name, minimum in (("d_in", 1), ("d_sae", 1), ("batch_size", 1), ("steps", 2), ("warmup", 1)):
            object.__setattr__(self, name, as_int(getattr(self, name), name, minimum))


BENCH = BenchConfig()


class _Pool:
    """Pre-generated toy batches served in a cycle (so data generation is not timed)."""

    def __init__(self, d_in: int, batch_size: int, device: str, n: int = 8):
        import torch

        from .toy_data import ToyDictionaryData

        data = ToyDictionaryData(d=d_in, n_features=4 * d_in, mean_active=8, seed=0)
        self.chunks = data.sample(batch_size * n, torch.Generator().manual_seed(0)).to(device).chunk(n)
        self.i = 0

    def sample(self, n: int, generator=None):
        self.i = (self.i + 1) % len(self.chunks)
        return self.chunks[self.i][:n]

    def __iter__(self):
        return self

    def __next__(self):
        return self.sample(len(self.chunks[0]))


def benchmark(config: BenchConfig = BENCH, device: str | None = None) -> dict:
    """Tokens/s of both trainers, each timed over ``config.steps`` steps after ``config.warmup`` steps."""
    import torch

    from ..runtime import get_device
    from .library import toy_sae_config, train_saelens
    from .training import ScratchConfig, train_scratch_sae

    c = config
    device = str(device or get_device())

    def now():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    marks = {}
    train_scratch_sae(_Pool(c.d_in, c.batch_size, device),
                      ScratchConfig(d_sae=c.d_sae, steps=c.warmup + c.steps, batch_size=c.batch_size),
                      progress=False, device=device, on_step=lambda step, sae: marks.__setitem__(step, now()))
    scratch = c.steps * c.batch_size / (marks[c.warmup + c.steps] - marks[c.warmup])
    pool, stamps = _Pool(c.d_in, c.batch_size, device), {}

    def timed_batches():  # sae-lens's fit() pulls one batch per step: stamp the clock at each pull
        for i in range(1, c.warmup + c.steps + 2):
            stamps[i] = now()
            yield next(pool)
    train_saelens(timed_batches(), toy_sae_config("standard", c.d_in, c.d_sae, device=device), c.warmup + c.steps,
                  c.batch_size, progress=False)
    saelens = (c.steps - 1) * c.batch_size / (stamps[c.warmup + c.steps] - stamps[c.warmup + 1])
    return dict(device=device, **dataclasses.asdict(c),
                scratch_tokens_per_s=round(scratch), saelens_tokens_per_s=round(saelens))
