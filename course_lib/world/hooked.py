"""The world LM's ``HookedTransformer``: the same model, but a prompt it cannot read is refused
with a clear message instead of being silently changed (an unknown word would become ``<unk>``,
a prompt longer than the context would be cut)."""
from __future__ import annotations

import difflib

from transformer_lens import HookedTransformer


def unknown_words(tokenizer, texts: list[str]) -> list[str]:
    """The words of ``texts`` that the tokenizer can only read as ``<unk>``, in order, once each."""
    out = []
    for text in texts:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        for token_id, (start, end) in zip(enc["input_ids"], enc["offset_mapping"]):
            if token_id == tokenizer.unk_token_id and text[start:end] not in out:
                out.append(text[start:end])
    return out


def nearest_words(word: str, vocabulary: list[str], n: int = 3) -> list[str]:
    """Known words closest to ``word``: the same word capitalised differently, else similar spellings."""
    same = [w for w in vocabulary if w.lower() == word.lower()]
    return same or difflib.get_close_matches(word, vocabulary, n=n, cutoff=0.6)


class WorldLM(HookedTransformer):
    """``HookedTransformer`` whose ``to_tokens`` (used by ``model("text")``, ``to_str_tokens``,
    ``generate``, …) raises a ``ValueError`` for an unknown word, naming the nearest known words,
    and for a prompt longer than the context."""

    def to_tokens(self, input, *args, truncate: bool = True, **kwargs):
        texts = [input] if isinstance(input, str) else list(input)
        unknown = unknown_words(self.tokenizer, texts)
        if unknown:
            vocabulary = [w for w in self.tokenizer.get_vocab() if not w.startswith("<")]
            hints = []
            for word in unknown:
                near = nearest_words(word, vocabulary)
                hints.append(f"{word!r}" + (f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""))
            raise ValueError(f"unknown word{'s' if len(unknown) > 1 else ''} for the world LM: {', '.join(hints)}. "
                             f"It knows only the {len(vocabulary)} words of its world, one token per word and "
                             "case-sensitive (model.tokenizer.get_vocab() lists them); an unknown word would be "
                             "read as <unk> and give a meaningless answer")
        tokens = super().to_tokens(input, *args, truncate=False, **kwargs)
        if truncate and tokens.shape[-1] > self.cfg.n_ctx:
            raise ValueError(f"the prompt has {tokens.shape[-1]} tokens (with <bos>), more than the world LM's "
                             f"context of {self.cfg.n_ctx} tokens; shorten it (it would otherwise be cut)")
        return tokens
