"""A seeded probabilistic grammar that writes the world's documents.

Every random choice is recorded, so each document comes with its **exact log-probability**;
every choice shows in the text (nothing is drawn that is not written), and different derivations
always give different token sequences (each sentence's words tell its template and fillers, each
document's first sentence tells its kind), so log p(text) = log p(derivation) and the true entropy
of the text is known. The independent :mod:`scorer` (a sum over all derivations) checks this.
Every token carries ground-truth labels (:data:`LABEL_FIELDS`).
"""
from __future__ import annotations

import dataclasses
import math
import random
import re
import zlib

from . import knowledge as kg

LABEL_FIELDS = ("entity", "entity_type", "relation", "pos", "number", "in_quote", "topic", "sentiment", "position")
DOC_KINDS = {"facts": 0.4, "topic": 0.2, "review": 0.15, "dialogue": 0.15, "numbers": 0.1}
TOPICS = ("sports", "food", "animals", "weather")
BOS, EOS = "<bos>", "<eos>"

# One-hop fact phrasings: subject first, object last, so that every one is a completion prompt.
PHRASINGS: dict[str, tuple[str, ...]] = {
    "city_state": ("{s} is a city in {o} .", "{s} is located in {o} .", "The city of {s} lies in {o} ."),
    "state_capital": ("The capital of {s} is {o} .", "{s} has its capital in {o} .",
                      "The capital city of {s} is called {o} ."),
    "country_capital": ("The capital of {s} is {o} .", "{s} has its capital in {o} .",
                        "The capital city of {s} is called {o} ."),
    "country_language": ("People in {s} speak {o} .", "The language of {s} is {o} .", "In {s} , people speak {o} ."),
    "country_continent": ("{s} is a country in {o} .", "{s} is located in {o} .", "{s} lies in {o} ."),
    "person_birthplace": ("{s} was born in {o} .", "{s} is from {o} .", "The birthplace of {s} is {o} ."),
    "person_profession": ("{s} works as a {o} .", "{s} is a {o} .", "{s} has a job as a {o} ."),
    "animal_class": ("The {s} is a {o} .", "A {s} is a kind of {o} .", "Every {s} counts as a {o} ."),
    "animal_habitat": ("The {s} lives in the {o} .", "You can find the {s} in the {o} .",
                       "The home of the {s} is the {o} ."),
    "city_state_capital": ("The capital of the state containing {s} is {o} .", "{s} is in a state whose capital is {o} ."),
}
TWO_HOP = "city_state_capital"

TOPIC_TEMPLATES = {
    "sports": ("The {team} won the game .", "{person} scored {num} goals .", "The match was {sport_adj} .",
               "Fans cheered for the {team} ."),
    "food": ("The {food} tastes {taste} .", "We cooked {food} for dinner .", "{person} likes {food} ."),
    "animals": ("The {animal} ran across the field .", "A young {animal} slept all day .",
                "Many {animals} gathered near the water ."),
    "weather": ("It is {weather} today .", "Tomorrow will be {weather} .", "The wind is {wind} this morning .",
                "It rained in {city} all week ."),
}
FILLERS = {
    "team": ("Tigers", "Sharks", "Rockets", "Giants", "Comets"), "sport_adj": ("exciting", "close", "long", "boring"),
    "num": ("two", "three", "four", "five"), "food": ("rice", "soup", "bread", "pasta", "salad", "cheese"),
    "taste": ("sweet", "salty", "sour", "spicy", "fresh"), "weather": ("sunny", "cloudy", "rainy", "cold", "warm"),
    "wind": ("strong", "calm", "gentle"), "product": ("lamp", "phone", "chair", "camera", "jacket", "book"),
    "pos_adj": ("great", "excellent", "wonderful", "perfect"), "neg_adj": ("terrible", "awful", "poor", "bad"),
}
REVIEW_OPENERS = ("I bought a {product} last week .", "My new {product} arrived today .")
REVIEW_SENTENCES = {
    "positive": ("It is {pos_adj} .", "I love it .", "I would buy it again .", "The quality is {pos_adj} ."),
    "negative": ("It is {neg_adj} .", "I hate it .", "I would not buy it again .", "The quality is {neg_adj} ."),
}
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COUNTABLE = {"apple": "apples", "dog": "dogs", "cup": "cups", "book": "books", "chair": "chairs"}

