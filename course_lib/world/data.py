"""World text as model input: documents packed into fixed-length token rows, with every token's
ground-truth labels aligned to the same [row, position] grid (for SAEs, probes and scoring)."""
from __future__ import annotations

import dataclasses
import random

import numpy as np

from . import grammar as g

PAD_LABEL = {f: None for f in g.LABEL_FIELDS} | {"in_quote": False, "pos": "PAD"}


@dataclasses.dataclass
class WorldTokens:
    tokens: "object"  # torch.LongTensor [rows, n_ctx]
    labels: dict[str, np.ndarray]  # field -> object array [rows, n_ctx]
    true_logp: np.ndarray  # [rows]: exact log-probability of the documents in each row
    n_docs: int

    def to_hf_dataset(self):
        """A `datasets.Dataset` with a 'tokens' column (what sae-lens's ``override_dataset`` takes)."""
        from datasets import Dataset

        return Dataset.from_dict({"tokens": self.tokens.tolist()})

    def batches(self, batch_size: int, seed: int = 0, epochs: int = 1):
        """Seeded shuffled batches of token rows."""
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(self.tokens), generator=gen)
            for i in range(0, len(order) - batch_size + 1, batch_size):
                yield self.tokens[order[i:i + batch_size]]


def pack_documents(docs: list[g.Document], vocab: dict[str, int], n_ctx: int, with_labels: bool = True) -> WorldTokens:
    """Pack whole documents greedily into rows of ``n_ctx`` tokens, padding the rest with <pad>."""
    import torch

    rows, row_labels, row_logp, current, cur_labels, cur_logp = [], [], [], [], [], 0.0
    for doc in docs:
        if len(doc.tokens) > n_ctx:
            raise ValueError(f"a document of {len(doc.tokens)} tokens does not fit n_ctx={n_ctx}")
        if len(current) + len(doc.tokens) > n_ctx:
            rows.append(current), row_labels.append(cur_labels), row_logp.append(cur_logp)
            current, cur_labels, cur_logp = [], [], 0.0
        current += [vocab[t] for t in doc.tokens]
        cur_labels += doc.labels if with_labels else []
        cur_logp += doc.logp
    if current:
        rows.append(current), row_labels.append(cur_labels), row_logp.append(cur_logp)
    pad = vocab["<pad>"]
    tokens = torch.tensor([r + [pad] * (n_ctx - len(r)) for r in rows])
    labels = {}
    if with_labels:
        for field in g.LABEL_FIELDS:
            arr = np.empty((len(rows), n_ctx), dtype=object)
            for i, lab in enumerate(row_labels):
                arr[i, :] = [x[field] for x in lab] + [PAD_LABEL[field]] * (n_ctx - len(lab))
            labels[field] = arr
    return WorldTokens(tokens, labels, np.array(row_logp), len(docs))


def world_tokens(n_docs: int, seed: int, n_ctx: int, vocab: dict[str, int], split: str = "train",
                 with_labels: bool = True) -> WorldTokens:
    """``n_docs`` seeded documents of the world, packed into rows."""
    grammar, rng = g.WorldGrammar(split), random.Random(seed)
    docs = [grammar.sample(rng) for _ in range(n_docs)]
    return pack_documents(docs, vocab, n_ctx, with_labels)
