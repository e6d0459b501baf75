"""Interventions on transcoder features in the real model: suppress or swap a state's features.

The two-hop prompts are the grammar's own two-hop sentences cut before the answer ("The capital
of the state containing Dallas is" → Austin; "Dallas is in a state whose capital is" → Austin), for
all 64 cities, 16 of which (the held-out cities) never had a two-hop sentence in training.

A state's features (:func:`state_features`) are found from the **trained** cities only: at a
position (the answer position, the last; or the city's tokens), the features of each layer that
fire on at least half of that state's prompts and on at most ``max_other`` (20 %) of the other
states' prompts (a stricter 5 % keeps only a few features per state, and the swap then moves about
half of the answers: many state features are shared by two or three states); their typical value
is their mean activation where they fire on that state's prompts. The held-out cities then test
whether the same features carry the state for cities the model never composed in training. What
these features are is checked with the ground-truth labels (:mod:`.labels`).

The feature-swap (notebook 05, section 4): at chosen positions, zero the features of the source
state ("Texas") and set the target state's features ("California") to their typical values
(:func:`swap_features`); the change of the features' decoded output is added to the MLP output of
the real model at every layer, and the real model runs on (every later layer responds, its features
are read again from the changed stream and swapped again); we read its next-token prediction.
"""
from __future__ import annotations

import dataclasses

import torch

from .transcoders import check_transcoders, input_hook, output_hook

POSITIONS = ("answer", "city")


def swap_features(acts, remove, add, values, positions):
    """A copy of ``acts`` [..., pos, d_sae] in which, at every position in ``positions`` (indices
    along the ``pos`` axis, the second to last), the features ``remove`` are set to 0 and then the
    features ``add`` to ``values`` (one value per feature of ``add``, their typical activations).
    Every other entry, and ``acts`` itself, is unchanged."""
    out = acts.clone()
    for p in positions:
        out[..., p, remove] = 0
        out[..., p, add] = values
    return out


def swap_success_rate(logits, target_tokens):
    """The fraction of prompts whose top-1 next token is the target: ``logits`` [n_prompts, d_vocab]
    (the prediction at each prompt's last position), ``target_tokens`` [n_prompts] (token ids, e.g.
    the first token of the target state's capital). Returns a float in [0, 1]."""
    return (logits.argmax(-1) == target_tokens).float().mean().item()


@dataclasses.dataclass(frozen=True)
class TwoHopPrompt:
    city: str
    state: str
    capital: str
    heldout: bool  # the city's two-hop sentences were never in training
    phrasing: int  # index into the grammar's two-hop phrasings
    text: str
    tokens: torch.Tensor  # [pos], <bos> first
    city_positions: tuple  # positions of the city's tokens
    answer: int  # the first token of the capital


def two_hop_prompts(model, phrasings=(0, 1)) -> list:
    """Every city's two-hop prompt in each of the grammar's two-hop ``phrasings`` (city-major order)."""
    from ..world import grammar as g
    from ..world import knowledge as kg

    heldout = set(kg.heldout_two_hop_cities())
    out = []
    for city, state in kg.cities().items():
        capital = kg.STATES[state][0]
        for i in phrasings:
            template = g.PHRASINGS[g.TWO_HOP][i]
            text = template.split("{o}")[0].strip().format(s=city)
            before = template.split("{s}")[0].format().strip()
            start = 1 + (len(before.split()) if before else 0)
            tokens = model.to_tokens(text)[0].cpu()
            answer = int(model.to_tokens(capital, prepend_bos=False)[0, 0])
            out.append(TwoHopPrompt(city, state, capital, city in heldout, i, text, tokens,
                                    tuple(range(start, start + len(city.split()))), answer))
    return out


def _positions(prompt: TwoHopPrompt, where: str) -> tuple:
    if where not in POSITIONS:
        raise ValueError(f"where must be one of {POSITIONS}, got {where!r}")
    return (len(prompt.tokens) - 1,) if where == "answer" else prompt.city_positions


