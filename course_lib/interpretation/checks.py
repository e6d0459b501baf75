"""Notebook 03's exercise checks (see :mod:`course_lib.checking`): the ``Exercise`` objects, their
seeded inputs and the mistakes whose hints they give."""
from __future__ import annotations

import torch

from ..checking import Case, Exercise, Mistake, check_model, randomize_parameters, seeded_generator
from .contexts import logit_effects, quantile_samples, top_activations
from .scoring import balanced_accuracy, explain, precision_recall_f1


def _latent_acts(seed: int, n: int, n_fire: int, negatives: bool = False) -> torch.Tensor:
    """[n] activations: ``n_fire`` distinct positive values (skewed, like real latents), zeros
    elsewhere (or distinct negative values with ``negatives``)."""
    g = seeded_generator(seed)
    acts = -torch.rand(n, generator=g) * 5 if negatives else torch.zeros(n)
    where = torch.randperm(n, generator=g)[:n_fire]
    acts[where] = -torch.log(torch.rand(n_fire, generator=g)) + torch.linspace(0.01, 0.02, n_fire)  # exponential
    return acts


# ----------------------------------------------------------------------------- top_activations
def _top_case(seed, n, n_fire, k, negatives=False):
    def run(impl):
        acts = _latent_acts(seed, n, n_fire, negatives)
        return {"output": impl(acts, k), "acts afterwards": acts}
    return run


def _top_ascending(acts, n):
    values, indices = top_activations(acts, n)
    return values.flip(0), indices.flip(0)


def _top_keeps_silent(acts, n):
    top = acts.topk(n)
    return top.values, top.indices


def _top_abs(acts, n):
    top = acts.abs().topk(min(n, int((acts.abs() > 0).sum())))
    return acts[top.indices], top.indices


def _top_swapped(acts, n):
    values, indices = top_activations(acts, n)
    return indices, values


check_top_activations = Exercise(
    "top_activations", top_activations,
    cases=lambda: [Case("60 tokens, 20 fire, n = 5", _top_case(1, 60, 20, 5)),
                   Case("only 3 tokens fire, n = 6 (edge case)", _top_case(2, 40, 3, 6)),
                   Case("negative activations where it does not fire, n = 4", _top_case(3, 50, 12, 4, negatives=True)),
                   Case("n = 1", _top_case(4, 30, 9, 1))],
    mistakes=[
        Mistake("Strongest first: sort in descending order (topk does; a sorted() or argsort() is ascending).",
                _top_ascending),
        Mistake("Only the tokens where the latent fires (> 0) count: if it fires on fewer than n tokens, return "
                "fewer (k = min(n, number of firing tokens)).", _top_keeps_silent),
        Mistake("Do not take the absolute value: a negative activation means the latent is silent there.", _top_abs),
        Mistake("Return (values, indices), in that order — what torch.topk gives.", _top_swapped),
    ],
    hint="n_fire = (acts > 0).sum(); top = acts.topk(min(n, n_fire)); return top.values, top.indices")


# ----------------------------------------------------------------------------- quantile_samples
def _properties(acts, n_bins, per_bin, samples):
    """What the exercise asks for, independent of which random tokens were drawn."""
    firing = torch.nonzero(acts > 0)[:, 0]
    bins = torch.tensor_split(firing[acts[firing].argsort()], n_bins)
    if not isinstance(samples, (list, tuple)) or len(samples) != n_bins:
        return {"bins": f"expected a list of {n_bins} tensors, got {type(samples).__name__}"}
    out, weakest = [], True
    for b, sample in enumerate(samples):
        s = torch.as_tensor(sample).long().flatten()
        out.append({"count": len(s), "all in this quantile bin": bool(torch.isin(s, bins[b]).all()),
                    "distinct": len(set(s.tolist())) == len(s)})
        weakest &= set(s.tolist()) == set(bins[b][:len(s)].tolist())
    return {"bins": out, "every sample is the weakest tokens of its bin": weakest}


