"""The concepts to steer toward, read off the world grammar's labels, and where they live.

A **concept** is a label value — a state (``entity = Texas``), a topic (``topic = food``), a
sentiment (``sentiment = positive``) — with its **token set**: the words that carry that label
(almost) wherever they occur in world text (``Texas``; ``York`` but not ``New``, which also starts
``New Delhi``). Steering toward a concept succeeds when the model writes those words.

Correlation (section 1): the latents whose activation separates tokens with the concept from the
rest (AUROC against the current token's label: the *input* role) and those that separate the
tokens *before* a concept token (AUROC against the next token's label: the *output* role).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..world import grammar as g
from ..world import knowledge as kg

FIELDS = ("entity", "topic", "sentiment")


@dataclasses.dataclass(frozen=True)
class Concept:
    """A label value and the token ids that carry it."""

    name: str  # e.g. "Texas", "food", "positive"
    field: str  # the label field: "entity", "topic" or "sentiment"
    token_ids: tuple  # the vocabulary ids of its words
    words: tuple  # the same, as strings

    @property
    def kind(self) -> str:
        return {"entity": "state"}.get(self.field, self.field)


def concept_names() -> dict[str, tuple[str, ...]]:
    """field → the concept values steered toward: the 16 states, the 4 topics, the 2 sentiments."""
    return {"entity": tuple(kg.STATES), "topic": g.TOPICS, "sentiment": tuple(sorted(g.REVIEW_SENTENCES))}


def token_purity(tokens: np.ndarray, labels: np.ndarray, value) -> dict[str, tuple[float, int]]:
    """For every word that ever carries ``value``: (the share of its occurrences that carry it, its count)."""
    tokens, hit = np.asarray(tokens, dtype=object), np.asarray(labels == value, dtype=bool)
    out = {}
    for word in np.unique(tokens[hit]):
        at = tokens == word
        out[str(word)] = (float(hit[at].mean()), int(at.sum()))
    return out


def world_concepts(data, tokenizer, purity: float = 0.75, min_count: int = 5) -> dict[str, Concept]:
    """The concepts of :func:`concept_names` with their token sets, from labelled text ``data``
    (a :class:`course_lib.interpretation.LabelledTokens`): the words that carry the concept in at
    least ``purity`` of their ``min_count`` or more occurrences."""
    if not 0 < purity <= 1:
        raise ValueError(f"purity must be in (0, 1], got {purity!r}")
    vocab, out = tokenizer.get_vocab(), {}
    for field, values in concept_names().items():
        for value in values:
            table = token_purity(data.labels["token"], data.labels[field], value)
            words = tuple(sorted(w for w, (share, n) in table.items() if share >= purity and n >= min_count))
            if not words:
                raise ValueError(f"no word carries {field} = {value} in {purity:.0%} of its occurrences: "
                                 "collect more text (CollectConfig.n_docs) or lower purity")
            out[value] = Concept(value, field, tuple(vocab[w] for w in words), words)
    return out


def auroc(scores: torch.Tensor, positive, columns: torch.Tensor | None = None) -> torch.Tensor:
    """Area under the ROC curve of every column of ``scores`` [N, L] as a detector of ``positive``
    [N] (bool), ties counted half (Mann–Whitney): [L]. 0.5 is chance, 1 a perfect detector.
    For each positive score: the negatives below it and equal to it, by binary search in the
    sorted columns (all tokens minus the positives). ``columns``: :func:`sorted_columns` of
    ``scores``, when many concepts are scored against the same columns (sorting is the cost)."""
    positive = torch.as_tensor(np.asarray(positive, dtype=bool))
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"positive must have both classes, got {n_pos} positive and {n_neg} negative tokens")
    pos = scores[positive].T.contiguous().float()  # [L, n_pos]
    every = sorted_columns(scores) if columns is None else columns
    mine = pos.sort(-1).values

    def below_and_equal(sorted_rows):
        lo = torch.searchsorted(sorted_rows, pos, right=False)
        return lo, torch.searchsorted(sorted_rows, pos, right=True) - lo

    below_all, equal_all = below_and_equal(every)
    below_pos, equal_pos = below_and_equal(mine)
    wins = (below_all - below_pos).double() + 0.5 * (equal_all - equal_pos).double()
    return (wins.sum(-1) / (n_pos * n_neg)).float()


def sorted_columns(scores: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """``scores.T`` [L, N] sorted along its last axis, ``chunk`` columns at a time (bounded memory)."""
    return torch.cat([part.T.float().sort(-1).values for part in scores.split(chunk, dim=1)]).contiguous()


def concept_aurocs(latent_acts: torch.Tensor, data, concept: Concept, columns=None) -> dict[str, torch.Tensor]:
    """Per latent, AUROC against the concept on the current token (``input``: the latent *reads*
    it) and on the next token (``output``: the latent comes before the model writes it).
    ``columns``: :func:`sorted_columns` of ``latent_acts``, if already computed."""
    columns = sorted_columns(latent_acts) if columns is None else columns
    words = np.isin(data.labels["token"], concept.words)
    nxt = np.isin(data.labels["next token"], concept.words)
    return {"input": auroc(latent_acts, words, columns), "output": auroc(latent_acts, nxt, columns)}
