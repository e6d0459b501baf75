"""Exact steering metrics. Everyone else asks an LLM judge; our world knows which vocabulary tokens
belong to a concept and the exact probability of every document, so:

* **concept success** (:func:`concept_success`, an exercise): per generation, whether it writes a
  token of the target concept (hit) and the mean probability mass the model put on the concept's
  tokens while writing it (mass); the concept's tokens (a bool mask over the vocabulary) come
  from the world's labels (:mod:`.concepts`);
* **fluency** (:func:`fluency`): the world grammar's *exact* log-probability of the generated
  tokens given the prompt, per generated token, from the tables of the independent scorer
  :class:`course_lib.world.scorer.Scorer` (sums over every derivation; a generation cut before
  ``<eos>`` is scored as the beginning of a document, :class:`PrefixScorer`). Text the grammar
  cannot write (a false fact, a broken sentence) has probability 0: out of support, counted as
  such, never skipped. Beside it, the unsteered world LM's log-probability per token
  (:func:`lm_logprob`);
* a fluency score in [0, 1] (:func:`fluency_score`) and the AxBench-style harmonic mean of success
  and fluency (:func:`harmonic_aggregate`, an exercise) that picks a steering strength;
* side effects (:func:`kl_side_effect`): KL(unsteered ‖ steered) of the next-token distributions
  on unrelated prompts.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..world import grammar as g
from ..world import knowledge as kg


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
_END = -1  # a dialogue branch whose words run past the end of the prefix


class PrefixScorer:
    """The world grammar's exact probability that a document *starts with* given words, summed over
    every derivation, read off the independent :class:`course_lib.world.scorer.Scorer`'s sentence
    tables (never the sampler). A generation cut after a fixed number of tokens is such a prefix, so
    ``log prefix_prob(prompt + generated) − log prefix_prob(prompt)`` is the exact conditional
    log-probability of what was generated. A finished document (ending with ``<eos>``) gets the
    Scorer's own probability."""

    def __init__(self, split: str = "all"):
        from ..world.scorer import Scorer

        self.scorer = Scorer(split)
        s = self.scorer
        self._tables = [s.fact_table, *s.topic_tables.values(), s.opener_table, *s.review_tables.values(),
                        s.numbers_table]
        self._strict = {id(t): self._strict_prefixes(t) for t in self._tables}

    @staticmethod
    def _strict_prefixes(table) -> dict:
        """words → summed probability of the table's sentences that start with them and go on."""
        out = {}
        for words, (p, _) in table.entries.items():
            for j in range(1, len(words)):
                out[words[:j]] = out.get(words[:j], 0.0) + p
        return out

    def _sequence(self, table, counts: dict, tokens: list, start: int) -> float:
        """Probability that n sentences of ``table`` (n drawn from ``counts``) start with ``tokens[start:]``."""
        m, most = len(tokens), max(counts)
        at_least = [sum(p for n, p in counts.items() if n >= k) for k in range(most + 2)]
        strict, reach, total = self._strict[id(table)], {start: 1.0}, 0.0
        for k in range(most + 1):
            for pos, p in reach.items():
                if pos == m:  # the prefix ends after k whole sentences
                    total += at_least[k] * p
                elif k < most:  # it ends inside sentence k + 1
                    total += at_least[k + 1] * p * strict.get(tuple(tokens[pos:m]), 0.0)
            nxt = {}
            for pos, p in reach.items():
                for stop, (tp, _) in table.matches(tokens, pos):
                    nxt[stop] = nxt.get(stop, 0.0) + p * tp
            reach = nxt
        return total

    def _review(self, tokens: list) -> float:
        s = self.scorer
        total = self._strict[id(s.opener_table)].get(tuple(tokens[1:]), 0.0)
        for stop, (op, _) in s.opener_table.matches(tokens, 1):
            for sentiment in sorted(s.review_tables):
                total += op / len(s.review_tables) * self._sequence(s.review_tables[sentiment], _uniform((1, 2, 3)),
                                                                   tokens, stop)
        return total

    def _dialogue(self, tokens: list) -> float:
        """Sum over the dialogue's choices (asker, city, state, answerer, …; probabilities as in the
        Scorer) of those whose words agree with the prefix; a branch the prefix ends in counts whole."""
        s, m = self.scorer, len(tokens)
        city_state, states, capitals = s.facts["city_state"], sorted(kg.STATES), s.facts["country_capital"]

        def consume(i, words):
            words = words.split() if isinstance(words, str) else words
            n = min(len(words), m - i)
            if tokens[i:i + n] != words[:n]:
                return None
            return _END if len(words) > m - i else i + len(words)

        def walk(steps, i, ctx, p):
            if i == _END:
                return p
            if not steps:
                return p if i == m else 0.0
            if i >= m:
                return p
            total = 0.0
            for q, words, update in steps[0](ctx):
                j = consume(i, words)
                if j is not None:
                    total += walk(steps[1:], j, {**ctx, **update}, p * q)
            return total

        def literal(text):
            return lambda ctx: [(1.0, text.format(**ctx), {})]

        def choose(key, options, prob=None):
            return lambda ctx: [(prob(ctx, o) if prob else 1 / len(options(ctx)), o, {key: o}) for o in options(ctx)]

        people = choose("person", lambda ctx: s.people)
        asked = (lambda ctx, st: 1 / 2 if st == city_state[ctx["c"]] else 1 / 2 / (len(states) - 1))
        answer = (lambda ctx: [(1.0, (f'said , " Yes , {ctx["c"]} is in {ctx["s"]} . "' if ctx["s"] == city_state[ctx["c"]]
                                      else f'said , " No , {ctx["c"]} is not in {ctx["s"]} . "'), {})])
        wrong = (lambda ctx: sorted({h for _, h in kg.ANIMALS.values()} - {kg.ANIMALS[ctx["a"]][1]}))
        kinds = [
            [people, literal('asked , " Is'), choose("c", lambda ctx: sorted(city_state)), literal("in"),
             choose("s", lambda ctx: states, asked), literal('? "'), people, answer],
            [people, literal('asked , " What is the capital of'), choose("k", lambda ctx: sorted(kg.COUNTRIES)),
             literal('? "'), people, lambda ctx: [(1.0, f'said , " It is {capitals[ctx["k"]]} . "', {})]],
            [people, literal('said , " The'), choose("a", lambda ctx: sorted(kg.ANIMALS)),
             literal("does not live in the"), choose("h", wrong), literal('. "')],
        ]
        return sum(walk(steps, 1, {}, 1 / len(kinds)) for steps in kinds)

    def prefix_prob(self, tokens) -> float:
        """Probability that a document of the world starts with ``tokens`` (from ``<bos>``; a last
        ``<eos>`` makes it the whole document)."""
        tokens = list(tokens)
        if not tokens or tokens[0] != g.BOS or g.EOS in tokens[:-1] or g.BOS in tokens[1:]:
            return 0.0
        if tokens[-1] == g.EOS:
            return math.exp(self.scorer.logp(tokens))
        if len(tokens) == 1:
            return 1.0
        s, weight = self.scorer, {k: w / sum(g.DOC_KINDS.values()) for k, w in g.DOC_KINDS.items()}
        topic = sum(self._sequence(t, _uniform((2, 3, 4)), tokens, 1) for t in s.topic_tables.values())
        return (weight["facts"] * self._sequence(s.fact_table, _uniform((2, 3, 4, 5)), tokens, 1)
                + weight["topic"] * topic / len(s.topic_tables)
                + weight["review"] * self._review(tokens)
                + weight["dialogue"] * self._dialogue(tokens)
                + weight["numbers"] * self._sequence(s.numbers_table, _uniform((1, 2)), tokens, 1))

    def logp(self, tokens) -> float:
        p = self.prefix_prob(tokens)
        return math.log(p) if p > 0 else -math.inf


