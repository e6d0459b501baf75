"""The model (a TransformerLens ``HookedTransformer``), the answer-only loss and the training
loop with logged accuracy per split."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .grokfast import grokfast_ema
from .measures import eval_sets, evaluate
from .world import World, plain_numbers

OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    n_layers: int = 4
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    batch_size: int = 512
    steps: int = 5000
    warmup: int = 100
    decay_from: float = 1.0   # fraction of the steps after which the lr decays to 0 (cosine); 1 = never
    n_log: int = 30           # evaluations, log-spaced in steps
    n_train_eval: int = 1000  # training examples used to measure training accuracy
    seed: int = 0
    grokfast_lamb: float = 0.0    # Grokfast-EMA gain (0 = off; Lee et al. use 2 to 5)
    grokfast_alpha: float = 0.98  # Grokfast-EMA momentum
    optimizer: str = "adamw"      # "adamw" (decoupled weight decay), "adam" (L2 in the gradient), "sgd" (momentum 0.9)

    def __post_init__(self):
        plain_numbers(self)
        for name in ("n_layers", "d_model", "n_heads", "d_mlp", "batch_size", "steps", "n_log", "n_train_eval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.warmup < 1:
            raise ValueError(f"warmup must be >= 1 step, got {self.warmup}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not 0 <= self.decay_from <= 1:
            raise ValueError(f"decay_from must be in [0, 1], got {self.decay_from}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.grokfast_lamb < 0 or not 0 <= self.grokfast_alpha < 1:
            raise ValueError(f"need grokfast_lamb >= 0 and 0 <= grokfast_alpha < 1, got {self.grokfast_lamb}, "
                             f"{self.grokfast_alpha}")


def make_model(world: World, tcfg: TrainConfig, device="cpu"):
    """A fresh ``HookedTransformer`` for the world's vocabulary (3 positions, LN, GELU), seeded."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=tcfg.n_layers, d_model=tcfg.d_model, n_heads=tcfg.n_heads,
                                  d_head=tcfg.d_model // tcfg.n_heads, d_mlp=tcfg.d_mlp, n_ctx=3,
                                  d_vocab=world.cfg.d_vocab, act_fn="gelu", normalization_type="LN",
                                  seed=tcfg.seed, device=str(device))
    return HookedTransformer(cfg)


def answer_only_loss(logits, answers, answer_pos):
    """Cross-entropy on the answer token only. ``logits`` [batch, pos, vocab]; ``answers`` and
    ``answer_pos`` [batch] (the position whose output must be the answer)."""
    import torch

    rows = torch.arange(logits.shape[0], device=logits.device)
    return torch.nn.functional.cross_entropy(logits[rows, answer_pos], answers)


def make_optimizer(model, tcfg: TrainConfig):
    """The optimizer named by ``tcfg.optimizer`` (betas (0.9, 0.98) for Adam/AdamW)."""
    import torch

    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tcfg.lr, momentum=0.9, weight_decay=tcfg.weight_decay)
    cls = torch.optim.AdamW if tcfg.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, betas=(0.9, 0.98))


def lr_factor(step: int, tcfg: TrainConfig) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based): linear warm-up, constant,
    then a cosine decay to 0 over the last ``1 - decay_from`` of the steps."""
    factor = min(1.0, (step + 1) / tcfg.warmup)
    start = tcfg.decay_from * tcfg.steps
    if tcfg.decay_from < 1 and step >= start:
        factor *= 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / (tcfg.steps - start))))
    return factor


def log_steps(steps: int, n: int) -> list[int]:
    """About ``n`` distinct evaluation steps, log-spaced from 1 to ``steps``."""
    return sorted({int(round(x)) for x in np.logspace(0, math.log10(steps), n)} | {steps})


def train(world: World, tcfg: TrainConfig, progress: bool = False, device="cpu", model=None,
          on_log=None, loss_fn=answer_only_loss, grad_filter=grokfast_ema) -> dict:
    """Train with ``tcfg.optimizer`` (AdamW) on ``loss_fn`` (the answer-only loss); returns {"model", "log"} where
    ``log`` holds the evaluation steps and the accuracy of every split at those steps.
    ``on_log(entry)`` is called after each evaluation with the newest values; returning True
    stops the training there. With ``tcfg.grokfast_lamb > 0``, ``grad_filter`` (Grokfast-EMA)
    amplifies the slow part of the gradients before each step. Gradients are switched on here,
    whatever the caller's grad mode."""
    import torch
    from tqdm.auto import tqdm

    if not isinstance(world, World) or not isinstance(tcfg, TrainConfig):
        raise TypeError(f"train(world, tcfg) expects a World and a TrainConfig, got "
                        f"{type(world).__name__} and {type(tcfg).__name__}")
    torch.manual_seed(tcfg.seed)
    model = model if model is not None else make_model(world, tcfg, device)
    opt = make_optimizer(model, tcfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tcfg))
    sets = eval_sets(world, tcfg.n_train_eval, tcfg.seed)
    toks, ans, pos = world.train_tokens, world.train_answers, world.train_pos
    g = torch.Generator().manual_seed(tcfg.seed)
    checkpoints = set(log_steps(tcfg.steps, tcfg.n_log))
    log = {"step": [], **{name: [] for name in sets}, "loss": []}
    ema = None
    model.train()
    with torch.enable_grad():
        for step in tqdm(range(1, tcfg.steps + 1), disable=not progress, desc="training", mininterval=2):
            idx = torch.randint(0, len(toks), (tcfg.batch_size,), generator=g)
            loss = loss_fn(model(toks[idx]), ans[idx], pos[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tcfg.grokfast_lamb > 0:
                ema = grad_filter(model, ema, tcfg.grokfast_alpha, tcfg.grokfast_lamb)
            opt.step()
            sched.step()
            if step in checkpoints:
                log["step"].append(step)
                log["loss"].append(round(float(loss.detach()), 4))
                for name, acc in evaluate(model, sets).items():
                    log[name].append(acc)
                if on_log is not None and on_log({k: v[-1] for k, v in log.items()}):
                    break
    model.eval()
    return {"model": model, "log": log}
