"""Exact steering metrics. Everyone else asks an LLM judge; our world knows which vocabulary tokens
belong to a concept and the exact probability of every document, so:

* **concept success** (:func:`concept_success`, an exercise): per generation, whether it writes a
  token of the target concept (hit) and the mean probability mass the model put on the concept's
  tokens while writing it (mass); the concept's tokens (a bool mask over the vocabulary) come
  from the world's labels (:mod:`.concepts`);
* **fluency** (:func:`fluency`): the world grammar's *exact* log-probability of each generated
  document through the independent scorer :class:`course_lib.world.scorer.Scorer` (a sum over
  every derivation; text the grammar cannot write, including false facts and unfinished
  documents, has probability 0: out of support, counted as such, never skipped), per predicted
  token; beside it the unsteered world LM's log-probability per token (:func:`lm_logprob`);
* a fluency score in [0, 1] (:func:`fluency_score`) and the AxBench-style harmonic mean of success
  and fluency (:func:`harmonic_aggregate`, an exercise) that picks a steering strength;
* side effects (:func:`kl_side_effect`): KL(unsteered ‖ steered) of the next-token distributions
  on unrelated prompts.
"""
from __future__ import annotations

import functools

import numpy as np
import torch


# ----------------------------------------------------------------------------- concept success
def concept_success(tokens, probs, concept, valid):
    """Exact success of steering towards a concept, per generation.

    ``tokens`` [batch, T] (long): the generated tokens; ``probs`` [batch, T, d_vocab]: the
    distribution each of them was drawn from; ``concept`` [d_vocab] (bool): the concept's tokens;
    ``valid`` [batch, T] (bool): the positions that belong to the text (up to its ``<eos>``, not the
    padding after it). Returns ``(hit, mass)``, both [batch] floats: ``hit`` is 1.0 where the text
    contains at least one concept token, else 0.0; ``mass`` is the probability the model put on the
    concept's tokens, summed over them, averaged over the text's positions (0 for an empty text)."""
    in_concept = concept[tokens] & valid
    hit = in_concept.any(-1).float()
    per_position = probs[..., concept].sum(-1) * valid
    mass = per_position.sum(-1) / valid.sum(-1).clamp(min=1)
    return hit, mass


# ----------------------------------------------------------------------------- fluency
@functools.lru_cache(maxsize=2)
def _scorer(split: str):
    from ..world.scorer import Scorer

    return Scorer(split)


def documents(tokens, tokenizer) -> list[list[str]]:
    """Token-id rows [batch, T] (each starting with ``<bos>``) as documents: lists of words up to
    and including the first ``<eos>``, padding dropped. A row without ``<eos>`` is an unfinished
    document (the grammar gives it probability 0)."""
    rows = torch.as_tensor(tokens)
    if rows.ndim != 2:
        raise ValueError(f"tokens must be [batch, T] token ids, got shape {list(rows.shape)}")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for row in rows.tolist():
        row = row[: row.index(eos) + 1] if eos in row else [t for t in row if t != pad]
        out.append(tokenizer.convert_ids_to_tokens(row))
    return out


def fluency(docs, split: str = "all") -> dict:
    """The world grammar's exact log-probability of each document (a list of words from ``<bos>``
    to ``<eos>``, e.g. from :func:`documents`), by the independent scorer (a sum over derivations).

    Returns numpy arrays [n]: ``logp`` (−inf where the grammar cannot write the text: out of
    support), ``n_tokens`` (predicted tokens: all but ``<bos>``), ``logp_per_token`` = logp /
    n_tokens (−inf out of support) and ``in_support`` (bool). ``split="all"`` (default) scores
    against the world's whole language, held-out phrasings included; ``"train"`` against what the
    LM was trained on."""
    if split not in ("all", "train"):
        raise ValueError(f"split must be 'all' or 'train', got {split!r}")
    docs = [list(d) for d in docs]
    if not all(d and all(isinstance(w, str) for w in d) for d in docs):
        raise TypeError("docs must be non-empty lists of words (str), e.g. from documents(tokens, tokenizer)")
    scorer = _scorer(split)
    logp = np.array([scorer.logp(d) for d in docs], dtype=float)
    n_tokens = np.array([max(len(d) - 1, 1) for d in docs], dtype=float)
    return {"logp": logp, "n_tokens": n_tokens, "logp_per_token": logp / n_tokens, "in_support": np.isfinite(logp)}


def fluency_score(logp_per_token, reference):
    """Fluency in [0, 1]: ``exp(min(0, logp_per_token − reference))``, where ``reference`` is the
    log-probability per token of unsteered text (e.g. the world's negative entropy rate, or the
    mean over unsteered generations). Text as likely per token as the reference or more scores 1;
    each nat per token less multiplies the score by 1/e; out-of-support text (−inf) scores 0."""
    x = torch.as_tensor(logp_per_token, dtype=torch.float64)
    return torch.exp((x - float(reference)).clamp(max=0.0))


def harmonic_aggregate(success, fluency):
    """AxBench's aggregate of steering (Wu et al. 2025): the harmonic mean ``2·s·f / (s + f)`` of a
    success score ``s`` and a fluency score ``f``, both in [0, 1] (e.g. concept mass and
    :func:`fluency_score`), elementwise; 0 where both are 0. High only when both are: a strength
    that steers perfectly but writes gibberish scores 0."""
    return 2 * success * fluency / (success + fluency).clamp(min=1e-12)


def lm_logprob(model, tokens, valid):
    """The unsteered world LM's mean log-probability per predicted token of each row of ``tokens``
    [batch, T] (starting with ``<bos>``), over the predicted positions where ``valid`` [batch, T]
    (bool) holds at the *predicted* token (position 0 is never predicted). Returns [batch]."""
    tokens, valid = torch.as_tensor(tokens), torch.as_tensor(valid, dtype=torch.bool)
    if tokens.ndim != 2 or valid.shape != tokens.shape:
        raise ValueError(f"tokens and valid must both be [batch, T], got {list(tokens.shape)} and {list(valid.shape)}")
    with torch.no_grad():
        logp = model(tokens.to(model.cfg.device)).log_softmax(-1)[:, :-1].cpu()
    picked = logp.gather(-1, tokens[:, 1:, None])[..., 0]
    keep = valid[:, 1:]
    return (picked * keep).sum(-1) / keep.sum(-1).clamp(min=1)


def kl_side_effect(clean_logits, steered_logits, keep=None):
    """Side effect of steering on unrelated text: KL(clean ‖ steered) of the next-token
    distributions, in nats, averaged over the positions where ``keep`` [batch, pos] (bool) holds
    (all when None). ``clean_logits``, ``steered_logits``: [batch, pos, d_vocab]."""
    if clean_logits.shape != steered_logits.shape:
        raise ValueError(f"clean and steered logits must have the same shape, got {list(clean_logits.shape)} "
                         f"and {list(steered_logits.shape)}")
    logp, logq = clean_logits.log_softmax(-1), steered_logits.log_softmax(-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    if keep is None:
        return kl.mean()
    return kl[keep].mean() if bool(keep.any()) else kl.new_tensor(0.0)
