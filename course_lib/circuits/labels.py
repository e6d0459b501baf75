"""Ground-truth labels for the state features of the two-hop circuit.

(Every feature's best label on world text, notebook 03's explainer, is :func:`.graph.label_features`.)
Token-local labels cannot say which *state* a prompt is about when no state is written ("The
capital of the state containing Dallas is"), and world text holds few such positions. So the state
features of the two-hop circuit are labelled on **probe prompts** built from the grammar's own fact
phrasings, whose ground truth is known (:func:`probe_prompts`): "Dallas is a city in" (next: Texas),
"The capital of Texas is" (next: Austin), "The capital of the state containing Dallas is" (next:
Austin, the state never written). At their last position every feature is scored (F1) against:
``state = S`` (the prompt is about S, in all three kinds: a *Texas* feature), ``next = capital of S``
(kinds 2 and 3: a *say Austin* feature), ``next = S`` (kind 1: *say Texas*), ``next is a capital``
(kinds 2 and 3, any state: *say a capital*), ``next is a state`` (kind 1, any state).
"""
from __future__ import annotations

import dataclasses

import torch

from .transcoders import check_transcoders, input_hook

KINDS = {"state": "state = ", "say capital": "next = capital of ", "say state": "next = ",
         "say a capital": "next is a capital", "say a state": "next is a state"}


@dataclasses.dataclass
class ProbeLabels:
    """``names[l][f]``: the probe predicate with the best F1 for feature ``f`` of layer ``l`` (``""``
    when the feature never fires on the probe prompts), ``f1[l, f]`` that F1."""

    names: list
    f1: torch.Tensor

    def kind(self, layer: int, feature: int) -> str:
        """``"state"``, ``"say capital"``, ``"say state"``, ``"say a capital"``, ``"say a state"`` or ``"none"``."""
        name = self.names[layer][feature]
        for kind, prefix in sorted(KINDS.items(), key=lambda kv: -len(kv[1])):
            if name.startswith(prefix):
                return kind
        return "none"

    def label(self, layer: int, feature: int) -> str:
        return f"L{layer}/{feature} {self.names[layer][feature] or '(silent)'} (F1 {float(self.f1[layer, feature]):.2f})"


def probe_prompts(model) -> list:
    """``(tokens, state, kind)`` for every city's ``city_state`` prompt and every state's
    ``state_capital`` prompt in each of the grammar's phrasings, and every two-hop prompt."""
    from ..world import grammar as g
    from ..world import knowledge as kg

    out = []
    for relation, subjects, kind in (("city_state", kg.cities(), "city_state"),
                                     ("state_capital", {s: s for s in kg.STATES}, "state_capital"),
                                     (g.TWO_HOP, kg.cities(), "two_hop")):
        for subject, state in subjects.items():
            for template in g.PHRASINGS[relation]:
                text = template.split("{o}")[0].strip().format(s=subject)
                out.append((model.to_tokens(text)[0].cpu(), state, kind))
    return out


def probe_labels(model, transcoders) -> ProbeLabels:
    """Label every feature by the probe predicate (module docstring) it fires for best (F1)."""
    from ..interpretation import precision_recall_f1
    from ..world import knowledge as kg

    check_transcoders(transcoders)
    prompts, n = probe_prompts(model), transcoders.n_layers
    fires = torch.zeros(n, len(prompts), transcoders.d_sae, dtype=torch.bool)
    with torch.no_grad():
        for i, (tokens, _, _) in enumerate(prompts):
            _, cache = model.run_with_cache(tokens[None].to(model.cfg.device),
                                            names_filter=[input_hook(l) for l in range(n)])
            for l in range(n):
                x = cache[input_hook(l)][0, -1]
                fires[l, i] = (transcoders.encode_layer(x, l) > 0).cpu()
    names, columns = [], []
    says_capital = torch.tensor([k != "city_state" for _, _, k in prompts])
    for state in kg.STATES:
        of = torch.tensor([s == state for _, s, _ in prompts])
        names += [f"state = {state}", f"next = capital of {state} ({kg.STATES[state][0]})", f"next = {state}"]
        columns += [of, of & says_capital, of & ~says_capital]
    names += ["next is a capital", "next is a state"]
    columns += [says_capital, ~says_capital]
    matrix = torch.stack(columns, 1)
    out_names, out_f1 = [], []
    for l in range(n):
        _, _, f1 = precision_recall_f1(fires[l], matrix)
        best_f1, best = f1.max(1)
        silent = ~fires[l].any(0)
        out_names.append(["" if silent[f] else names[j] for f, j in enumerate(best.tolist())])
        out_f1.append(torch.where(silent, torch.zeros_like(best_f1), best_f1))
    return ProbeLabels(out_names, torch.stack(out_f1))


def kinds_table(labels: ProbeLabels, features, states=None) -> dict:
    """For :class:`~.interventions.StateFeatures`: how many of the chosen states' features (default
    all) carry each kind of probe label, counting only labels about the feature's own state (or about
    no state: *say a capital*, *say a state*); ``"other state"`` counts labels about another state."""
    counts = dict.fromkeys([*KINDS, "other state", "none"], 0)
    for state in states or features.indices:
        for l, idx in enumerate(features.indices[state]):
            for f in idx.tolist():
                kind, name = labels.kind(l, f), labels.names[l][f]
                own = kind in ("say a capital", "say a state", "none") or name.split(" (")[0].endswith(state)
                counts[kind if own else "other state"] += 1
    return counts