def _quantile_case(seed, n, n_fire, n_bins, per_bin, negatives=False):
    def run(impl):
        acts = _latent_acts(seed, n, n_fire, negatives)
        before = acts.clone()
        torch.manual_seed(seed)
        first = impl(acts, n_bins, per_bin, seeded_generator(seed))
        torch.manual_seed(seed + 1)  # the global RNG must not matter, only ``generator``
        again = impl(acts, n_bins, per_bin, seeded_generator(seed))
        other = impl(acts, n_bins, per_bin, seeded_generator(seed + 100))

        def same(a, b, as_sets=False):
            try:
                prep = (lambda x: torch.as_tensor(x).flatten().sort().values) if as_sets else torch.as_tensor
                return all(torch.equal(prep(x), prep(y)) for x, y in zip(a, b))
            except Exception:
                return False
        return {**_properties(acts, n_bins, per_bin, first),
                "same generator seed, same samples": same(first, again),
                # other *tokens*, not the same tokens in another order (randperm(per_bin) only shuffles)
                "another generator seed, other tokens": not same(first, other, as_sets=True),
                "acts unchanged": bool(torch.equal(acts, before))}
    return run


def _equal_width(acts, n_bins, per_bin, generator):
    firing = torch.nonzero(acts > 0)[:, 0]
    edges = torch.linspace(float(acts[firing].min()), float(acts[firing].max()), n_bins + 1)
    which = torch.bucketize(acts[firing], edges[1:-1], right=True)
    out = []
    for b in range(n_bins):
        chunk = firing[which == b]
        out.append(chunk[torch.randperm(len(chunk), generator=generator)[:per_bin]])
    return out


def _global_rng(acts, n_bins, per_bin, generator):
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[acts[firing].argsort()]
    return [c[torch.randperm(len(c))[:per_bin]] for c in torch.tensor_split(ordered, n_bins)]


def _all_tokens(acts, n_bins, per_bin, generator):
    ordered = acts.argsort()
    return [c[torch.randperm(len(c), generator=generator)[:per_bin]] for c in torch.tensor_split(ordered, n_bins)]


def _with_replacement(acts, n_bins, per_bin, generator):
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[acts[firing].argsort()]
    return [c[torch.randint(len(c), (per_bin,), generator=generator)] for c in torch.tensor_split(ordered, n_bins)]


def _first_tokens_shuffled(acts, n_bins, per_bin, generator):
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[acts[firing].argsort()]
    return [c[torch.randperm(min(per_bin, len(c)), generator=generator)] for c in torch.tensor_split(ordered, n_bins)]


def _strongest_bin_first(acts, n_bins, per_bin, generator):
    return quantile_samples(acts, n_bins, per_bin, generator)[::-1]


check_quantile_samples = Exercise(
    "quantile_samples", quantile_samples,
    cases=lambda: [Case("200 tokens, 80 fire, 4 bins of 3", _quantile_case(1, 200, 80, 4, 3)),
                   Case("150 tokens, 90 fire, 5 bins of 6", _quantile_case(2, 150, 90, 5, 6)),
                   Case("bins smaller than per_bin (edge case): 7 fire, 3 bins of 4", _quantile_case(3, 50, 7, 3, 4)),
                   Case("300 tokens, 100 fire, 10 bins of 2", _quantile_case(4, 300, 100, 10, 2)),
                   Case("negative activations where it does not fire, 3 bins of 2",
                        _quantile_case(5, 80, 30, 3, 2, negatives=True))],
    mistakes=[
        Mistake("Quantile bins hold (nearly) the same *number* of firing tokens — sort them by activation and cut "
                "with torch.tensor_split — not equal-width activation ranges.", _equal_width),
        Mistake("Draw with the generator you are given (torch.randperm(m, generator=generator)): the samples must "
                "not depend on the global random state.", _global_rng),
        Mistake("Only the tokens where the latent fires (> 0) are binned; the silent ones are not a quantile.",
                _all_tokens),
        Mistake("Draw *distinct* tokens (a permutation, not torch.randint with replacement).", _with_replacement),
        Mistake("Weakest bin first: sort the firing tokens by ascending activation.", _strongest_bin_first),
        Mistake("Permute the whole bin and keep the first per_bin: torch.randperm(len(chunk), generator=generator)"
                "[:per_bin]. torch.randperm(per_bin) only shuffles the bin's first (weakest) tokens.",
                _first_tokens_shuffled),
    ],
    hint="firing = nonzero(acts > 0); ordered = firing[acts[firing].argsort()]; for each chunk of "
         "torch.tensor_split(ordered, n_bins): chunk[torch.randperm(len(chunk), generator=generator)[:per_bin]]")