def prompt_features(model, transcoders, prompts, where: str = "answer"):
    """[n_prompts, n_layers, d_sae]: each prompt's features at ``where`` (the largest activation over
    the city's tokens for ``"city"``), read from the real model's MLP inputs."""
    check_transcoders(transcoders)
    n = transcoders.n_layers
    out = []
    with torch.no_grad():
        for p in prompts:
            _, cache = model.run_with_cache(p.tokens[None].to(model.cfg.device),
                                            names_filter=[input_hook(l) for l in range(n)])
            pos = list(_positions(p, where))
            out.append(torch.stack([transcoders.encode_layer(cache[input_hook(l)][0, pos], l).amax(0) for l in range(n)]))
    return torch.stack(out).cpu()


@dataclasses.dataclass
class StateFeatures:
    """For every state, per layer: the indices of its features and their typical values."""

    where: str
    indices: dict  # state -> list over layers of LongTensor
    values: dict  # state -> list over layers of FloatTensor

    def count(self, state: str) -> int:
        return sum(len(i) for i in self.indices[state])


def state_features(model, transcoders, prompts, where: str = "answer", min_own: float = 0.5,
                   max_other: float = 0.2) -> StateFeatures:
    """Each state's features at ``where``, from the prompts of its **trained** cities (module docstring)."""
    trained = [p for p in prompts if not p.heldout]
    acts = prompt_features(model, transcoders, trained, where)  # [P, n, d]
    states = sorted({p.state for p in trained})
    fires = acts > 0
    of = torch.tensor([states.index(p.state) for p in trained])
    indices, values = {}, {}
    for s_i, state in enumerate(states):
        own, other = fires[of == s_i].float().mean(0), fires[of != s_i].float().mean(0)  # [n, d]
        chosen = (own >= min_own) & (other <= max_other)
        mean_on = (acts[of == s_i] * fires[of == s_i]).sum(0) / fires[of == s_i].sum(0).clamp(min=1)
        indices[state] = [chosen[l].nonzero()[:, 0] for l in range(acts.shape[1])]
        values[state] = [mean_on[l, indices[state][l]] for l in range(acts.shape[1])]
    return StateFeatures(where, indices, values)


def edit_hooks(transcoders, edit):
    """Forward hooks that run the real model with the features of every layer edited by
    ``edit(acts, layer)`` (a function returning the new [batch, pos, d_sae] features): each MLP's
    output gets the change of the transcoders' decoded output added (the transcoders' error stays)."""
    old, new = {}, {}

    def read(x, hook, l):
        old[l] = transcoders.encode_layer(x, l)
        new[l] = edit(old[l], l)

    def write(out, hook, j):
        return out + transcoders.decode_layer(new, j) - transcoders.decode_layer(old, j)

    return [h for l in range(transcoders.n_layers)
            for h in ((input_hook(l), lambda x, hook, l=l: read(x, hook, l)),
                      (output_hook(l), lambda out, hook, l=l: write(out, hook, l)))]


def run_swapped(model, transcoders, prompt: TwoHopPrompt, features: StateFeatures, targets, suppress_only=False):
    """Last-position logits [len(targets), d_vocab] of ``prompt`` with its state's features (at
    ``features.where``) swapped for each target state's (``suppress_only``: zeroed, targets ignored
    but for their number)."""
    positions = _positions(prompt, features.where)
    src = features.indices[prompt.state]
    batch = prompt.tokens[None].expand(len(targets), -1).to(model.cfg.device)

    def edit(acts, l):
        out = acts.clone()
        for b, target in enumerate(targets):
            add = features.indices[target][l][:0] if suppress_only else features.indices[target][l]
            vals = features.values[target][l][:0] if suppress_only else features.values[target][l]
            out[b] = swap_features(acts[b], src[l].to(acts.device), add.to(acts.device), vals.to(acts.device), positions)
        return out

    with torch.no_grad():
        return model.run_with_hooks(batch, fwd_hooks=edit_hooks(transcoders, edit))[:, -1].cpu()


