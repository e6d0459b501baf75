"""How good is the world LM? Scored against the generator's ground truth.

The true entropy comes from the independent :class:`scorer.Scorer` (a sum over derivations), and
the model is evaluated in the layout it was trained in (one document per row, from position 0).
"""
from __future__ import annotations

import math

import numpy as np

from . import grammar as g
from . import knowledge as kg

EVAL_SEED = 12_345
EVAL_DOCS = 4000


def prompt_words(template: str, subject: str) -> tuple[list[str], str]:
    """Words of a fact phrasing up to (not including) its object slot, with the subject filled in."""
    before = template.split("{o}")[0].replace("{s}", subject)
    return before.split(), template


def fact_span(template: str, subject: str, obj: str) -> list[str]:
    """The fact-bearing words of a filled phrasing: from the subject's first word to the object's last."""
    head, tail = template.split("{s}")
    words = (head.split(), subject.split(), tail.split("{o}")[0].split(), obj.split())
    return [w for part in words[1:] for w in part]


def heldout_items() -> list[dict]:
    """Every held-out item: the held-out phrasing of each one-hop fact, and both two-hop phrasings
    of each held-out city. Training text contains none of their fact-bearing spans."""
    items = []
    for relation, table in kg.facts().items():
        for s, o in table.items():
            if relation == g.TWO_HOP:
                templates = g.PHRASINGS[relation] if s in kg.heldout_two_hop_cities() else ()
            else:
                templates = (g.PHRASINGS[relation][g.heldout_phrasing(relation, s)],)
            items += [dict(relation=relation, subject=s, object=o, template=t, span=fact_span(t, s, o)) for t in templates]
    return items


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
    per_relation, n = {}, {}
    items = [i for i in heldout_items() if i["relation"] != g.TWO_HOP]
    for relation in dict.fromkeys(i["relation"] for i in items):
        hits = [completes(model, prompt_words(i["template"], i["subject"])[0], i["object"])
                for i in items if i["relation"] == relation]
        per_relation[relation], n[relation] = round(sum(hits) / len(hits), 4), len(hits)
    overall = sum(per_relation[r] * n[r] for r in n) / sum(n.values())
    return {"overall": round(overall, 4), "per_relation": per_relation, "n_facts": sum(n.values())}


def two_hop(model) -> dict:
    """Completion of both two-hop phrasings ('The capital of the state containing CITY is') → capital,
    for the cities trained as two-hop and for the held-out cities (never seen as two-hop)."""
    table, heldout = kg.facts()[g.TWO_HOP], set(kg.heldout_two_hop_cities())

    def accuracy(cities):
        hits = [completes(model, prompt_words(t, c)[0], table[c]) for c in cities for t in g.PHRASINGS[g.TWO_HOP]]
        return round(sum(hits) / len(hits), 4)

    trained = sorted(set(table) - heldout)
    n = len(g.PHRASINGS[g.TWO_HOP])
    return {"trained": accuracy(trained), "heldout": accuracy(sorted(heldout)),
            "trained_cities": len(trained), "heldout_cities": len(heldout),
            "trained_prompts": n * len(trained), "heldout_prompts": n * len(heldout)}


def _ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """sum(num) / sum(den) over documents, and its standard error (documents are independent)."""
    r = num.sum() / den.sum()
    se = math.sqrt(((num - r * den) ** 2).sum() / (len(num) * (len(num) - 1))) / den.mean() if len(num) > 1 else math.nan
    return float(r), float(se)


def document_nll(model, data, batch_size: int = 64) -> np.ndarray:
    """The model's summed next-token loss (nats) of each row's document (pad targets masked)."""
    import torch

    pad = model.tokenizer.pad_token_id
    out = []
    with torch.no_grad():
        for batch in data.batches(batch_size):
            batch = batch.to(model.cfg.device)
            logp = model(batch).log_softmax(-1)[:, :-1]
            targets = batch[:, 1:]
            picked = logp.gather(-1, targets[..., None])[..., 0].masked_fill(targets == pad, 0.0)
            out.append(-picked.sum(1).double().cpu().numpy())
    return np.concatenate(out)


def entropy_gap(model, n_docs: int = EVAL_DOCS, seed: int = EVAL_SEED) -> dict:
    """Held-out LM loss vs the text's exact entropy (from the independent scorer), per predicted
    token, overall and per document kind, with standard errors over documents."""
    from .data import document_rows
    from .scorer import Scorer

    docs, scorer = g.sample_documents(n_docs, seed), Scorer("train")
    data = document_rows(docs, model.tokenizer.get_vocab(), model.cfg.n_ctx, with_labels=False)
    true_nll = np.array([-scorer.logp(d.tokens) for d in docs])
    nll, n_pred = document_nll(model, data), data.lengths - 1.0
    out = {"n_docs": n_docs, "n_tokens": int(n_pred.sum())}
    loss, _ = _ratio(nll, n_pred)
    true, _ = _ratio(true_nll, n_pred)
    excess, se = _ratio(nll - true_nll, n_pred)
    out |= {"lm_loss": round(loss, 4), "true_entropy": round(true, 4), "excess": round(excess, 4), "excess_se": round(se, 4)}
    out["per_kind"] = {}
    for kind in g.DOC_KINDS:
        m = data.kinds == kind
        loss, _ = _ratio(nll[m], n_pred[m])
        true, _ = _ratio(true_nll[m], n_pred[m])
        excess, se = _ratio(nll[m] - true_nll[m], n_pred[m])
        out["per_kind"][kind] = {"n_docs": int(m.sum()), "n_tokens": int(n_pred[m].sum()), "lm_loss": round(loss, 4),
                                 "true_entropy": round(true, 4), "excess": round(excess, 4), "excess_se": round(se, 4)}
    return out


def all_metrics(model) -> dict:
    return {"d_vocab": model.cfg.d_vocab, "entropy": entropy_gap(model), "one_hop_recall": one_hop_recall(model),
            "two_hop": two_hop(model)}
