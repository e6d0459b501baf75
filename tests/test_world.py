"""The glass-box world: its facts, its grammar's exact probabilities (checked by an independent
scorer), its held-out items (never in the training text), its labels, tokenizer and data layout."""
import collections
import math
import random

import numpy as np
import pytest
import torch

from course_lib.world import evaluate as ev
from course_lib.world import grammar as g
from course_lib.world import knowledge as kg
from course_lib.world.data import document_rows, world_tokens
from course_lib.world.scorer import Scorer
from course_lib.world.tokenizer import build_tokenizer, world_words


@pytest.fixture(scope="module")
def docs():
    return g.sample_documents(4000, seed=7)


@pytest.fixture(scope="module")
def scorers():
    return {split: Scorer(split) for split in ("train", "all")}


def test_knowledge_graph_has_the_lecture_examples_and_correct_facts():
    f = kg.facts()
    assert f["city_state"]["Dallas"] == f["city_state"]["Houston"] == "Texas"
    assert f["state_capital"]["Texas"] == "Austin" and f["state_capital"]["California"] == "Sacramento"
    assert f["city_state"]["Oakland"] == f["city_state"]["Los Angeles"] == "California"
    assert f["city_state_capital"]["Dallas"] == "Austin"
    assert f["country_capital"]["France"] == "Paris" and f["country_language"]["Brazil"] == "Portuguese"
    assert f["animal_class"]["whale"] == "mammal" and f["animal_habitat"]["camel"] == "desert"
    assert len(kg.people()) == kg.N_PEOPLE and kg.people() == kg.people()  # seeded
    names = list(kg.entity_types())
    assert len(names) == len(set(names))
    heldout = kg.heldout_two_hop_cities()
    assert len(heldout) == len(kg.STATES) == 16 and len(kg.cities()) - len(heldout) == 48
    assert "Dallas" not in heldout and "El Paso" not in heldout and "Lubbock" in heldout


# ------------------------------------------------------------------ exact probabilities
@pytest.mark.parametrize("split", ["train", "all"])
def test_independent_scorer_agrees_with_logp_and_every_text_has_one_derivation(split, scorers):
    """The scorer sums over every derivation of a text; the sampler records one. They agree on
    thousands of documents of every kind only if no choice goes unwritten (issue 12 §1)."""
    scorer, sample = scorers[split], g.sample_documents(3000, seed=11, split=split)
    assert collections.Counter(d.kind for d in sample).keys() == g.DOC_KINDS.keys()
    assert min(collections.Counter(d.kind for d in sample).values()) >= 250
    for d in sample:
        assert scorer.derivations(d.tokens) == 1, g.render(d.tokens)
        assert scorer.kind(d.tokens) == d.kind
        assert scorer.logp(d.tokens) == pytest.approx(d.logp, abs=1e-9), g.render(d.tokens)


def test_scorer_rejects_texts_the_grammar_cannot_write(scorers):
    scorer = scorers["train"]
    for words in ("Dallas is a city in Ohio . Dallas is a city in Texas .", "Dallas is a city in Texas .",
                  'Ana Silva said , " The lion does not live in the savanna . "', "I bought a lamp last week ."):
        assert scorer.logp([g.BOS, *words.split(), g.EOS]) == -math.inf, words
    assert scorer.logp(["Dallas"]) == -math.inf and scorer.derivations([]) == 0


def test_every_sentence_family_has_total_probability_one(scorers):
    for scorer in scorers.values():
        tables = [scorer.fact_table, scorer.opener_table, scorer.numbers_table, *scorer.topic_tables.values(),
                  *scorer.review_tables.values()]
        for table in tables:
            assert sum(p for p, _ in table.entries.values()) == pytest.approx(1, abs=1e-12)


class _Replay:
    """A stand-in for ``random.Random`` that replays a prefix of choices, then takes the first
    option each time, recording (choice, number of options): it walks the sampler's derivation tree."""

    def __init__(self, prefix):
        self.prefix, self.made = list(prefix), []

    def _next(self, n: int) -> int:
        k = len(self.made)
        value = self.prefix[k] if k < len(self.prefix) else 0
        self.made.append((value, n))
        return value

    def randrange(self, n):
        return self._next(n)

    def choices(self, keys, weights):
        return [keys[self._next(len(keys))]]


def _all_derivations(grammar, fixed):
    """Every derivation of the sampler whose first choices are ``fixed``."""
    prefix = list(fixed)
    while True:
        rng = _Replay(prefix)
        yield grammar.sample(rng)
        for k in range(len(rng.made) - 1, len(fixed) - 1, -1):
            value, n = rng.made[k]
            if value + 1 < n:
                prefix = [v for v, _ in rng.made[:k]] + [value + 1]
                break
        else:
            return


KIND_INDEX = {k: i for i, k in enumerate(g.DOC_KINDS)}


