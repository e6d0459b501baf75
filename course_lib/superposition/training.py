"""Training toy models: many instances at once, with restarts (keep the best of several
initialisations per instance). Settings are a :class:`TrainConfig`; the three functions that
training calls (your exercise solutions or the references) are a :class:`ToyFunctions`."""
from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable

import torch

from ._inputs import as_tensor, integer
from .model import ToyModel, generate_batch, importance_weighted_loss, toy_forward


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """AdamW with the learning rate decaying to 0 on a cosine, one fresh batch per step.

    The paper uses lr 1e-3 for 10,000 steps; a 50x larger rate with a decay reaches the same
    geometries in 600-1,000 steps, which keeps the notebook within a minute on a laptop CPU.
    ``restarts`` (for :func:`train_best_of`): initialisations trained per instance, the best kept."""

    steps: int = 1000
    lr: float = 5e-2
    batch_size: int = 1024
    restarts: int = 1
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "restarts"):
            object.__setattr__(self, name, integer(getattr(self, name), name))
        object.__setattr__(self, "seed", integer(self.seed, "seed", minimum=0))
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")


@dataclasses.dataclass(frozen=True)
class ToyFunctions:
    """The pieces training calls: the batch generator, the forward pass and the loss."""

    batch: Callable = generate_batch
    forward: Callable = toy_forward
    loss: Callable = importance_weighted_loss


@contextlib.contextmanager
def _one_thread():
    """Toy models train fastest on one CPU thread, and the results then do not depend on how many
    cores the machine has (a multi-threaded sum may add numbers in another order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train(model: ToyModel, config: TrainConfig = TrainConfig(), functions: ToyFunctions = ToyFunctions()) -> list[float]:
    """Train all instances of ``model`` at once; returns the summed loss every 100 steps."""
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    history = []
    with _one_thread(), torch.enable_grad():
        for step in range(config.steps):
            x = functions.batch(config.batch_size, model.feature_probability, generator=g)
            x_hat = functions.forward(model.W, model.b_final, x, model.relu_hidden)
            loss = functions.loss(x, x_hat, model.importance).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            if step % 100 == 0 or step == config.steps - 1:
                history.append(loss.item())
    return history


def evaluate(model: ToyModel, batch_size: int = 8192, seed: int = 12345) -> torch.Tensor:
    """Loss of every instance on a fresh seeded batch, shape [n_instances]."""
    g = torch.Generator().manual_seed(integer(seed, "seed", minimum=0))
    with _one_thread(), torch.no_grad():
        x = generate_batch(integer(batch_size, "batch_size"), model.feature_probability, g)
        return importance_weighted_loss(x, model(x), model.importance)


def train_best_of(n_features: int, n_hidden: int, feature_probability, importance=1.0, relu_hidden: bool = False,
                  config: TrainConfig = TrainConfig(), functions: ToyFunctions = ToyFunctions()) -> ToyModel:
    """Train ``config.restarts`` copies of every instance from different initialisations (all in one
    batched model) and keep, per instance, the copy with the lowest loss: gradient descent sometimes
    settles in a worse geometry. Returns a ToyModel with one instance per row of ``feature_probability``."""
    p = as_tensor(feature_probability, "feature_probability")
    imp = as_tensor(importance, "importance")
    n = p.shape[0] if p.dim() else 0
    if n == 0:
        raise ValueError("feature_probability must have shape [n_instances] or [n_instances, n_features]")
    restarts = config.restarts

    def tile(t):  # restart r of instance k becomes instance r * n + k
        return t.repeat(restarts, *[1] * (t.dim() - 1))

    per_instance_importance = imp.dim() == 2
    model = ToyModel(n_features, n_hidden, tile(p), tile(imp) if per_instance_importance else imp, relu_hidden,
                     config.seed)
    train(model, config, functions)
    best = evaluate(model).view(restarts, n).argmin(0) * n + torch.arange(n)
    kept = ToyModel(n_features, n_hidden, p, imp, relu_hidden, config.seed)
    with torch.no_grad():
        kept.W.copy_(model.W[best])
        kept.b_final.copy_(model.b_final[best])
    return kept