def _uniform(options) -> dict:
    return {n: 1 / len(options) for n in options}


@functools.lru_cache(maxsize=2)
def prefix_scorer(split: str = "all") -> PrefixScorer:
    """The (cached) :class:`PrefixScorer` of a split ("all": the world's whole language)."""
    if split not in ("all", "train"):
        raise ValueError(f"split must be 'all' or 'train', got {split!r}")
    return PrefixScorer(split)


def documents(tokens, tokenizer) -> list[list[str]]:
    """Token-id rows [batch, T] (each starting with ``<bos>``) as lists of words, up to and
    including the first ``<eos>`` (padding dropped). A row without ``<eos>`` is a document's
    beginning (a generation cut after a fixed number of tokens)."""
    rows = torch.as_tensor(tokens)
    if rows.ndim != 2:
        raise ValueError(f"tokens must be [batch, T] token ids, got shape {list(rows.shape)}")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for row in rows.tolist():
        row = row[: row.index(eos) + 1] if eos in row else [t for t in row if t != pad]
        out.append(tokenizer.convert_ids_to_tokens(row))
    return out


def fluency(docs, prompt_len: int = 1, split: str = "all") -> dict:
    """The world grammar's exact log-probability of what was generated after the first
    ``prompt_len`` words of each document (``<bos>`` and the prompt), given them: ``log P(doc) −
    log P(prompt)`` with prefix probabilities (:class:`PrefixScorer`), so a generation cut before
    ``<eos>`` is scored as the beginning of a document, a finished one as a whole document.

    ``docs``: lists of words from ``<bos>`` (e.g. :func:`documents`). Returns numpy arrays [n]:
    ``logp`` (−inf where the grammar cannot write the text: out of support, counted, never
    skipped), ``n_tokens`` (generated tokens), ``logp_per_token`` (−inf out of support; 0 for no
    generated token), ``in_support`` (bool) and ``finished`` (ends with ``<eos>``). ``split="all"``
    (default) scores against the world's whole language, held-out phrasings included."""
    docs = [list(d) for d in docs]
    if not all(d and all(isinstance(w, str) for w in d) for d in docs):
        raise TypeError("docs must be non-empty lists of words (str), e.g. from documents(tokens, tokenizer)")
    if isinstance(prompt_len, bool) or not isinstance(prompt_len, (int, np.integer)) or prompt_len < 1:
        raise ValueError(f"prompt_len must be an int >= 1 (the <bos> and the prompt's words), got {prompt_len!r}")
    if any(len(d) < prompt_len for d in docs):
        raise ValueError(f"every document must have at least prompt_len = {prompt_len} words")
    scorer = prefix_scorer(split)
    prompts = {tuple(d[:prompt_len]) for d in docs}
    prompt_logp = {p: scorer.logp(p) for p in prompts}
    bad = [" ".join(p) for p, lp in prompt_logp.items() if lp == -math.inf]
    if bad:
        raise ValueError(f"the grammar cannot write the prompt {bad[0]!r}: fluency is conditional on the prompt")
    logp = np.array([scorer.logp(d) - prompt_logp[tuple(d[:prompt_len])] for d in docs], dtype=float)
    n_tokens = np.array([len(d) - prompt_len for d in docs], dtype=float)
    per_token = np.divide(logp, n_tokens, out=np.zeros_like(logp), where=n_tokens > 0)
    return {"logp": logp, "n_tokens": n_tokens, "logp_per_token": per_token, "in_support": np.isfinite(logp),
            "finished": np.array([d[-1] == g.EOS for d in docs])}


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


def lm_logprob(model, tokens, mask, batch_size: int = 2048):
    """The unsteered world LM's mean log-probability per token of each row of ``tokens`` [batch, T]
    (starting with ``<bos>``), over the positions where ``mask`` [batch, T] (bool) holds (position 0,
    never predicted, does not count): how likely the model itself finds the text. Returns [batch]."""
    tokens, mask = torch.as_tensor(tokens), torch.as_tensor(mask, dtype=torch.bool)
    if tokens.ndim != 2 or mask.shape != tokens.shape:
        raise ValueError(f"tokens and mask must both be [batch, T], got {list(tokens.shape)} and {list(mask.shape)}")
    out = []
    with torch.no_grad():
        for rows in torch.arange(len(tokens)).split(batch_size):
            logp = model(tokens[rows].to(model.cfg.device)).float().log_softmax(-1)[:, :-1].cpu()
            picked = logp.gather(-1, tokens[rows, 1:, None])[..., 0]
            keep = mask[rows, 1:]
            out.append((picked * keep).sum(-1) / keep.sum(-1).clamp(min=1))
    return torch.cat(out) if out else torch.zeros(0)


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