# ----------------------------------------------------------------------------- logit_effects
def _tiny_lm(seed: int, d_model: int, d_vocab: int):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=d_model, n_ctx=4, d_head=4, n_heads=d_model // 4, d_mlp=16,
                                  d_vocab=d_vocab, act_fn="gelu", normalization_type="LN", seed=seed, device="cpu")
    return randomize_parameters(HookedTransformer(cfg), seed).eval()


@check_model
def check_lm_small():
    return _tiny_lm(0, 8, 12)


@check_model
def check_lm_wider():
    return _tiny_lm(1, 12, 9)


def _effects_case(model_fn, seed, constant=False):
    def run(impl):
        model = model_fn()
        d = model.cfg.d_model
        direction = torch.full((d,), 0.7) if constant else torch.randn(d, generator=seeded_generator(seed)) + 0.5
        before = direction.clone()
        with torch.no_grad():
            out = impl(model, direction)
        return {"output": out, "direction unchanged": bool(torch.equal(direction, before))}
    return run


check_logit_effects = Exercise(
    "logit_effects", logit_effects,
    cases=lambda: [Case("d_model 8, d_vocab 12, a direction with a non-zero mean", _effects_case(check_lm_small, 1)),
                   Case("d_model 12, d_vocab 9", _effects_case(check_lm_wider, 2)),
                   Case("a constant direction (edge case: LayerNorm removes it)", _effects_case(check_lm_small, 3, True))],
    mistakes=[
        Mistake("LayerNorm subtracts the mean of the vector first: centre the direction (direction − direction.mean()).",
                lambda model, d: (d * model.ln_final.w) @ model.W_U),
        Mistake("Scale by the final LayerNorm's weight (model.ln_final.w) before unembedding.",
                lambda model, d: (d - d.mean()) @ model.W_U),
        Mistake("Leave out the biases (ln_final.b, b_U): they are the same whatever the direction, so every latent "
                "would seem to promote the same tokens.",
                lambda model, d: ((d - d.mean()) * model.ln_final.w + model.ln_final.b) @ model.W_U + model.b_U),
        Mistake("Do not run model.ln_final on the direction itself: it divides by the direction's own norm (the real "
                "division is by the whole residual stream's norm) and adds the bias.",
                lambda model, d: model.ln_final(d[None, None])[0, 0] @ model.W_U),
        Mistake("Unembed with model.W_U [d_model, d_vocab], not the transposed embedding.",
                lambda model, d: ((d - d.mean()) * model.ln_final.w) @ model.W_E.T),
    ],
    hint="(direction − direction.mean()) * model.ln_final.w, then @ model.W_U: a [d_vocab] vector.")


# ----------------------------------------------------------------------------- precision_recall_f1
def _bools(seed, n, cols, density):
    g = seeded_generator(seed)
    return torch.rand(n, cols, generator=g) < torch.rand(cols, generator=g) * density + 0.05


def _prf_case(seed, n, L, P, empty=False):
    def run(impl):
        fires, labels = _bools(seed, n, L, 0.5), _bools(seed + 1, n, P, 0.6)
        if empty:
            fires[:, 0], labels[:, -1] = False, False
        before = fires.clone(), labels.clone()
        out = impl(fires, labels)
        return {"output": out, "inputs unchanged": bool(torch.equal(fires, before[0]) and torch.equal(labels, before[1]))}
    return run


def _prf_swapped(fires, labels):
    p, r, f = precision_recall_f1(fires, labels)
    return r, p, f


def _prf_nan(fires, labels):
    both = fires.float().T @ labels.float()
    p, r = both / fires.sum(0).float()[:, None], both / labels.sum(0).float()[None, :]
    return p, r, 2 * p * r / (p + r)


def _prf_mean(fires, labels):
    p, r, _ = precision_recall_f1(fires, labels)
    return p, r, (p + r) / 2


def _prf_over_all_tokens(fires, labels):
    both = fires.float().T @ labels.float()
    p = both / len(fires)
    r = both / labels.sum(0).float()[None, :].clamp(min=1)
    return p, r, 2 * p * r / (p + r).clamp(min=1e-12)