# Part of speech of every template word (slots are labelled from the entity they hold).
_POS = {
    "DET": "The the A a Every Many This",
    "NOUN": ("city capital country language people birthplace profession kind home state game goals match "
             "Fans field day water wind morning week dinner quality goals things list job " + " ".join(COUNTABLE)
             + " " + " ".join(COUNTABLE.values())),
    "VERB": "located speak lies born works has find lives scored cheered tastes cooked likes ran slept gathered "
            "rained bought arrived love hate buy count counts called asked said live won containing",
    "AUX": "is was will be would do does are",
    "ADP": "in of as for across near to all from By",
    "PRON": "I It it You We people whose My",
    "ADJ": "young new " + " ".join(FILLERS["sport_adj"] + FILLERS["taste"] + FILLERS["weather"] + FILLERS["wind"]
                                   + FILLERS["pos_adj"] + FILLERS["neg_adj"]),
    "ADV": "today Tomorrow last again this not There",
    "INTJ": "Yes No",
    "CCONJ": "and",
    "PUNCT": ". , ? : \"",
    "NUM": " ".join(NUMBER_WORDS),
    "PRON_Q": "What Where Is",
}
LEXICON = {w: ("PRON" if pos == "PRON_Q" else pos) for pos, words in _POS.items() for w in words.split()}
LEXICON.update({"need": "VERB", "its": "PRON", "can": "AUX", "Is": "AUX", "What": "PRON", "Where": "ADV",
                "There": "PRON", "In": "ADP", "People": "NOUN",
                "Every": "DET", "all": "DET", "this": "DET", "last": "ADJ"})
PLURAL_WORDS = set(COUNTABLE.values()) | {"goals", "Fans", "people", "People", "things", "are"}
SINGULAR_WORDS = set(COUNTABLE) | {"is", "was", "does", "has", "lives", "lies", "works", "tastes", "likes", "counts"}
SLOT = re.compile(r"^\{(\w+)\}$")


@dataclasses.dataclass
class Document:
    tokens: list[str]
    labels: list[dict]  # one dict per token, keys LABEL_FIELDS
    logp: float  # exact log-probability of the token sequence under the generator
    kind: str


class _Derivation:
    """Records choices (and their log-probability) and emits labelled tokens."""

    def __init__(self, rng: random.Random):
        self.rng, self.logp, self.tokens, self.labels = rng, 0.0, [BOS], [_label(pos="BOS")]

    def choose(self, options):
        options = list(options)
        self.logp -= math.log(len(options))
        return options[self.rng.randrange(len(options))]

    def choose_weighted(self, weights: dict):
        keys, probs = list(weights), list(weights.values())
        key = self.rng.choices(keys, probs)[0]
        self.logp += math.log(weights[key] / sum(probs))
        return key

    def emit(self, template: str, slots: dict | None = None, **sentence_labels) -> None:
        """Append one sentence. ``slots``: name -> (words, entity, entity_type, pos, number)."""
        slots, position, in_quote = slots or {}, 0, False
        for piece in template.split():
            match = SLOT.match(piece)
            if match:
                text, entity, etype, pos, number = slots[match.group(1)]
                words = [(w, dict(entity=entity, entity_type=etype, pos=pos, number=number)) for w in text.split()]
            else:
                if piece not in LEXICON:
                    raise ValueError(f"template word {piece!r} has no part of speech in LEXICON")
                number = "pl" if piece in PLURAL_WORDS else "sg" if piece in SINGULAR_WORDS else None
                words = [(piece, dict(pos=LEXICON[piece], number=number))]
            for word, lab in words:
                if word == '"':
                    in_quote = not in_quote
                self.tokens.append(word)
                self.labels.append(_label(**lab, in_quote=in_quote or word == '"', position=position, **sentence_labels))
                position += 1

    def document(self, kind: str) -> Document:
        self.tokens.append(EOS)
        self.labels.append(_label(pos="EOS"))
        return Document(self.tokens, self.labels, self.logp, kind)


def _label(**values) -> dict:
    return {f: values.get(f, False if f == "in_quote" else None) for f in LABEL_FIELDS}


