"""Batched, seeded sampling from the world LM with steering hooks, and the neutral prompts.

Every row of a batch can be steered differently (one latent, one concept, one strength per row):
a steering direction is given per row, ``[batch, d_model]``, and added by
:func:`course_lib.steering.intervene.steering_hook` (its ``[batch, 1, d_model]`` form broadcasts over
positions). Generation recomputes the whole prefix at each step (the world LM is tiny, and a hook
then sees every position at its true index).
"""
from __future__ import annotations

import dataclasses
import random

import torch

from ..world import grammar as g
from .intervene import steering_hook


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    """``new_tokens`` sampled at ``temperature`` with a generator seeded by ``seed``, ``batch_size``
    rows at a time."""

    new_tokens: int = 12
    temperature: float = 1.0
    seed: int = 0
    batch_size: int = 2048

    def __post_init__(self):
        if isinstance(self.new_tokens, bool) or int(self.new_tokens) != self.new_tokens or self.new_tokens < 1:
            raise ValueError(f"new_tokens must be a positive int, got {self.new_tokens!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")


@dataclasses.dataclass(frozen=True)
class Steering:
    """Add ``scale[row] * directions[row]`` to ``hook`` at every position from ``start`` on (the
    last prompt token and everything generated after it, when ``start = -1`` at the first step)."""

    hook: str
    directions: torch.Tensor  # [batch, d_model]
    scale: torch.Tensor  # [batch]
    start: int

    def __len__(self) -> int:
        return len(self.directions)

    def hooks(self, rows: torch.Tensor) -> list:
        vectors = (self.scale[rows, None] * self.directions[rows])[:, None, :]
        return [(self.hook, steering_hook(vectors, 1.0, slice(self.start, None)))]


def sample(model, prompts: torch.Tensor, config: GenerateConfig = GenerateConfig(), steering: Steering | None = None,
           extra_hooks=(), keep_probs: bool = False):
    """Sample ``config.new_tokens`` tokens after every row of ``prompts`` [batch, pos] (all of one
    length), optionally steered; ``extra_hooks`` (a list of (name, fn)) apply to every row.
    Returns [batch, pos + new_tokens]; rows go on after ``<eos>`` (mask with :func:`generated_mask`).
    With ``keep_probs``: ``(tokens, probs)``, ``probs`` [batch, new_tokens, d_vocab] the (steered)
    distributions the new tokens were drawn from (what :func:`.measures.concept_success` reads)."""
    if not torch.is_tensor(prompts) or prompts.ndim != 2:
        raise ValueError(f"prompts must be a [batch, pos] token tensor, got {type(prompts).__name__}")
    if steering is not None and len(steering) != len(prompts):
        raise ValueError(f"steering has {len(steering)} rows for {len(prompts)} prompts")
    generator = torch.Generator().manual_seed(int(config.seed))
    out, kept = [], []
    with torch.no_grad():
        for rows in torch.arange(len(prompts)).split(config.batch_size):
            tokens = prompts[rows].to(model.cfg.device)
            hooks = list(extra_hooks) + (steering.hooks(rows) if steering is not None else [])
            with model.hooks(fwd_hooks=hooks):
                for _ in range(config.new_tokens):
                    probs = (model(tokens)[:, -1, :].float().cpu() / config.temperature).softmax(-1)
                    if keep_probs:
                        kept.append(probs)
                    nxt = torch.multinomial(probs, 1, generator=generator)
                    tokens = torch.cat([tokens, nxt.to(tokens.device)], dim=1)
            out.append(tokens.cpu())
    tokens = torch.cat(out)
    if not keep_probs:
        return tokens
    steps = config.new_tokens
    chunks = [torch.stack(kept[i:i + steps], dim=1) for i in range(0, len(kept), steps)]
    return tokens, torch.cat(chunks)


def generated_mask(tokens: torch.Tensor, prompt_len: int, eos_id: int) -> torch.Tensor:
    """[batch, pos] bool: the generated positions up to and including the first ``<eos>``."""
    gen = torch.zeros_like(tokens, dtype=torch.bool)
    gen[:, prompt_len:] = True
    after_eos = (tokens == eos_id) & gen
    seen = after_eos.cumsum(1) - after_eos.long()  # eos tokens strictly before each position
    return gen & (seen == 0)


def neutral_prompts(tokenizer, avoid_words, n: int, seed: int = 3000, length: int = 7) -> torch.Tensor:
    """``n`` held-out first sentences of world documents (seed ≥ 1000: never trained on) of exactly
    ``length`` words, none of which is in ``avoid_words`` (e.g. every concept word), as
    ``[n, 1 + length]`` tokens after ``<bos>``: a prompt that leans toward no concept."""
    grammar, rng, vocab = g.WorldGrammar("all"), random.Random(int(seed)), tokenizer.get_vocab()
    avoid, prompts = set(avoid_words), []
    for _ in range(200 * n):
        doc = grammar.sample(rng)
        words = doc.tokens[1:1 + length]
        if len(words) == length and words[-1] == "." and "." not in words[:-1] and not avoid & set(words):
            prompts.append([vocab[g.BOS]] + [vocab[w] for w in words])
            if len(prompts) == n:
                return torch.tensor(prompts)
    raise ValueError(f"found only {len(prompts)} neutral prompts of {length} words; try another length")