check_precision_recall_f1 = Exercise(
    "precision_recall_f1", precision_recall_f1,
    cases=lambda: [Case("60 tokens, 5 units, 7 predicates", _prf_case(1, 60, 5, 7)),
                   Case("a unit that never fires, a predicate that never holds (edge case)", _prf_case(2, 40, 4, 3, True)),
                   Case("one unit, one predicate", _prf_case(3, 25, 1, 1))],
    mistakes=[
        Mistake("Precision divides by how often the *unit fires* (P(label | fires)); recall by how often the "
                "*label holds* (P(fires | label)).", _prf_swapped),
        Mistake("A unit that never fires (or a label that never holds) gives 0/0: return 0 there, not NaN "
                "(.clamp(min=1) on the counts, a small floor under precision + recall).", _prf_nan),
        Mistake("F1 is the *harmonic* mean 2PR / (P + R), not the arithmetic mean.", _prf_mean),
        Mistake("Precision is over the tokens where the unit fires, not over all tokens.", _prf_over_all_tokens),
    ],
    hint="both = fires.float().T @ labels.float() ([L, P] co-occurrence counts); precision = both / "
         "(fires per unit), recall = both / (tokens per label), F1 = 2PR / (P + R); 0 where undefined.")


# ----------------------------------------------------------------------------- explain
def _explain_case(seed, L, P, min_support, zero_row=False, none_eligible=False):
    def run(impl):
        g = seeded_generator(seed)
        f1 = torch.rand(L, P, generator=g)
        support = torch.randint(0, 12, (P,), generator=g)
        support[0] = max(min_support - 1, 0)  # just below the threshold (when min_support > 0)
        support[1] = min_support  # exactly at the threshold: eligible
        f1[0, 0] = 0.99  # the best F1 of unit 0 is ineligible (when min_support > 0)
        f1[1, 1] = 0.98  # unit 1's best is exactly at the threshold
        if zero_row:
            f1[2] = 0.0  # every F1 of unit 2 is 0: the first eligible predicate wins
        if none_eligible:
            support = support.clamp(max=min_support - 1)  # every predicate is too rare
        before = f1.clone(), support.clone()
        out = impl(f1, support, min_support)
        return {"output": out, "inputs unchanged": bool(torch.equal(f1, before[0]) and torch.equal(support, before[1]))}
    return run


def _explain_no_support(f1, support, min_support):
    best_f1, best = f1.max(dim=1)
    return best, best_f1


def _explain_strict(f1, support, min_support):
    return explain(f1, support, min_support + 1)


def _explain_mask_zero(f1, support, min_support):
    masked = torch.where((support >= min_support)[None, :], f1, torch.zeros_like(f1))
    best_f1, best = masked.max(dim=1)
    return best, best_f1


def _explain_no_clamp(f1, support, min_support):
    masked = torch.where((support >= min_support)[None, :], f1, torch.full_like(f1, -1.0))
    best_f1, best = masked.max(dim=1)
    return best, best_f1


def _explain_wrong_axis(f1, support, min_support):
    masked = torch.where((support >= min_support)[None, :], f1, torch.full_like(f1, -1.0))
    best_f1, best = masked.max(dim=0)
    return best, best_f1.clamp(min=0)


check_explain = Exercise(
    "explain", explain,
    cases=lambda: [Case("6 units, 9 predicates, min_support 5", _explain_case(1, 6, 9, 5)),
                   Case("4 units, 5 predicates, min_support 8", _explain_case(2, 4, 5, 8)),
                   Case("a unit whose eligible F1s are all 0 (edge case), min_support 3", _explain_case(3, 5, 6, 3, True)),
                   Case("min_support 0: every predicate is eligible", _explain_case(4, 3, 4, 0)),
                   Case("no predicate is frequent enough (edge case: best_f1 = 0)",
                        _explain_case(5, 3, 5, 20, none_eligible=True))],
    mistakes=[
        Mistake("Only predicates that hold on at least min_support train tokens may be chosen (a rare predicate "
                "can reach a high F1 by luck).", _explain_no_support),
        Mistake("'At least min_support' includes min_support itself: support >= min_support.", _explain_strict),
        Mistake("Mask the ineligible predicates *below* any real F1 (e.g. -1): masked with 0 they tie with an "
                "eligible F1 of 0 and can win.", _explain_mask_zero),
        Mistake("One explanation per unit: take the max over the predicates (dim=1), not over the units.",
                _explain_wrong_axis),
        Mistake("Where no predicate is eligible the max is the mask value (-1): clamp best_f1 at 0 "
                "(best_f1.clamp(min=0)).", _explain_no_clamp),
    ],
    hint="eligible = support >= min_support; mask the rest (torch.where(eligible, f1, -1)); "
         "best_f1, best = masked.max(dim=1); return best, best_f1.clamp(min=0)")