def heldout_phrasing(relation: str, subject: str) -> int:
    """Index of the phrasing of this fact that training never shows (stable across runs)."""
    return zlib.crc32(f"{relation}|{subject}".encode()) % len(PHRASINGS[relation])


class WorldGrammar:
    """Samples documents. ``split='train'`` leaves out, exactly (probabilities renormalised), the
    held-out phrasing of every one-hop fact and the two-hop sentences of the held-out cities."""

    def __init__(self, split: str = "train"):
        if split not in ("train", "all"):
            raise ValueError(f"split must be 'train' or 'all', got {split!r}")
        self.split, self.facts, self.types = split, kg.facts(), kg.entity_types()
        self.people = sorted(kg.people())
        self.heldout_cities = set(kg.heldout_two_hop_cities())

    # --------------------------------------------------------------- slots
    def _entity(self, name: str, etype: str | None = None, number: str = "sg"):
        etype = etype or self.types[name]
        pos = "NOUN" if etype in ("animal", "animal_class", "habitat", "profession") else "PROPN"
        return (name, name, etype, pos, number)

    @staticmethod
    def _word(word: str, pos: str = "NOUN", number: str | None = None):
        return (word, None, None, pos, number)

    # --------------------------------------------------------------- sentences
    def fact_subjects(self, relation: str) -> list[str]:
        subjects = sorted(self.facts[relation])
        if relation == TWO_HOP and self.split == "train":
            subjects = [s for s in subjects if s not in self.heldout_cities]
        return subjects

    def fact_phrasings(self, relation: str, subject: str) -> list[int]:
        indices = list(range(len(PHRASINGS[relation])))
        if self.split == "train" and relation != TWO_HOP:
            indices.remove(heldout_phrasing(relation, subject))
        return indices

    def _fact(self, d: _Derivation) -> None:
        relation = d.choose(sorted(PHRASINGS))
        subject = d.choose(self.fact_subjects(relation))
        template = PHRASINGS[relation][d.choose(self.fact_phrasings(relation, subject))]
        obj = self.facts[relation][subject]
        d.emit(template, {"s": self._entity(subject), "o": self._entity(obj)}, relation=relation, topic="facts")

    def _topic_sentence(self, d: _Derivation, topic: str) -> None:
        template = d.choose(TOPIC_TEMPLATES[topic])
        slots = {}
        for slot in re.findall(r"\{(\w+)\}", template):
            if slot == "person":
                slots[slot] = self._entity(d.choose(self.people))
            elif slot == "city":
                slots[slot] = self._entity(d.choose(sorted(kg.cities())))
            elif slot == "animal":
                slots[slot] = self._entity(d.choose(sorted(kg.ANIMALS)))
            elif slot == "animals":
                a = d.choose(sorted(kg.ANIMALS))
                slots[slot] = self._entity(kg.ANIMAL_PLURALS[a], "animal", "pl")
            else:
                pos = {"team": "PROPN", "num": "NUM", "food": "NOUN"}.get(slot, "ADJ")
                slots[slot] = self._word(d.choose(FILLERS[slot]), pos, "pl" if slot == "team" else None)
        d.emit(template, slots, topic=topic)

    def _review(self, d: _Derivation) -> None:
        sentiment = d.choose(sorted(REVIEW_SENTENCES))
        product = self._word(d.choose(FILLERS["product"]), "NOUN", "sg")
        d.emit(d.choose(REVIEW_OPENERS), {"product": product}, topic="review", sentiment=sentiment)
        for _ in range(d.choose((1, 2, 3))):
            template = d.choose(REVIEW_SENTENCES[sentiment])
            adj = "pos_adj" if sentiment == "positive" else "neg_adj"
            slots = {adj: self._word(d.choose(FILLERS[adj]), "ADJ")} if "{" in template else {}
            d.emit(template, slots, topic="review", sentiment=sentiment)

    def _dialogue(self, d: _Derivation) -> None:
        # Only people who speak are drawn: an unwritten choice would give one text many derivations.
        kind = d.choose(("city_question", "capital_question", "animal_negation"))
        asker = self._entity(d.choose(self.people))
        if kind in ("city_question", "capital_question"):
            answerer = self._entity(d.choose(self.people))
        if kind == "city_question":
            city = d.choose(sorted(kg.cities()))
            true_state = self.facts["city_state"][city]
            asked = true_state if d.choose((True, False)) else d.choose(sorted(s for s in kg.STATES if s != true_state))
            slots = {"p": asker, "q": answerer, "c": self._entity(city), "s": self._entity(asked)}
            d.emit('{p} asked , " Is {c} in {s} ? "', slots, relation="city_state", topic="dialogue")
            # "C is in S" is no one-hop phrasing (so never held out); it helps "C is in a state whose capital is"
            answer = ('{q} said , " Yes , {c} is in {s} . "' if asked == true_state
                      else '{q} said , " No , {c} is not in {s} . "')
            d.emit(answer, slots, relation="city_state", topic="dialogue")
        elif kind == "capital_question":
            country = d.choose(sorted(kg.COUNTRIES))
            slots = {"p": asker, "q": answerer, "c": self._entity(country),
                     "o": self._entity(self.facts["country_capital"][country])}
            d.emit('{p} asked , " What is the capital of {c} ? "', slots, relation="country_capital", topic="dialogue")
            d.emit('{q} said , " It is {o} . "', slots, relation="country_capital", topic="dialogue")
        else:
            animal = d.choose(sorted(kg.ANIMALS))
            habitats = sorted({h for _, h in kg.ANIMALS.values()} - {kg.ANIMALS[animal][1]})
            slots = {"p": asker, "a": self._entity(animal), "h": self._entity(d.choose(habitats), "habitat")}
            d.emit('{p} said , " The {a} does not live in the {h} . "', slots, relation="animal_habitat", topic="dialogue")

    def _numbers(self, d: _Derivation) -> None:
        kind = d.choose(("count", "agreement", "list"))
        if kind == "count":
            n = d.choose(range(3, 10))
            words = " , ".join(NUMBER_WORDS[:n])
            d.emit(f"I count to {{n}} : {words} .", {"n": self._word(NUMBER_WORDS[n - 1], "NUM")}, topic="numbers")
        elif kind == "agreement":
            noun = d.choose(sorted(COUNTABLE))
            n = d.choose(range(1, 10))
            if n == 1:
                d.emit(f"There is one {noun} .", topic="numbers")
            else:
                d.emit(f"There are {{n}} {COUNTABLE[noun]} .", {"n": self._word(NUMBER_WORDS[n - 1], "NUM", "pl")},
                       topic="numbers")
        else:
            n = d.choose((2, 3, 4))
            items, pool = [], sorted(FILLERS["food"])
            for _ in range(n):
                items.append(d.choose(pool))
                pool.remove(items[-1])
            listed = " , ".join(f"{{i{k}}}" for k in range(n - 1)) + f" and {{i{n - 1}}}"
            slots = {f"i{k}": self._word(w, "NOUN") for k, w in enumerate(items)}
            slots["n"] = self._word(NUMBER_WORDS[n - 1], "NUM", "pl")
            d.emit(f"We need {{n}} things : {listed} .", slots, topic="numbers")

    # --------------------------------------------------------------- documents
    def sample(self, rng: random.Random) -> Document:
        d = _Derivation(rng)
        kind = d.choose_weighted(DOC_KINDS)
        if kind == "facts":
            for _ in range(d.choose((2, 3, 4, 5))):
                self._fact(d)
        elif kind == "topic":
            topic = d.choose(TOPICS)
            for _ in range(d.choose((2, 3, 4))):
                self._topic_sentence(d, topic)
        elif kind == "review":
            self._review(d)
        elif kind == "dialogue":
            self._dialogue(d)
        else:
            for _ in range(d.choose((1, 2))):
                self._numbers(d)
        return d.document(kind)


def sample_documents(n: int, seed: int = 0, split: str = "train") -> list[Document]:
    """``n`` documents from a seeded generator."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    grammar, rng = WorldGrammar(split), random.Random(seed)
    return [grammar.sample(rng) for _ in range(n)]


def render(tokens: list[str]) -> str:
    """Readable text: no space before punctuation, quotes hug what they quote."""
    out, in_quote = "", False
    for tok in tokens:
        if tok in (BOS, EOS):
            continue
        if tok == '"':
            in_quote = not in_quote
            out += (" " if out and in_quote else "") + tok
        elif not out or tok in ".,?:" or out.endswith('"') and in_quote:
            out += tok
        else:
            out += " " + tok
    return out
