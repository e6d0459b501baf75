"""How good is the world LM? Scored against the generator's ground truth."""
from __future__ import annotations

import random

from . import grammar as g
from . import knowledge as kg

EVAL_SEED = 12_345


def prompt_words(template: str, subject: str) -> tuple[list[str], str]:
    """Words of a fact phrasing up to (not including) its object slot, with the subject filled in."""
    before = template.split("{o}")[0].replace("{s}", subject)
    return before.split(), template


def greedy_completion(model, words: list[str], n_tokens: int) -> list[str]:
    """Greedy continuation of ``<bos> words`` by ``n_tokens`` tokens."""
    import torch

    vocab = model.tokenizer.get_vocab()
    ids = [vocab[g.BOS]] + [vocab[w] for w in words]
    out = []
    with torch.no_grad():
        for _ in range(n_tokens):
            nxt = int(model(torch.tensor([ids], device=model.cfg.device))[0, -1].argmax())
            ids.append(nxt)
            out.append(model.tokenizer.convert_ids_to_tokens(nxt))
    return out


def completes(model, words: list[str], answer: str) -> bool:
    return greedy_completion(model, words, len(answer.split())) == answer.split()


def one_hop_recall(model) -> dict:
    """Greedy recall of every one-hop fact in its held-out phrasing (never seen in training)."""
    facts, per_relation = kg.facts(), {}
    for relation, table in facts.items():
        if relation == g.TWO_HOP:
            continue
        hits = [completes(model, prompt_words(g.PHRASINGS[relation][g.heldout_phrasing(relation, s)], s)[0], o)
                for s, o in table.items()]
        per_relation[relation] = round(sum(hits) / len(hits), 4)
    n = {r: len(facts[r]) for r in per_relation}
    overall = sum(per_relation[r] * n[r] for r in n) / sum(n.values())
    return {"overall": round(overall, 4), "per_relation": per_relation}


def two_hop(model) -> dict:
    """Completion of 'The capital of the state containing CITY is' (both phrasings) → capital."""
    table, heldout = kg.facts()[g.TWO_HOP], set(kg.heldout_two_hop_cities())

    def accuracy(cities):
        hits = [completes(model, prompt_words(t, c)[0], table[c]) for c in cities for t in g.PHRASINGS[g.TWO_HOP]]
        return round(sum(hits) / len(hits), 4)

    return {"trained": accuracy(sorted(set(table) - heldout)), "heldout": accuracy(sorted(heldout))}


def entropy_gap(model, n_docs: int = 2000, seed: int = EVAL_SEED) -> dict:
    """Held-out LM loss vs the generator's exact entropy, per predicted token."""
    import torch

    vocab = model.tokenizer.get_vocab()
    grammar, rng = g.WorldGrammar("train"), random.Random(seed)
    docs = [grammar.sample(rng) for _ in range(n_docs)]
    nll, true, count = 0.0, 0.0, 0
    with torch.no_grad():
        for i in range(0, n_docs, 64):
            batch = docs[i:i + 64]
            width = max(len(d.tokens) for d in batch)
            ids = torch.tensor([[vocab[t] for t in d.tokens] + [vocab["<pad>"]] * (width - len(d.tokens)) for d in batch])
            logp = model(ids.to(model.cfg.device)).log_softmax(-1)[:, :-1].cpu()
            targets = ids[:, 1:]
            picked = logp.gather(-1, targets[..., None])[..., 0]
            mask = targets != vocab["<pad>"]
            nll -= picked[mask].sum().item()
            true -= sum(d.logp for d in batch)
            count += int(mask.sum())
    return {"lm_loss": round(nll / count, 4), "true_entropy": round(true / count, 4),
            "excess": round((nll - true) / count, 4), "n_docs": n_docs, "n_tokens": count}


def all_metrics(model) -> dict:
    return {"d_vocab": model.cfg.d_vocab, "entropy": entropy_gap(model), "one_hop_recall": one_hop_recall(model),
            "two_hop": two_hop(model)}