# ----------------------------------------------------------------------------- balanced_accuracy
def _ba_case(seed, n, L, uniform=False, empty=False, scale=1.0):
    def run(impl):
        g = seeded_generator(seed)
        truth = torch.rand(n, L, generator=g) < 0.3
        pred = torch.where(torch.rand(n, L, generator=g) < 0.7, truth, torch.rand(n, L, generator=g) < 0.5)
        weight = torch.ones(n, L) if uniform else (torch.rand(n, L, generator=g) * 3 + 0.1) * scale
        if empty:
            truth[:, 0] = False
        before = pred.clone(), truth.clone(), weight.clone()
        out = impl(pred, truth, weight)
        return {"output": out, "inputs unchanged": all(torch.equal(a, b) for a, b in zip(before, (pred, truth, weight)))}
    return run


def _ba_unweighted(pred, truth, weight):
    return balanced_accuracy(pred, truth, torch.ones_like(weight))


def _ba_accuracy(pred, truth, weight):
    return (weight * (pred == truth)).sum(0) / weight.sum(0)


def _ba_tpr_only(pred, truth, weight):
    w = weight.float()
    return (w * (pred & truth)).sum(0) / (w * truth).sum(0).clamp(min=1e-12)


def _ba_swapped(pred, truth, weight):
    return balanced_accuracy(truth, pred, weight)


def _ba_clamp_one(pred, truth, weight):
    w = weight.float()
    tpr = (w * (pred & truth)).sum(0) / (w * truth).sum(0).clamp(min=1)
    tnr = (w * (~pred & ~truth)).sum(0) / (w * ~truth).sum(0).clamp(min=1)
    return (tpr + tnr) / 2


def _ba_nan(pred, truth, weight):
    w = weight.float()
    tpr = (w * (pred & truth)).sum(0) / (w * truth).sum(0)
    tnr = (w * (~pred & ~truth)).sum(0) / (w * ~truth).sum(0)
    return (tpr + tnr) / 2


check_balanced_accuracy = Exercise(
    "balanced_accuracy", balanced_accuracy,
    cases=lambda: [Case("50 tokens, 6 units, random weights", _ba_case(1, 50, 6)),
                   Case("uniform weights", _ba_case(2, 40, 3, uniform=True)),
                   Case("a unit that never fires (edge case)", _ba_case(3, 30, 4, empty=True)),
                   Case("small weights: a class's weights add up to less than 1", _ba_case(4, 12, 3, scale=0.01))],
    mistakes=[
        Mistake("Count every token with its weight (the weights give each activation decile the same say).",
                _ba_unweighted),
        Mistake("Balanced accuracy is the mean of TPR and TNR, not the accuracy: otherwise always saying 'no' "
                "scores high on a rarely firing unit.", _ba_accuracy),
        Mistake("Average the true-positive rate with the true-negative rate: TPR alone rewards an explanation "
                "that holds everywhere.", _ba_tpr_only),
        Mistake("TPR is over the tokens where the unit *fires* (truth), TNR over those where it does not; the "
                "explanation's verdict is pred.", _ba_swapped),
        Mistake("An empty class (a unit that never fires) must give 0 for its rate, not NaN: clamp the "
                "denominators.", _ba_nan),
        Mistake("Clamp the weighted denominators at a tiny value (e.g. 1e-12), not at 1: they are sums of weights, "
                "not counts, and may be below 1.", _ba_clamp_one),
    ],
    hint="tpr = Σ w·(pred ∧ truth) / Σ w·truth; tnr = Σ w·(¬pred ∧ ¬truth) / Σ w·¬truth (sums over dim 0, "
         "denominators clamped); return (tpr + tnr) / 2")
