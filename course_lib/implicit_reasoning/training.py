"""Model, answer-only loss, training loop with logged accuracy per split."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .world import World


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

    def __post_init__(self):
        for name in ("n_layers", "d_model", "n_heads", "d_mlp", "batch_size", "steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not 0 <= self.decay_from <= 1:
            raise ValueError(f"decay_from must be in [0, 1], got {self.decay_from}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")


def make_model(world: World, tcfg: TrainConfig, device="cpu"):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=tcfg.n_layers, d_model=tcfg.d_model, n_heads=tcfg.n_heads,
                                  d_head=tcfg.d_model // tcfg.n_heads, d_mlp=tcfg.d_mlp, n_ctx=3,
                                  d_vocab=world.cfg.d_vocab, act_fn="gelu", normalization_type="LN",
                                  seed=tcfg.seed, device=str(device))
    return HookedTransformer(cfg)


def answer_only_loss(logits, answers, answer_pos):
    """Cross-entropy on the answer token only. ``logits`` [batch, pos, vocab]; ``answers`` and
    ``answer_pos`` [batch] (the position whose output must be the answer)."""
    import torch.nn.functional as F
    import torch

    rows = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits[rows, answer_pos], answers)


def predict(model, tokens, answer_pos, batch_size: int = 4096):
    """Greedy answer (argmax over the vocabulary) at each query's answer position."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            logits = model(tokens[i:i + batch_size])
            rows = torch.arange(logits.shape[0])
            out.append(logits[rows, answer_pos[i:i + batch_size]].argmax(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(model, tokens, answers, answer_pos) -> float:
    if len(tokens) == 0:
        return float("nan")
    return float((predict(model, tokens, answer_pos) == answers).float().mean())


def eval_sets(world: World, n_train_eval: int, seed: int = 0) -> dict:
    """name -> (tokens, answers, answer positions): a fixed sample of the training set
    ("train"), the atomic triples, and every test split."""
    import torch

    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(world.train_tokens), generator=g)[:n_train_eval]
    empty = world.atomic[:0]
    sets = {"train": (world.train_tokens[idx], world.train_answers[idx], world.train_pos[idx])}
    for name, q in world.test.items():
        sets[name] = world.encode(empty, q)
    return sets


def evaluate(model, sets: dict) -> dict[str, float]:
    was = model.training
    model.eval()
    out = {name: round(accuracy(model, *s), 4) for name, s in sets.items()}
    model.train(was)
    return out


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
          on_log=None) -> dict:
    """Train with AdamW on the answer-only loss; returns {"model", "log"} where ``log`` holds
    the evaluation steps and the accuracy of every split at those steps."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(tcfg.seed)
    model = model if model is not None else make_model(world, tcfg, device)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tcfg))
    sets = eval_sets(world, tcfg.n_train_eval, tcfg.seed)
    toks, ans, pos = world.train_tokens, world.train_answers, world.train_pos
    g = torch.Generator().manual_seed(tcfg.seed)
    checkpoints = set(log_steps(tcfg.steps, tcfg.n_log))
    log = {"step": [], **{name: [] for name in sets}, "loss": []}
    model.train()
    for step in tqdm(range(1, tcfg.steps + 1), disable=not progress, desc="training", mininterval=2):
        idx = torch.randint(0, len(toks), (tcfg.batch_size,), generator=g)
        loss = answer_only_loss(model(toks[idx]), ans[idx], pos[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step in checkpoints:
            log["step"].append(step)
            log["loss"].append(round(float(loss.detach()), 4))
            for name, acc in evaluate(model, sets).items():
                log[name].append(acc)
            if on_log is not None:
                on_log({k: v[-1] for k, v in log.items()})
    model.eval()
    return {"model": model, "log": log}


def first_step_at(log: dict, split: str, threshold: float) -> int | None:
    """First logged step at which ``split`` accuracy is >= ``threshold`` (None if never)."""
    for step, acc in zip(log["step"], log[split]):
        if acc >= threshold:
            return step
    return None
