"""The glass-box world: its facts, its grammar's exact probabilities and labels, its tokenizer,
and the data helpers later notebooks use."""
import collections
import math
import random

import pytest

from course_lib.world import grammar as g
from course_lib.world import knowledge as kg
from course_lib.world.data import world_tokens
from course_lib.world.tokenizer import build_tokenizer, world_words


@pytest.fixture(scope="module")
def docs():
    return g.sample_documents(4000, seed=7)


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
    assert len(heldout) == len(kg.STATES) and "Dallas" not in heldout


def test_every_document_has_one_derivation(docs):
    """Same text ⇒ same log-probability: the generator's derivations are unique."""
    seen = {}
    for d in docs + g.sample_documents(8000, seed=8):
        key = tuple(d.tokens)
        assert seen.setdefault(key, d.logp) == pytest.approx(d.logp, abs=1e-9)


def test_log_probabilities_match_sampling_frequencies():
    sample = g.sample_documents(40000, seed=9)
    counts = collections.Counter(tuple(d.tokens) for d in sample)
    logp = {tuple(d.tokens): d.logp for d in sample}
    for text, count in counts.most_common(5):
        p = math.exp(logp[text])
        sigma = math.sqrt(len(sample) * p * (1 - p))
        assert abs(count - len(sample) * p) < 4 * sigma + 1, (g.render(list(text)), count, len(sample) * p)


def test_train_split_holds_out_phrasings_and_two_hop_cities(docs):
    heldout_cities = set(kg.heldout_two_hop_cities())
    for d in docs:
        two_hop_entities = {lab["entity"] for lab in d.labels if lab["relation"] == g.TWO_HOP}
        assert not heldout_cities & two_hop_entities
    text = " ".join(g.render(d.tokens) for d in docs)  # no document of any kind shows a held-out phrasing
    for relation in ("city_state", "country_capital"):
        for subject, obj in list(kg.facts()[relation].items())[:5]:
            held = g.PHRASINGS[relation][g.heldout_phrasing(relation, subject)]
            assert g.render(held.replace("{s}", subject).replace("{o}", obj).split()) not in text
    with pytest.raises(ValueError, match="'train' or 'all'"):
        g.WorldGrammar("test")


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


def test_packed_tokens_align_with_labels():
    vocab = build_tokenizer().get_vocab()
    data = world_tokens(300, seed=1, n_ctx=96, vocab=vocab)
    assert data.tokens.shape[1] == 96 and data.labels["entity"].shape == tuple(data.tokens.shape)
    inv = {i: w for w, i in vocab.items()}
    row = data.tokens[0].tolist()
    for pos, tok_id in enumerate(row):
        if data.labels["entity"][0, pos] is not None:
            assert inv[tok_id] in data.labels["entity"][0, pos].split()
    assert data.true_logp.sum() == pytest.approx(sum(d.logp for d in
                                                     [g.WorldGrammar().sample(r) for r in [random.Random(1)] for _ in range(300)]))
    assert len(data.to_hf_dataset()) == len(data.tokens)
    first = next(data.batches(4, seed=0))
    assert first.shape == (4, 96)
    with pytest.raises(ValueError, match="positive int"):
        next(data.batches(0))
