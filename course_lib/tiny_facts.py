"""A tiny fact-recall transformer, trained in seconds, for notebook 00.

Two sentence templates over a handful of real US facts, word-level tokens:

    "<bos> Dallas is a city in"      -> "Texas"      (city -> state)
    "<bos> The capital of Texas is"  -> "Austin"     (state -> capital)

The model is a TransformerLens ``HookedTransformer`` so that every hook, cache and patching
tool of the library works on it. (The course's larger world LM replaces it later.)
"""
from __future__ import annotations

import dataclasses

# state -> (capital, cities). Real facts; each city is in its state.
STATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Texas": ("Austin", ("Dallas", "Houston")),
    "California": ("Sacramento", ("Oakland", "Los Angeles")),
    "New York": ("Albany", ("Buffalo", "Rochester")),
    "Florida": ("Tallahassee", ("Miami", "Tampa")),
    "Illinois": ("Springfield", ("Chicago", "Peoria")),
    "Washington": ("Olympia", ("Seattle", "Spokane")),
    "Georgia": ("Atlanta", ("Savannah", "Augusta")),
    "Ohio": ("Columbus", ("Cleveland", "Cincinnati")),
    "Pennsylvania": ("Harrisburg", ("Philadelphia", "Pittsburgh")),
    "Michigan": ("Lansing", ("Detroit", "Grand Rapids")),
}
CITY_TEMPLATE = ("{}", "is", "a", "city", "in")
CAPITAL_TEMPLATE = ("The", "capital", "of", "{}", "is")
BOS = "<bos>"


class Vocab:
    """Word-level vocabulary: multi-word names such as 'Los Angeles' are single tokens."""

    def __init__(self, words: list[str]):
        self.words = list(dict.fromkeys(words))
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def to_tokens(self, words: list[str] | tuple[str, ...], prepend_bos: bool = True):
        """Token ids, shape [1, n] (like ``HookedTransformer.to_tokens``)."""
        import torch

        unknown = [w for w in words if w not in self.index]
        if unknown:
            raise ValueError(f"unknown words {unknown}; the vocabulary has {len(self)} words, e.g. {self.words[:8]}")
        ids = ([self.index[BOS]] if prepend_bos else []) + [self.index[w] for w in words]
        return torch.tensor([ids])

    def to_single_token(self, word: str) -> int:
        return int(self.to_tokens([word], prepend_bos=False)[0, 0])

    def to_str_tokens(self, tokens) -> list[str]:
        return [self.words[int(t)] for t in tokens.flatten()]


def city_prompt(city: str) -> list[str]:
    return [w.format(city) for w in CITY_TEMPLATE]


def capital_prompt(state: str) -> list[str]:
    return [w.format(state) for w in CAPITAL_TEMPLATE]


def facts() -> list[tuple[list[str], str]]:
    """(prompt words, answer) for every city->state and state->capital fact."""
    out = [(city_prompt(c), s) for s, (_, cities) in STATES.items() for c in cities]
    return out + [(capital_prompt(s), cap) for s, (cap, _) in STATES.items()]


def build_vocab() -> Vocab:
    words = [BOS, *CITY_TEMPLATE[1:], *CAPITAL_TEMPLATE[:3], CAPITAL_TEMPLATE[4]]
    for state, (capital, cities) in STATES.items():
        words += [state, capital, *cities]
    return Vocab(words)


@dataclasses.dataclass
class TinyFactModel:
    model: object  # HookedTransformer
    vocab: Vocab
    losses: list[float]

    def tokens(self, prompts: list[list[str]]):
        import torch

        return torch.cat([self.vocab.to_tokens(p) for p in prompts]).to(self.model.cfg.device)

    def predict(self, prompt: list[str]) -> str:
        logits = self.model(self.tokens([prompt]))
        return self.vocab.words[int(logits[0, -1].argmax())]

    def accuracy(self) -> float:
        data = facts()
        logits = self.model(self.tokens([p for p, _ in data]))[:, -1]
        answers = [self.vocab.to_single_token(a) for _, a in data]
        return sum(int(logits[i].argmax()) == a for i, a in enumerate(answers)) / len(data)


def train_tiny_fact_model(seed: int = 0, steps: int = 400, lr: float = 3e-3, device=None) -> TinyFactModel:
    """Train a 2-layer attention + MLP transformer on the facts (seconds on a CPU)."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from .runtime import get_device, set_seed

    if steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    set_seed(seed)
    vocab = build_vocab()
    cfg = HookedTransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256, n_ctx=8,
                                  d_vocab=len(vocab), act_fn="gelu", normalization_type="LN",
                                  seed=seed, device=str(device or get_device()))
    model = HookedTransformer(cfg)
    data = facts()
    result = TinyFactModel(model, vocab, [])
    tokens = result.tokens([p for p, _ in data])
    answers = torch.tensor([vocab.to_single_token(a) for _, a in data], device=tokens.device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(tokens)[:, -1], answers)  # answer token only
        opt.zero_grad()
        loss.backward()
        opt.step()
        result.losses.append(loss.item())
    model.eval()
    return result
