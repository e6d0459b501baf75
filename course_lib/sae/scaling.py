"""A compute scaling law for SAEs: sweep dictionary size and training steps, measure the loss
against training compute, keep the compute-efficient frontier, fit L = a · C^b."""
from __future__ import annotations

import dataclasses

import numpy as np

from ._validate import as_int
from .toy_data import ToyDictionaryData


def training_flops(d_in: int, d_sae: int, tokens: int) -> float:
    """≈ 6 × parameters × tokens (forward 2, backward 4 FLOPs per weight per token); an SAE has
    2 · d_in · d_sae weights (encoder + decoder)."""
    return 6.0 * 2 * d_in * d_sae * tokens


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """One from-scratch SAE per size in ``sizes``, trained for max(``checkpoints``) steps and
    evaluated (held-out loss on ``n_eval`` samples) at every checkpoint."""

    sizes: tuple = (8, 16, 32, 64, 128)
    checkpoints: tuple = (25, 50, 100, 200, 400, 800)
    batch_size: int = 128
    l1_coeff: float = 0.1
    lr: float = 3e-3
    seed: int = 0
    n_eval: int = 4096

    def __post_init__(self):
        if not self.sizes or not self.checkpoints:
            raise ValueError(f"sizes and checkpoints must be non-empty, got {self.sizes!r}, {self.checkpoints!r}")
        object.__setattr__(self, "sizes", tuple(as_int(s, "every size") for s in self.sizes))
        object.__setattr__(self, "checkpoints", tuple(as_int(s, "every checkpoint (checkpoints >= 1)")
                                                      for s in self.checkpoints))
        for name, minimum in (("batch_size", 1), ("seed", 0), ("n_eval", 2)):
            object.__setattr__(self, name, as_int(getattr(self, name), name, minimum))


# Harder toy data for the sweep: 512 true features with Zipf-like frequencies in 32 dimensions,
# so that bigger dictionaries and longer training keep paying off.
SCALING_DATA = ToyDictionaryData(d=32, n_features=512, mean_active=5, decay=1.0, seed=0)
SWEEP = SweepConfig()


def scaling_sweep(data, config: SweepConfig = SWEEP, progress: bool = False) -> list[dict]:
    """Train one from-scratch SAE per size for max(checkpoints) steps; at every checkpoint record
    the held-out training loss (reconstruction + λ L1) and the compute spent so far."""
    import torch

    from .model import sae_loss
    from .training import ScratchConfig, train_scratch_sae

    c = config
    x_eval = data.sample(c.n_eval, torch.Generator().manual_seed(c.seed + 1000))
    points, marks = [], set(c.checkpoints)
    for d_sae in c.sizes:
        def record(step, sae, d_sae=d_sae):
            if step in marks:
                with torch.no_grad():
                    x_hat, f = sae(x_eval)
                    loss = sae_loss(x_eval, x_hat, f, c.l1_coeff).item()
                points.append(dict(d_sae=d_sae, steps=step, tokens=step * c.batch_size, loss=loss,
                                   flops=training_flops(x_eval.shape[1], d_sae, step * c.batch_size)))
        run = ScratchConfig(d_sae=d_sae, steps=max(c.checkpoints), l1_coeff=c.l1_coeff, lr=c.lr,
                            batch_size=c.batch_size, seed=c.seed)
        train_scratch_sae(data, run, progress=progress, on_step=record)
    return points


def compute_frontier(points: list[dict]) -> list[dict]:
    """The compute-efficient points: lower loss than every point that used less compute."""
    if not points:
        raise ValueError("points is empty: run scaling_sweep first")
    frontier, best = [], float("inf")
    for p in sorted(points, key=lambda p: (p["flops"], p["loss"])):
        if p["loss"] < best:
            frontier.append(p)
            best = p["loss"]
    return frontier


def fit_power_law(flops, loss) -> dict:
    """Least-squares fit of log L = log a + b log C. Returns a, b (the exponent) and R² (in log space)."""
    x, y = np.log(np.asarray(flops, float)), np.log(np.asarray(loss, float))
    if len(x) < 2:
        raise ValueError(f"need at least 2 points to fit a power law, got {len(x)}")
    b, log_a = np.polyfit(x, y, 1)
    residual = y - (log_a + b * x)
    r2 = 1 - (residual ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return dict(a=float(np.exp(log_a)), exponent=float(b), r2=float(r2))


def sae_footprint(d_model: int, d_sae: int, n_layers: int = 1, tokens: float = 0.0, bytes_per_param: int = 4,
                  act_bytes: int = 2) -> dict:
    """Storage and compute of SAEs at a given scale: parameters (W_enc + W_dec + biases) and
    checkpoint size per layer and for ``n_layers``; training FLOPs and the size of the cached
    activations (``act_bytes`` per value) for ``tokens`` training tokens per layer."""
    if min(d_model, d_sae, n_layers, bytes_per_param, act_bytes) < 1 or tokens < 0:
        raise ValueError("d_model, d_sae, n_layers, bytes_per_param, act_bytes must be positive, tokens >= 0")
    params = 2 * d_model * d_sae + d_sae + d_model
    return dict(params_per_layer=params, gb_per_layer=params * bytes_per_param / 1e9,
                gb_all_layers=n_layers * params * bytes_per_param / 1e9,
                train_flops_per_layer=training_flops(d_model, d_sae, tokens),
                activations_tb_per_layer=tokens * d_model * act_bytes / 1e12)