@pytest.mark.parametrize("fixed, mass", [
    ([KIND_INDEX["dialogue"], 2], g.DOC_KINDS["dialogue"] / 3),  # the animal negation (issue 12 §1)
    ([KIND_INDEX["numbers"], 0], g.DOC_KINDS["numbers"] / 2),  # one numbers sentence
    ([KIND_INDEX["review"], 0, 0], g.DOC_KINDS["review"] / 2 / 6),  # every review of one sentiment and product
])
def test_enumerated_sub_grammars_have_total_probability_one(fixed, mass, scorers):
    """All derivations of a sub-grammar: their probabilities sum to its mass (so the texts'
    probabilities, each summed over its derivations, sum to 1 after normalising) and each text
    has exactly one derivation, so Document.logp is the text's probability."""
    derivations = list(_all_derivations(g.WorldGrammar("train"), fixed))
    texts = {tuple(d.tokens): d.logp for d in derivations}
    assert len(texts) == len(derivations) > 500
    assert sum(math.exp(lp) for lp in texts.values()) / mass == pytest.approx(1, abs=1e-9)
    scorer = scorers["train"]
    assert sum(math.exp(scorer.logp(t)) for t in texts) / mass == pytest.approx(1, abs=1e-9)


def test_log_probabilities_match_sampling_frequencies():
    sample = g.sample_documents(20000, seed=9)
    counts = collections.Counter(tuple(d.tokens) for d in sample)
    logp = {tuple(d.tokens): d.logp for d in sample}
    for text, count in counts.most_common(5):
        p = math.exp(logp[text])
        sigma = math.sqrt(len(sample) * p * (1 - p))
        assert abs(count - len(sample) * p) < 4 * sigma + 1, (g.render(list(text)), count, len(sample) * p)


# ------------------------------------------------------------------ held-out items
def _dialogue_texts() -> list[str]:
    """Every dialogue the training grammar can write, for one answerer (the answerer's name is
    followed only by 'said ,', which begins no fact span)."""
    f, out = kg.facts(), []
    for p in sorted(kg.people()):
        for c, s in f["city_state"].items():
            out.append(f'{p} asked , " Is {c} in {s} ? " {p} said , " Yes , {c} is in {s} . "')
            out += [f'{p} asked , " Is {c} in {x} ? " {p} said , " No , {c} is not in {x} . "' for x in kg.STATES if x != s]
        out += [f'{p} asked , " What is the capital of {c} ? " {p} said , " It is {o} . "'
                for c, o in f["country_capital"].items()]
        out += [f'{p} said , " The {a} does not live in the {h} . "' for a, (_, own) in kg.ANIMALS.items()
                for h in {h for _, h in kg.ANIMALS.values()} - {own}]
    return out


def test_heldout_items_never_occur_in_the_training_text(scorers):
    """No held-out sentence, nor its fact-bearing span (subject … object), anywhere in the
    training text: neither in any sentence the training grammar can write, nor in the training
    run's own documents (issue 12 §2)."""
    items = ev.heldout_items()
    two_hop = [i for i in items if i["relation"] == g.TWO_HOP]
    assert len({i["subject"] for i in two_hop}) == 16 and len(items) == 256 + 32
    train, full = scorers["train"], scorers["all"]
    every_sentence = [" ".join(w) for s in (train,) for table in (
        s.fact_table, s.opener_table, s.numbers_table, *s.topic_tables.values(), *s.review_tables.values())
        for w in table.entries] + _dialogue_texts()
    training_docs = g.sample_documents(20000, seed=0)  # the start of the training run's own stream
    text = " " + " | ".join(every_sentence + [" ".join(d.tokens) for d in training_docs]) + " "
    for item in items:
        sentence = tuple(item["template"].replace("{s}", item["subject"]).replace("{o}", item["object"]).split())
        assert sentence in full.fact_table.entries and sentence not in train.fact_table.entries
        assert " " + " ".join(item["span"]) + " " not in text, item
    # the check is not vacuous: a trained phrasing's span is found
    trained = g.PHRASINGS["city_state"][(g.heldout_phrasing("city_state", "Dallas") + 1) % 3]
    assert " " + " ".join(ev.fact_span(trained, "Dallas", "Texas")) + " " in text


def test_train_split_holds_out_two_hop_cities(docs):
    heldout_cities = set(kg.heldout_two_hop_cities())
    for d in docs:
        assert not heldout_cities & {lab["entity"] for lab in d.labels if lab["relation"] == g.TWO_HOP}
    with pytest.raises(ValueError, match="'train' or 'all'"):
        g.WorldGrammar("test")
    with pytest.raises(ValueError, match="'train' or 'all'"):
        Scorer("test")