def swap_table(model, transcoders, prompts, features: StateFeatures) -> dict:
    """For every prompt and every other state: the swap's success (top-1 = the target's capital);
    and for every prompt: whether zeroing its state's features changes the top-1 answer, and the
    probability of the right capital before and after. Returns per-prompt records."""
    from ..world import knowledge as kg

    states = sorted(kg.STATES)
    answer_of = {s: int(model.to_tokens(kg.STATES[s][0], prepend_bos=False)[0, 0]) for s in states}
    records = []
    with torch.no_grad():
        for p in prompts:
            clean = model(p.tokens[None].to(model.cfg.device))[0, -1].cpu()
            targets = [s for s in states if s != p.state]
            logits = run_swapped(model, transcoders, p, features, targets)
            success = logits.argmax(-1) == torch.tensor([answer_of[t] for t in targets])
            zeroed = run_swapped(model, transcoders, p, features, targets[:1], suppress_only=True)[0]
            records.append(dict(city=p.city, state=p.state, heldout=p.heldout, phrasing=p.phrasing,
                                clean_correct=bool(clean.argmax() == p.answer),
                                p_clean=float(clean.softmax(-1)[p.answer]), p_suppressed=float(zeroed.softmax(-1)[p.answer]),
                                suppressed_changed=bool(zeroed.argmax() != clean.argmax()),
                                swap_success=success.tolist(), targets=targets))
    return records


def summarize(records) -> dict:
    """Swap success rate, suppression figures and clean accuracy, for trained and held-out cities."""
    out = {}
    for name, keep in (("trained", False), ("heldout", True)):
        rs = [r for r in records if r["heldout"] == keep]
        pairs = [s for r in rs for s in r["swap_success"]]
        out[name] = dict(prompts=len(rs), pairs=len(pairs), swap_success=sum(pairs) / max(len(pairs), 1),
                         clean_accuracy=sum(r["clean_correct"] for r in rs) / max(len(rs), 1),
                         suppressed_changed=sum(r["suppressed_changed"] for r in rs) / max(len(rs), 1),
                         p_clean=sum(r["p_clean"] for r in rs) / max(len(rs), 1),
                         p_suppressed=sum(r["p_suppressed"] for r in rs) / max(len(rs), 1))
    return out


def predicted_ablation_effects(graph, target: int) -> torch.Tensor:
    """[n_features]: the change of the target's logit (minus the mean logit) that ``graph`` predicts
    when each of its features is zeroed: in the linear replacement (frozen attention and LayerNorm;
    error and token nodes fixed), zeroing feature ``s`` removes its edges ``A[:, s]``, and every
    feature downstream changes in proportion (``A[t, u] / a_u`` per unit of ``u``):
    ``Δ = (I − M)⁻¹ (−A[:, s])`` with ``M = A[:, features] / activations``."""
    n_f = graph.n_features
    logits = graph.slice("logit")
    row = logits.start + int((graph.logit_tokens == int(target)).nonzero()[0, 0])
    A = graph.adjacency.double()
    M = torch.zeros_like(A)
    M[:, :n_f] = A[:, :n_f] / graph.activations.double().clamp(min=1e-12)
    M[:, n_f:] = 0
    M[:n_f] *= (graph.activations > 0).double()[:, None]
    total = torch.linalg.solve(torch.eye(len(A), dtype=A.dtype) - M, -A[:, :n_f])
    return total[row].float()


def real_ablation_effects(model, transcoders, graph, target: int, batch_size: int = 32) -> torch.Tensor:
    """[n_features]: the change of the target's logit (minus the mean logit) in the **real** model
    when each of ``graph``'s features is zeroed at its (layer, position) (the transcoders' decoded
    change is added to that MLP's output; everything downstream responds, attention included)."""
    tokens = graph.tokens[None].to(model.cfg.device)
    with torch.no_grad():
        clean = model(tokens)[0, -1]
    base = float(clean[int(target)] - clean.mean())
    out = []
    feats = graph.features.tolist()
    with torch.no_grad():
        for i in range(0, len(feats), batch_size):
            chunk = feats[i:i + batch_size]

            def edit(acts, l, chunk=chunk):
                acts = acts.clone()
                for b, (fl, fp, ff) in enumerate(chunk):
                    if fl == l:
                        acts[b, fp, ff] = 0
                return acts

            logits = model.run_with_hooks(tokens.expand(len(chunk), -1), fwd_hooks=edit_hooks(transcoders, edit))[:, -1]
            out.append((logits[:, int(target)] - logits.mean(-1) - base).cpu())
    return torch.cat(out)
