"""An independent scorer of world text: the probability of a token sequence **summed over every
derivation** the grammar has for it, and the number of those derivations.

It shares no code path with the sampler (:class:`grammar.WorldGrammar`): it reads only the
grammar's tables (templates, fillers, document-kind weights, the held-out split) and the knowledge
graph, enumerates every sentence of each sentence family into a table (text → summed probability,
number of derivations), and parses a document as a sequence of such sentences. So it checks the
sampler's claim that ``Document.logp`` is the exact log-probability of the text: the two agree,
and every text has exactly one derivation, only if the sampler never makes a choice the text does
not show.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict

from . import grammar as g
from . import knowledge as kg

# (summed probability, number of derivations)
Weight = tuple[float, int]


def _words(template: str, values: dict[str, str]) -> tuple[str, ...]:
    out = []
    for piece in template.split():
        out += values[piece[1:-1]].split() if piece.startswith("{") and piece.endswith("}") else [piece]
    return tuple(out)


class _Table:
    """Every sentence of a family: words → (summed probability, number of derivations)."""

    def __init__(self):
        self.entries: dict[tuple[str, ...], list] = defaultdict(lambda: [0.0, 0])

    def add(self, words: tuple[str, ...], p: float) -> None:
        entry = self.entries[words]
        entry[0] += p
        entry[1] += 1

    def matches(self, tokens: list[str], i: int):
        """(end, weight) of every sentence of the table that starts at ``tokens[i]``."""
        for length in self.lengths:
            entry = self.entries.get(tuple(tokens[i:i + length]))
            if entry is not None:
                yield i + length, (entry[0], entry[1])

    def freeze(self) -> _Table:
        self.entries = dict(self.entries)
        self.lengths = sorted({len(w) for w in self.entries})
        return self


def _sequence(table: _Table, counts: dict[int, float], tokens: list[str], start: int, end: int) -> Weight:
    """Weight of ``tokens[start:end]`` read as n sentences of ``table`` (n drawn with probability
    ``counts[n]``)."""
    reach, p_total, n_total = {start: (1.0, 1)}, 0.0, 0
    for k in range(1, max(counts) + 1):
        nxt = defaultdict(lambda: [0.0, 0])
        for pos, (p, n) in reach.items():
            for stop, (tp, tn) in table.matches(tokens, pos):
                if stop <= end:
                    nxt[stop][0] += p * tp
                    nxt[stop][1] += n * tn
        reach = {pos: tuple(w) for pos, w in nxt.items()}
        if k in counts and end in reach:
            p_total += counts[k] * reach[end][0]
            n_total += reach[end][1]
    return p_total, n_total


def _uniform(options) -> dict[int, float]:
    return {n: 1 / len(options) for n in options}


class Scorer:
    """``logp(tokens)``: log of the total probability of the text under the grammar (``-inf`` if
    the grammar cannot write it); ``derivations(tokens)``: how many derivations write it."""

    def __init__(self, split: str = "train"):
        if split not in ("train", "all"):
            raise ValueError(f"split must be 'train' or 'all', got {split!r}")
        self.split, self.facts = split, kg.facts()
        self.people = sorted(kg.people())
        self.fact_table = self._fact_table()
        self.topic_tables = {t: self._topic_table(t) for t in g.TOPICS}
        self.opener_table, self.review_tables = self._review_tables()
        self.numbers_table = self._numbers_table()

    # ------------------------------------------------------------------ sentence tables
    def _fact_table(self) -> _Table:
        table, relations = _Table(), sorted(g.PHRASINGS)
        heldout_cities = set(kg.heldout_two_hop_cities())
        for relation in relations:
            subjects = sorted(self.facts[relation])
            if relation == g.TWO_HOP and self.split == "train":
                subjects = [s for s in subjects if s not in heldout_cities]
            for s in subjects:
                phrasings = list(range(len(g.PHRASINGS[relation])))
                if self.split == "train" and relation != g.TWO_HOP:
                    phrasings.remove(g.heldout_phrasing(relation, s))
                for i in phrasings:
                    p = 1 / len(relations) / len(subjects) / len(phrasings)
                    table.add(_words(g.PHRASINGS[relation][i], {"s": s, "o": self.facts[relation][s]}), p)
        return table.freeze()

    def _slot_values(self, slot: str) -> list[str]:
        if slot == "person":
            return self.people
        if slot == "city":
            return sorted(kg.cities())
        if slot == "animal":
            return sorted(kg.ANIMALS)
        if slot == "animals":
            return [kg.ANIMAL_PLURALS[a] for a in sorted(kg.ANIMALS)]
        return list(g.FILLERS[slot])

    def _filled(self, table: _Table, template: str, p: float) -> None:
        """Add every filling of ``template``'s slots (each slot uniform over its values)."""
        slots = [piece[1:-1] for piece in template.split() if piece.startswith("{")]
        values = [self._slot_values(s) for s in slots]
        p_each = p / math.prod(len(v) for v in values)
        for combo in itertools.product(*values):
            table.add(_words(template, dict(zip(slots, combo))), p_each)

    def _topic_table(self, topic: str) -> _Table:
        table, templates = _Table(), g.TOPIC_TEMPLATES[topic]
        for template in templates:
            self._filled(table, template, 1 / len(templates))
        return table.freeze()

    def _review_tables(self):
        openers = _Table()
        for template in g.REVIEW_OPENERS:
            self._filled(openers, template, 1 / len(g.REVIEW_OPENERS))
        sentences = {}
        for sentiment, templates in g.REVIEW_SENTENCES.items():
            sentences[sentiment] = _Table()
            for template in templates:
                self._filled(sentences[sentiment], template, 1 / len(templates))
            sentences[sentiment].freeze()
        return openers.freeze(), sentences

    def _numbers_table(self) -> _Table:
        table, p_kind, numbers = _Table(), 1 / 3, g.NUMBER_WORDS
        for n in range(3, 10):  # counting
            table.add(tuple(f"I count to {numbers[n - 1]} :".split()) + tuple(" , ".join(numbers[:n]).split())
                      + (".",), p_kind / 7)
        for noun, plural in g.COUNTABLE.items():  # agreement
            for n in range(1, 10):
                words = f"There is one {noun} ." if n == 1 else f"There are {numbers[n - 1]} {plural} ."
                table.add(tuple(words.split()), p_kind / len(g.COUNTABLE) / 9)
        foods = sorted(g.FILLERS["food"])
        for n in (2, 3, 4):  # lists: n foods without replacement, in the order drawn
            for items in itertools.permutations(foods, n):
                listed = " , ".join(items[:-1]) + f" and {items[-1]}"
                table.add(tuple(f"We need {numbers[n - 1]} things : {listed} .".split()),
                          p_kind / 3 / math.perm(len(foods), n))
        return table.freeze()

    # ------------------------------------------------------------------ dialogue
    @staticmethod
    def _match(tokens: list[str], i: int, options):
        """(option, end) for every option (a string of words) that ``tokens`` show at ``i``."""
        for option in options:
            words = option.split()
            if tokens[i:i + len(words)] == words:
                yield option, i + len(words)

    @staticmethod
    def _literal(tokens: list[str], i: int, words: str) -> int | None:
        words = words.split()
        return i + len(words) if tokens[i:i + len(words)] == words else None

    def _dialogue(self, tokens: list[str], start: int, end: int) -> Weight:
        p_total, n_total, people = 0.0, 0, self.people
        city_state, states = self.facts["city_state"], sorted(kg.STATES)
        n_people = len(people)
        for _, i in self._match(tokens, start, people):  # the asker
            # a city question and its answer
            j = self._literal(tokens, i, 'asked , " Is')
            if j is not None:
                for city, k in self._match(tokens, j, sorted(city_state)):
                    k = self._literal(tokens, k, "in")
                    for state, m in self._match(tokens, k, states) if k is not None else ():
                        m = self._literal(tokens, m, '? "')
                        for _, q in self._match(tokens, m, people) if m is not None else ():
                            true = city_state[city]
                            answer = (f'said , " Yes , {city} is in {state} . "' if state == true
                                      else f'said , " No , {city} is not in {state} . "')
                            if self._literal(tokens, q, answer) == end:
                                p_asked = 1 / 2 if state == true else 1 / 2 / (len(states) - 1)
                                p_total += 1 / 3 / n_people / n_people / len(city_state) * p_asked
                                n_total += 1
            # a capital question and its answer
            j = self._literal(tokens, i, 'asked , " What is the capital of')
            if j is not None:
                for country, k in self._match(tokens, j, sorted(kg.COUNTRIES)):
                    k = self._literal(tokens, k, '? "')
                    for _, q in self._match(tokens, k, people) if k is not None else ():
                        capital = self.facts["country_capital"][country]
                        if self._literal(tokens, q, f'said , " It is {capital} . "') == end:
                            p_total += 1 / 3 / n_people / n_people / len(kg.COUNTRIES)
                            n_total += 1
            # an animal negation
            j = self._literal(tokens, i, 'said , " The')
            if j is not None:
                for animal, k in self._match(tokens, j, sorted(kg.ANIMALS)):
                    wrong = sorted({h for _, h in kg.ANIMALS.values()} - {kg.ANIMALS[animal][1]})
                    k = self._literal(tokens, k, "does not live in the")
                    for _, m in self._match(tokens, k, wrong) if k is not None else ():
                        if self._literal(tokens, m, '. "') == end:
                            p_total += 1 / 3 / n_people / len(kg.ANIMALS) / len(wrong)
                            n_total += 1
        return p_total, n_total

    # ------------------------------------------------------------------ documents
    def _weights(self, tokens: list[str]) -> dict[str, Weight]:
        """Per document kind: the summed probability and number of derivations of ``tokens``."""
        tokens = list(tokens)
        if len(tokens) < 2 or tokens[0] != g.BOS or tokens[-1] != g.EOS:
            return {}
        start, end = 1, len(tokens) - 1
        total = sum(g.DOC_KINDS.values())
        out = {"facts": _sequence(self.fact_table, _uniform((2, 3, 4, 5)), tokens, start, end)}
        p, n = 0.0, 0
        for topic in g.TOPICS:
            tp, tn = _sequence(self.topic_tables[topic], _uniform((2, 3, 4)), tokens, start, end)
            p, n = p + tp / len(g.TOPICS), n + tn
        out["topic"] = (p, n)
        p, n = 0.0, 0
        for sentiment in sorted(g.REVIEW_SENTENCES):
            for stop, (op, on) in self.opener_table.matches(tokens, start):
                sp, sn = _sequence(self.review_tables[sentiment], _uniform((1, 2, 3)), tokens, stop, end)
                p, n = p + op * sp / len(g.REVIEW_SENTENCES), n + on * sn
        out["review"] = (p, n)
        out["dialogue"] = self._dialogue(tokens, start, end)
        out["numbers"] = _sequence(self.numbers_table, _uniform((1, 2)), tokens, start, end)
        return {kind: (g.DOC_KINDS[kind] / total * p, n) for kind, (p, n) in out.items() if n}

    def logp(self, tokens: list[str]) -> float:
        p = sum(p for p, _ in self._weights(tokens).values())
        return math.log(p) if p > 0 else -math.inf

    def derivations(self, tokens: list[str]) -> int:
        return sum(n for _, n in self._weights(tokens).values())

    def kind(self, tokens: list[str]) -> str | None:
        """The document kind that writes ``tokens`` (None if none or several can)."""
        kinds = list(self._weights(tokens))
        return kinds[0] if len(kinds) == 1 else None