# ------------------------------------------------------------------ labels, tokenizer, layout
def test_every_token_carries_its_labels(docs):
    for d in docs[:500]:
        assert len(d.labels) == len(d.tokens)
        assert all(set(lab) == set(g.LABEL_FIELDS) for lab in d.labels)
    dallas = next(d for d in docs if "Dallas" in d.tokens and d.kind == "facts")
    lab = dallas.labels[dallas.tokens.index("Dallas")]
    assert lab["entity"] == "Dallas" and lab["entity_type"] == "city" and lab["pos"] == "PROPN"
    assert lab["topic"] == "facts" and lab["relation"] is not None and lab["position"] is not None
    quoted = next(d for d in docs if d.kind == "dialogue")
    assert any(lab["in_quote"] for lab in quoted.labels) and not all(lab["in_quote"] for lab in quoted.labels)
    review = next(d for d in docs if d.kind == "review")
    assert {lab["sentiment"] for lab in review.labels[1:-1]} <= {"positive", "negative"}
    plural = next(d for d in docs if "are" in d.tokens)
    assert plural.labels[plural.tokens.index("are") + 2]["number"] == "pl"


def test_tokenizer_round_trips_the_rendered_text(docs):
    tok = build_tokenizer()
    assert tok.get_vocab_size() == len(world_words()) + 4
    for d in docs[:1000]:
        assert tok.encode(g.render(d.tokens)).tokens == d.tokens[1:-1]
    assert g.render(["<bos>", "Ana", "said", ",", '"', "Yes", ".", '"', "<eos>"]) == 'Ana said, "Yes."'


def test_one_document_per_row_aligned_with_labels():
    vocab = build_tokenizer().get_vocab()
    data = world_tokens(300, seed=1, n_ctx=96, vocab=vocab)
    sample = g.sample_documents(300, seed=1)
    assert data.n_docs == 300 and data.tokens.shape == (300, max(len(d.tokens) for d in sample))
    assert data.labels["entity"].shape == tuple(data.tokens.shape)
    inv = {i: w for w, i in vocab.items()}
    for row, d in enumerate(sample):  # each row is one document from position 0, then <pad>
        assert [inv[t] for t in data.tokens[row, :len(d.tokens)].tolist()] == d.tokens
        assert (data.tokens[row, len(d.tokens):] == vocab["<pad>"]).all()
        assert list(data.labels["entity"][row, :len(d.tokens)]) == [lab["entity"] for lab in d.labels]
        assert data.labels["pos"][row, -1] == ("PAD" if len(d.tokens) < data.tokens.shape[1] else "EOS")
    assert np.allclose(data.true_logp, [d.logp for d in sample]) and list(data.kinds) == [d.kind for d in sample]
    assert len(data.to_hf_dataset()) == 300
    batches = list(data.batches(64))
    assert torch.equal(torch.cat([torch.nn.functional.pad(b, (0, data.tokens.shape[1] - b.shape[1]),
                                                          value=vocab["<pad>"]) for b in batches]), data.tokens)
    assert all(b.shape[1] == data.lengths[i * 64:(i + 1) * 64].max() for i, b in enumerate(batches))
    with pytest.raises(ValueError, match="positive int"):
        next(data.batches(0))
    with pytest.raises(ValueError, match="positive int"):
        world_tokens(0, seed=1, n_ctx=96, vocab=vocab)
    with pytest.raises(ValueError, match="does not fit n_ctx=8"):
        document_rows(sample, vocab, n_ctx=8)
    assert world_tokens(np.int64(3), seed=np.int64(1), n_ctx=96, vocab=vocab).n_docs == 3  # numpy ints


def test_length_bucketed_batches_cover_every_document_once_per_epoch():
    vocab = build_tokenizer().get_vocab()
    data = world_tokens(3000, seed=2, n_ctx=96, vocab=vocab, with_labels=False)
    rows = {tuple(r[:n].tolist()) for r, n in zip(data.tokens, data.lengths)}
    gen, seen, padded, real = data.length_bucketed_batches(1024, seed=0, pool=1000), [], 0, 0
    while sum(len(b) for b in seen) < data.n_docs:
        batch = next(gen)
        assert batch.numel() <= 1024 and batch[:, 0].eq(vocab[g.BOS]).all()
        seen.append(batch)
        padded, real = padded + batch.numel(), real + int((batch != vocab["<pad>"]).sum())
    assert sum(len(b) for b in seen) == data.n_docs  # one epoch: every document once
    got = [tuple(r[r != vocab["<pad>"]].tolist()) for b in seen for r in b]
    assert collections.Counter(got) == collections.Counter(tuple(r[:n].tolist()) for r, n in zip(data.tokens, data.lengths))
    assert set(got) == rows and real / padded > 0.95  # near-equal lengths: little compute on padding
    again = data.length_bucketed_batches(1024, seed=0, pool=1000)
    assert all(torch.equal(next(again), b) for b in seen[:5])  # seeded
    with pytest.raises(ValueError, match="at least the longest document"):
        next(data.length_bucketed_batches(10))


def test_sampling_needs_a_valid_count():
    with pytest.raises(ValueError, match="non-negative int"):
        g.sample_documents(-1)
    assert g.sample_documents(2, seed=random.Random(0).randrange(5))  # any int seed
