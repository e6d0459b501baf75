"""World text as model input: **one document per row**, starting at position 0 and padded with
``<pad>`` after its ``<eos>`` (pad targets are masked out of every loss), with every token's
ground-truth labels aligned to the same [row, position] grid (for SAEs, probes and scoring).

One document per row is the layout the world LM is trained and evaluated in: a row then tells the
model nothing the grammar does not (with greedily packed rows, where a document starts would
predict its length). :func:`world_tokens` is the function other modules use to get world text.
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np

from . import grammar as g

PAD = "<pad>"
PAD_LABEL = {f: None for f in g.LABEL_FIELDS} | {"in_quote": False, "pos": "PAD"}


@dataclasses.dataclass
class WorldTokens:
    tokens: object  # torch.LongTensor [n_docs, width]: one document per row, then <pad>
    labels: dict[str, np.ndarray]  # field -> object array [n_docs, width] (empty without labels)
    true_logp: np.ndarray  # [n_docs]: exact log-probability of each row's document
    kinds: np.ndarray  # [n_docs]: each row's document kind (grammar.DOC_KINDS)
    lengths: np.ndarray  # [n_docs]: tokens of each document, <bos> and <eos> included

    @property
    def n_docs(self) -> int:
        return len(self.lengths)

    def to_hf_dataset(self):
        """A `datasets.Dataset` with a 'tokens' column (what sae-lens's ``override_dataset`` takes)."""
        from datasets import Dataset

        return Dataset.from_dict({"tokens": self.tokens.tolist()})

    def batches(self, batch_size: int):
        """Consecutive rows, ``batch_size`` at a time, each batch cut to its longest document
        (cutting trailing pad changes no logit at a document position: attention is causal)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        for i in range(0, self.n_docs, int(batch_size)):
            yield self.tokens[i:i + batch_size, :int(self.lengths[i:i + batch_size].max())]

    def length_bucketed_batches(self, tokens_per_batch: int, seed: int = 0, pool: int = 16_384):
        """Endless seeded training batches: each epoch shuffles the documents, sorts pools of
        ``pool`` documents by length and cuts them into batches of about ``tokens_per_batch``
        tokens (padding included) of near-equal length, and shuffles the batches."""
        import torch

        if tokens_per_batch < int(self.lengths.max()):
            raise ValueError(f"tokens_per_batch must be at least the longest document ({self.lengths.max()}), "
                             f"got {tokens_per_batch!r}")
        rng = np.random.default_rng(seed)
        while True:
            order, batches = rng.permutation(self.n_docs), []
            for start in range(0, self.n_docs, pool):
                chunk = order[start:start + pool]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
                i = 0
                while i < len(chunk):
                    j = i + 1  # grow while (rows × longest length) stays within the budget
                    while j < len(chunk) and (j + 1 - i) * self.lengths[chunk[j]] <= tokens_per_batch:
                        j += 1
                    batches.append(chunk[i:j])
                    i = j
            for k in rng.permutation(len(batches)):
                idx = torch.from_numpy(batches[k])
                yield self.tokens[idx, :int(self.lengths[batches[k]].max())]


def document_rows(docs: list[g.Document], vocab: dict[str, int], n_ctx: int, with_labels: bool = True) -> WorldTokens:
    """One document per row, padded to the longest document (which must fit ``n_ctx``)."""
    import torch

    lengths = np.array([len(d.tokens) for d in docs], dtype=np.int64)
    if len(docs) and lengths.max() > n_ctx:
        raise ValueError(f"a document of {lengths.max()} tokens does not fit n_ctx={n_ctx}")
    width = int(lengths.max()) if len(docs) else 0
    pad = vocab[PAD]
    tokens = torch.full((len(docs), width), pad, dtype=torch.long)
    for i, d in enumerate(docs):
        tokens[i, :len(d.tokens)] = torch.tensor([vocab[t] for t in d.tokens])
    labels = {}
    if with_labels:
        for field in g.LABEL_FIELDS:
            arr = np.empty((len(docs), width), dtype=object)
            arr[:] = PAD_LABEL[field]
            for i, d in enumerate(docs):
                arr[i, :len(d.tokens)] = [lab[field] for lab in d.labels]
            labels[field] = arr
    return WorldTokens(tokens, labels, np.array([d.logp for d in docs]), np.array([d.kind for d in docs]), lengths)


def world_tokens(n_docs: int, seed: int, n_ctx: int, vocab: dict[str, int], split: str = "train",
                 with_labels: bool = True) -> WorldTokens:
    """``n_docs`` seeded documents of the world, one per row (the layout the world LM was trained
    and is evaluated in; seeds ≥ 1000 are never used for training)."""
    if isinstance(n_docs, bool) or not isinstance(n_docs, (int, np.integer)) or n_docs < 1:
        raise ValueError(f"n_docs must be a positive int, got {n_docs!r}")
    grammar, rng = g.WorldGrammar(split), random.Random(int(seed))
    docs = [grammar.sample(rng) for _ in range(int(n_docs))]
    return document_rows(docs, vocab, n_ctx, with_labels)
