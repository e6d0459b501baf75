"""Benchmark: training throughput (samples = tokens per second) of the from-scratch trainer and
of sae-lens's ``SAETrainer``, same data, same SAE size (ReLU + L1), same batch size, one run."""
from __future__ import annotations

import time

BENCH = dict(d_in=128, d_sae=1024, batch_size=1024, steps=100, warmup=10)


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


def benchmark(d_in: int = BENCH["d_in"], d_sae: int = BENCH["d_sae"], batch_size: int = BENCH["batch_size"],
              steps: int = BENCH["steps"], warmup: int = BENCH["warmup"], device: str | None = None) -> dict:
    """Tokens/s of both trainers, each timed over ``steps`` steps after ``warmup`` steps."""
    import torch

    from ..runtime import get_device
    from .library import train_saelens
    from .scratch import train_scratch_sae

    if min(d_in, d_sae, batch_size, steps - 1, warmup) < 1:
        raise ValueError(f"d_in, d_sae, batch_size, steps and warmup must be positive ints (steps >= 2), got "
                         f"{(d_in, d_sae, batch_size, steps, warmup)}")
    device = str(device or get_device())

    def now():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    marks = {}
    train_scratch_sae(_Pool(d_in, batch_size, device), d_sae, warmup + steps, batch_size=batch_size, progress=False,
                      device=device, on_step=lambda step, sae: marks.__setitem__(step, now()))
    scratch = steps * batch_size / (marks[warmup + steps] - marks[warmup])
    pool, stamps = _Pool(d_in, batch_size, device), {}

    def timed_batches():  # sae-lens's fit() pulls one batch per step: stamp the clock at each pull
        for i in range(1, warmup + steps + 2):
            stamps[i] = now()
            yield next(pool)
    train_saelens(timed_batches(), "standard", d_in, d_sae, warmup + steps, batch_size, progress=False, device=device)
    saelens = (steps - 1) * batch_size / (stamps[warmup + steps] - stamps[warmup + 1])
    return dict(device=device, d_in=d_in, d_sae=d_sae, batch_size=batch_size, steps=steps,
                scratch_tokens_per_s=round(scratch), saelens_tokens_per_s=round(saelens))
