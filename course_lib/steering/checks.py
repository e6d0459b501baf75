"""Notebook 04's exercise checks (see :mod:`course_lib.checking`): the ``Exercise`` objects, their
seeded inputs and the mistakes whose hints they give. The references live in :mod:`.intervene`,
:mod:`.scores` and :mod:`.measures`."""
from __future__ import annotations

import math

import torch

from ..checking import Case, Exercise, Mistake, check_model, randomize_parameters, seeded_generator
from .intervene import diff_in_means, steering_hook
from .measures import concept_success, harmonic_aggregate
from .scores import input_score, output_score


def _randn(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=seeded_generator(seed))


# ----------------------------------------------------------------------------- steering_hook
@check_model
def check_lm():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=8, n_ctx=6, d_head=4, n_heads=2, d_mlp=16, d_vocab=11,
                                  act_fn="gelu", normalization_type="LN", seed=0, device="cpu")
    return randomize_parameters(HookedTransformer(cfg), seed=3).eval()


def _hook_point():
    from transformer_lens.hook_points import HookPoint

    point = HookPoint()
    point.name = "blocks.0.hook_resid_post"
    return point


def _hook_case(seed, batch, pos, d, scale, positions, per_row=False):
    """Apply the student's hook to a random residual stream: its output, and whether it left its
    inputs alone. ``per_row``: one direction per row of the batch, [batch, 1, d_model] (what the
    notebook's batched generation passes); an error there is part of the output (so that a listed
    mistake that fails there the same way still gets its hint)."""
    def run(impl):
        resid = _randn(seed, batch, pos, d) + 0.5
        direction = _randn(seed + 1, *((batch, 1, d) if per_row else (d,))) * 3.0  # normalising it shows
        before = resid.clone(), direction.clone()
        # positions=None is the default: the notebook calls steering_hook(v, scale)
        hook = impl(direction, scale) if positions is None else impl(direction, scale, positions)
        error, out, again = None, None, None
        with torch.no_grad():
            if not per_row:
                out = hook(resid, _hook_point())
                again = hook(before[0].clone(), _hook_point())  # generation calls it at every step
            else:
                try:
                    out = hook(resid, _hook_point())
                    again = hook(before[0].clone(), _hook_point())
                except Exception as err:  # noqa: BLE001 - compared as a result
                    error = f"{type(err).__name__}: {str(err)[:150]}"
        same = torch.is_tensor(out) and torch.is_tensor(again) and out.shape == again.shape and bool(
            torch.equal(out, again))
        result = {"error with one direction per row ([batch, 1, d_model])": error} if per_row else {}
        return result | {"output": out, "resid unchanged": bool(torch.equal(resid, before[0])),
                         "direction unchanged": bool(torch.equal(direction, before[1])),
                         "the same output when called again": same or out is None}
    return run


def _hook_model_case(seed, scale, positions):
    """Steer the check model through ``run_with_hooks`` (as the notebook does): its logits."""
    def run(impl):
        model = check_lm()
        tokens = torch.randint(0, model.cfg.d_vocab, (4, 5), generator=seeded_generator(seed))
        direction = _randn(seed + 1, model.cfg.d_model) * 2.0
        with torch.no_grad():
            return model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_post", impl(direction, scale, positions))])
    return run


def _hook_normalised(direction, scale, positions=None):
    return steering_hook(direction / direction.norm(), scale, positions)


def _hook_everywhere(direction, scale, positions=None):
    return steering_hook(direction, scale, None)


def _hook_in_place(direction, scale, positions=None):
    def hook(resid, hook):
        resid[:, slice(None) if positions is None else positions, :] += scale * direction
        return resid
    return hook


def _hook_batch_axis(direction, scale, positions=None):
    def hook(resid, hook):
        out = resid.clone()
        out[slice(None) if positions is None else positions] += scale * direction
        return out
    return hook


def _hook_no_return(direction, scale, positions=None):
    def hook(resid, hook):
        out = resid.clone()
        out[:, slice(None) if positions is None else positions, :] += scale * direction

    return hook


def _hook_no_scale(direction, scale, positions=None):
    return steering_hook(direction, 1.0, positions)


def _hook_first_row(direction, scale, positions=None):
    def hook(resid, hook):
        out = resid.clone()
        out[0, slice(None) if positions is None else positions, :] += scale * direction
        return out
    return hook


def _hook_truthy_positions(direction, scale, positions=None):
    def hook(resid, hook):
        out = resid.clone()
        out[:, positions or slice(None), :] += scale * direction  # positions=0 taken for None
        return out
    return hook


def _hook_replaces(direction, scale, positions=None):
    def hook(resid, hook):
        out = resid.clone()
        out[:, slice(None) if positions is None else positions, :] = scale * direction
        return out
    return hook


check_steering_hook = Exercise(
    "steering_hook", steering_hook,
    cases=lambda: [Case("positions [1, 3] of a [4, 5, 6] stream, scale 2.5", _hook_case(1, 4, 5, 6, 2.5, [1, 3])),
                   Case("positions=None: every position, scale -1.5", _hook_case(2, 3, 4, 5, -1.5, None)),
                   Case("positions=-1 (the last position), scale 4", _hook_case(3, 4, 6, 5, 4.0, -1)),
                   Case("positions=slice(2, None), scale 0.5", _hook_case(4, 5, 5, 4, 0.5, slice(2, None))),
                   Case("positions=0 (the first position: not the same as None), scale 1.5",
                        _hook_case(7, 2, 4, 3, 1.5, 0)),
                   Case("positions as an index tensor, torch.tensor([3]), scale -2",
                        _hook_case(8, 5, 5, 4, -2.0, torch.tensor([3]))),
                   Case("one direction per row: direction [3, 1, 4], positions=slice(1, None), scale 2",
                        _hook_case(6, 3, 5, 4, 2.0, slice(1, None), per_row=True)),
                   Case("the check model steered at blocks.0.hook_resid_post, positions [0, 2], scale 3",
                        _hook_model_case(5, 3.0, [0, 2]))],
    mistakes=[
        Mistake("Return the steered tensor: a hook that returns None leaves the activation as it was "
                "(TransformerLens passes on what a hook returns).", _hook_no_return),
        Mistake("Do not edit resid in place (resid[...] += ... changes the caller's tensor, e.g. a cached "
                "activation): work on resid.clone(), or build resid + delta, and return that.", _hook_in_place),
        Mistake("Add the direction as it is given: do not normalise it (scale is in the direction's units; a "
                "difference of means or a decoder row has its own meaningful norm).", _hook_normalised),
        Mistake("When positions are given, add only at those positions (resid[:, positions, :]); positions=None "
                "means every position.", _hook_everywhere),
        Mistake("Positions index the *second* axis of resid [batch, pos, d_model]: resid[:, positions, :], not "
                "resid[positions] (that picks rows of the batch).", _hook_batch_axis),
        Mistake("Multiply the direction by scale before adding it.", _hook_no_scale),
        Mistake("Steer every row of the batch (resid[:, positions, :]), not only the first.", _hook_first_row),
        Mistake("Add to the residual stream (+=): do not overwrite it with the direction.", _hook_replaces),
        Mistake("positions=0 is the first position, not 'no positions': test `positions is None` (not "
                "`if positions:` or `positions or ...`, which take 0 for None and steer every position).",
                _hook_truthy_positions),
    ],
    hint="def hook(resid, hook): steered = resid.clone(); steered[:, positions, :] += scale * direction "
         "(or resid + scale * direction when positions is None); return steered")


# ----------------------------------------------------------------------------- diff_in_means
def _dim_case(seed, n, d, concept_rows):
    def run(impl):
        g = seeded_generator(seed)
        offset = torch.linspace(2.0, 5.0, d)  # what every activation shares
        acts = torch.randn(n, d, generator=g) + offset
        is_concept = torch.zeros(n, dtype=torch.bool)
        is_concept[torch.randperm(n, generator=g)[:concept_rows]] = True
        acts[is_concept] += torch.randn(d, generator=g) * 2  # the concept's own direction
        before = acts.clone(), is_concept.clone()
        out = impl(acts, is_concept)
        return {"output": out, "inputs unchanged": bool(torch.equal(acts, before[0]) and
                                                        torch.equal(is_concept, before[1]))}
    return run


def _dim_reversed(acts, is_concept):
    return acts[~is_concept].mean(0) - acts[is_concept].mean(0)


def _dim_minus_all(acts, is_concept):
    return acts[is_concept].mean(0) - acts.mean(0)


def _dim_masked_mean(acts, is_concept):
    mask = is_concept[:, None].float()
    return (acts * mask).mean(0) - (acts * (1 - mask)).mean(0)


def _dim_normalised(acts, is_concept):
    v = diff_in_means(acts, is_concept)
    return v / v.norm()


def _dim_concept_only(acts, is_concept):
    return acts[is_concept].mean(0)


def _dim_sums(acts, is_concept):
    return acts[is_concept].sum(0) - acts[~is_concept].sum(0)


def _dim_long_index(acts, is_concept):
    return acts[is_concept.long()].mean(0) - acts[(~is_concept).long()].mean(0)


check_diff_in_means = Exercise(
    "diff_in_means", diff_in_means,
    cases=lambda: [Case("12 rows, 4 of the concept, d_model 6", _dim_case(1, 12, 6, 4)),
                   Case("9 rows, a single concept row (edge case), d_model 4", _dim_case(2, 9, 4, 1)),
                   Case("20 rows, 13 of the concept, d_model 5", _dim_case(3, 20, 5, 13)),
                   Case("7 rows, 6 of the concept, d_model 7", _dim_case(4, 7, 7, 6))],
    mistakes=[
        Mistake("Concept minus the others: the direction must point *towards* the concept.", _dim_reversed),
        Mistake("Subtract the mean of the *other* rows (acts[~is_concept]), not of all rows: the mean of all "
                "rows contains the concept rows too, which shrinks the direction.", _dim_minus_all),
        Mistake("(acts * mask).mean(0) divides by all n rows: average each group over its own rows "
                "(acts[is_concept].mean(0)).", _dim_masked_mean),
        Mistake("Return the raw difference of means, not a unit vector: its norm is the natural steering "
                "scale.", _dim_normalised),
        Mistake("Subtract the mean of the other rows: the concept rows' mean alone is dominated by what every "
                "activation shares.", _dim_concept_only),
        Mistake("Means, not sums: with sums the direction grows with the number of rows of each kind.", _dim_sums),
        Mistake("is_concept is a bool mask: index with it directly (acts[is_concept]); .long() turns it into the "
                "row numbers 0 and 1.", _dim_long_index),
    ],
    hint="acts[is_concept].mean(0) - acts[~is_concept].mean(0): a [d_model] vector.")


# ----------------------------------------------------------------------------- output_score
def _os_case(seed, batch, vocab, k, best_is_top=False, best_last=False):
    """Distinct logits (no ties in the ranks); lens tokens drawn at random, in random order (or with
    the most probable of them listed last). ``batch``: None (one row [vocab]), an int or a tuple of
    leading dims (the notebook passes [prompts, latents, vocab])."""
    lead = () if batch is None else (batch,) if isinstance(batch, int) else tuple(batch)

    def run(impl):
        g = seeded_generator(seed)
        logits = torch.randn(*lead, vocab, generator=g) * 2
        rows = math.prod(lead)
        lens = torch.stack([torch.randperm(vocab, generator=g)[:k] for _ in range(rows)])
        if best_is_top:  # a lens token (not listed first) is the most probable token of the vocabulary
            top = logits.reshape(rows, vocab).argmax(-1)
            lens[:, -1] = top
            lens[:, 0] = torch.where(lens[:, 0] == top, (top + 1) % vocab, lens[:, 0])
        if best_last:
            lens = lens.gather(1, logits.reshape(rows, vocab).gather(1, lens).argsort(-1))
        lens = lens.reshape(*lead, k)
        before = logits.clone(), lens.clone()
        out = impl(logits, lens)
        return {"output": out, "inputs unchanged": bool(torch.equal(logits, before[0]) and torch.equal(lens, before[1]))}
    return run


def _os_parts(logits, lens_tokens):
    probs = logits.softmax(-1)
    lens_probs = probs.gather(-1, lens_tokens)
    ranks = (probs[..., None, :] > lens_probs[..., :, None]).sum(-1)
    return probs, lens_probs, ranks


def _os_logits_as_probs(logits, lens_tokens):
    lens_logits = logits.gather(-1, lens_tokens)
    ranks = (logits[..., None, :] > lens_logits[..., :, None]).sum(-1)
    return (1 - ranks.min(-1).values / logits.shape[-1]) * lens_logits.max(-1).values


def _os_rank_from_one(logits, lens_tokens):
    probs, lens_probs, ranks = _os_parts(logits, lens_tokens)
    return (1 - (ranks.min(-1).values + 1) / probs.shape[-1]) * lens_probs.max(-1).values


def _os_ascending(logits, lens_tokens):
    probs, lens_probs, _ = _os_parts(logits, lens_tokens)
    ranks = (probs[..., None, :] < lens_probs[..., :, None]).sum(-1)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.max(-1).values


def _os_first_lens_token(logits, lens_tokens):
    return output_score(logits, lens_tokens[..., :1])


def _os_mean_prob(logits, lens_tokens):
    probs, lens_probs, ranks = _os_parts(logits, lens_tokens)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.mean(-1)


def _os_no_rank(logits, lens_tokens):
    return logits.softmax(-1).gather(-1, lens_tokens).max(-1).values


def _os_rank_over_k(logits, lens_tokens):
    probs, lens_probs, ranks = _os_parts(logits, lens_tokens)
    return (1 - ranks.min(-1).values / lens_tokens.shape[-1]) * lens_probs.max(-1).values


def _os_softmax_dim0(logits, lens_tokens):
    probs = logits.softmax(0)
    lens_probs = probs.gather(-1, lens_tokens)
    ranks = (probs[..., None, :] > lens_probs[..., :, None]).sum(-1)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.max(-1).values


check_output_score = Exercise(
    "output_score", output_score,
    cases=lambda: [Case("one latent: 30 tokens, k = 5", _os_case(1, None, 30, 5)),
                   Case("4 latents at once: logits [4, 25], k = 3", _os_case(2, 4, 25, 3)),
                   Case("a lens token (not the first listed) is the most likely token: rank 0", _os_case(3, 3, 20, 4, True)),
                   Case("k = 1", _os_case(4, 2, 40, 1)),
                   Case("one latent: 60 tokens, k = 8, its most probable lens token listed last",
                        _os_case(5, None, 60, 8, best_last=True)),
                   Case("logits [2, 3, 35] (prompts × latents × vocabulary, as in the notebook), k = 4",
                        _os_case(6, (2, 3), 35, 4)),
                   Case("a batch of one latent: logits [1, 18], k = 2", _os_case(7, 1, 18, 2))],
    mistakes=[
        Mistake("Turn the logits into probabilities first (logits.softmax(-1)): the score multiplies by a "
                "probability, not a logit.", _os_logits_as_probs),
        Mistake("Count ranks from 0: the most probable token of the vocabulary has rank 0 (the number of "
                "tokens more probable than it), so its rank score is 1.", _os_rank_from_one),
        Mistake("Rank in *descending* probability: rank 0 is the most probable token.", _os_ascending),
        Mistake("Use the best of all k lens tokens (the smallest rank, the largest probability), not only "
                "the first one listed.", _os_first_lens_token),
        Mistake("Take the *largest* probability of a lens token, not their mean.", _os_mean_prob),
        Mistake("Multiply the probability by the rank score 1 − rank / d_vocab (Arad et al.'s score has "
                "both). If you did, your rank score is always 1: rank a lens token among the whole vocabulary "
                "(not among the lens tokens), and divide with / (rank // d_vocab is 0).", _os_no_rank),
        Mistake("Divide the rank by the vocabulary size (logits.shape[-1]), not by k.", _os_rank_over_k),
        Mistake("Softmax over the vocabulary: the last dimension (softmax(-1)), not dimension 0 (the "
                "latents of a batch).", _os_softmax_dim0),
    ],
    hint="probs = logits.softmax(-1); p = probs.gather(-1, lens_tokens); rank = (probs[..., None, :] > "
         "p[..., :, None]).sum(-1); return (1 - rank.min(-1).values / d_vocab) * p.max(-1).values")


# ----------------------------------------------------------------------------- input_score
def _is_case(seed, latents, n, k, vocab, share):
    """Top-example tokens drawn with repeats; about ``share`` of them from the lens tokens."""
    def run(impl):
        g = seeded_generator(seed)
        rows = 1 if latents is None else latents
        lens = torch.stack([torch.randperm(vocab, generator=g)[:k] for _ in range(rows)])
        # examples: lens tokens (repeated, not all of them) or tokens from a small pool of others
        from_lens = torch.rand(rows, n, generator=g) < share
        pick = lens.gather(1, torch.randint(0, max(k - 1, 1), (rows, n), generator=g))
        others = torch.randint(0, vocab, (rows, n), generator=g)
        others = torch.where((others[..., None] == lens[:, None, :]).any(-1), (others + vocab // 2) % vocab, others)
        top = torch.where(from_lens, pick, others)
        if latents is None:
            top, lens = top[0], lens[0]
        before = top.clone(), lens.clone()
        out = impl(top, lens)
        return {"output": out, "inputs unchanged": bool(torch.equal(top, before[0]) and torch.equal(lens, before[1]))}
    return run


def _is_fixed_case(top, lens):
    def run(impl):
        t, l = torch.tensor(top), torch.tensor(lens)
        return {"output": impl(t.clone(), l.clone())}
    return run


def _is_lens_found(top_tokens, lens_tokens):
    return (lens_tokens[..., :, None] == top_tokens[..., None, :]).any(-1).float().mean(-1)


def _is_unique(top_tokens, lens_tokens):
    flat = top_tokens.reshape(-1, top_tokens.shape[-1])
    out = torch.stack([torch.isin(row.unique(), lens).float().mean()
                       for row, lens in zip(flat, lens_tokens.reshape(-1, lens_tokens.shape[-1]))])
    return out.reshape(top_tokens.shape[:-1])


def _is_count(top_tokens, lens_tokens):
    return (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1).float().sum(-1)


def _is_top_lens_only(top_tokens, lens_tokens):
    return (top_tokens == lens_tokens[..., :1]).float().mean(-1)


def _is_over_k(top_tokens, lens_tokens):
    return (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1).float().sum(-1) / lens_tokens.shape[-1]


def _is_isin_all(top_tokens, lens_tokens):
    return torch.isin(top_tokens, lens_tokens).float().mean(-1)


check_input_score = Exercise(
    "input_score", input_score,
    cases=lambda: [Case("one latent: 12 examples, k = 4", _is_case(1, None, 12, 4, 30, 0.5)),
                   Case("3 latents at once: [3, 10] examples, [3, 5] lens tokens", _is_case(2, 3, 10, 5, 20, 0.4)),
                   Case("6 examples, 2 of them the same lens token, k = 3", _is_fixed_case([4, 9, 4, 1, 7, 2], [4, 2, 8])),
                   Case("no example in the lens tokens (edge case: 0)", _is_fixed_case([[1, 2, 3], [5, 5, 6]],
                                                                                         [[7, 8], [9, 0]])),
                   Case("2 latents, 9 examples, k = 1", _is_case(3, 2, 9, 1, 15, 0.6))],
    mistakes=[
        Mistake("The input score is the fraction of the *examples* whose token is a lens token (divide by the "
                "number of examples), not the fraction of lens tokens found among the examples.", _is_lens_found),
        Mistake("Count every example, repeats included: the score is over examples, not over distinct tokens.",
                _is_unique),
        Mistake("Return a fraction: divide the number of hits by the number of examples.", _is_count),
        Mistake("An example counts if its token is *any* of the k lens tokens, not only the first.",
                _is_top_lens_only),
        Mistake("Divide by the number of examples (top_tokens.shape[-1]), not by k.", _is_over_k),
        Mistake("Compare each latent's examples with its *own* lens tokens: torch.isin(top, lens) pools the lens "
                "tokens of every latent of a batch. Compare with broadcasting: (top[..., :, None] == "
                "lens[..., None, :]).any(-1).", _is_isin_all),
    ],
    hint="hits = (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1)  # [..., n]; "
         "return hits.float().mean(-1)")


# ----------------------------------------------------------------------------- concept_success
def _cs_case(seed, batch, T, vocab, lengths, concept_ids, plant=()):
    """``lengths``: each text's valid positions; ``plant``: (row, position) pairs that get a concept
    token (some after the text's end, where they must not count)."""
    def run(impl):
        g = seeded_generator(seed)
        probs = (torch.randn(batch, T, vocab, generator=g) * 1.5).softmax(-1)
        tokens = torch.multinomial(probs.reshape(-1, vocab), 1, generator=g).reshape(batch, T)
        concept = torch.zeros(vocab, dtype=torch.bool)
        concept[list(concept_ids)] = True
        outside = (~concept).nonzero()[:, 0]
        tokens = torch.where(concept[tokens], outside[tokens % len(outside)], tokens)  # no concept token by chance
        for row, position in plant:
            tokens[row, position] = concept_ids[0]
        valid = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
        before = tokens.clone(), probs.clone(), concept.clone(), valid.clone()
        out = impl(tokens, probs, concept, valid)
        unchanged = all(torch.equal(a, b) for a, b in zip(before, (tokens, probs, concept, valid)))
        return {"output": out, "inputs unchanged": unchanged}
    return run


def _cs_hit_ignores_valid(tokens, probs, concept, valid):
    _, mass = concept_success(tokens, probs, concept, valid)
    return concept[tokens].any(-1).float(), mass


def _cs_mass_over_T(tokens, probs, concept, valid):
    hit, _ = concept_success(tokens, probs, concept, valid)
    return hit, (probs[..., concept].sum(-1) * valid).mean(-1)


def _cs_mass_with_padding(tokens, probs, concept, valid):
    hit, _ = concept_success(tokens, probs, concept, valid)
    return hit, probs[..., concept].sum(-1).mean(-1)


def _cs_hit_rate(tokens, probs, concept, valid):
    _, mass = concept_success(tokens, probs, concept, valid)
    return (concept[tokens] & valid).sum(-1) / valid.sum(-1).clamp(min=1), mass


def _cs_sampled_prob(tokens, probs, concept, valid):
    hit, _ = concept_success(tokens, probs, concept, valid)
    sampled = probs.gather(-1, tokens[..., None])[..., 0] * concept[tokens] * valid
    return hit, sampled.sum(-1) / valid.sum(-1).clamp(min=1)


def _cs_mean_over_concept(tokens, probs, concept, valid):
    hit, _ = concept_success(tokens, probs, concept, valid)
    return hit, (probs[..., concept].mean(-1) * valid).sum(-1) / valid.sum(-1).clamp(min=1)


def _cs_nan_empty(tokens, probs, concept, valid):
    hit, _ = concept_success(tokens, probs, concept, valid)
    return hit, (probs[..., concept].sum(-1) * valid).sum(-1) / valid.sum(-1)


def _cs_long_mask(tokens, probs, concept, valid):
    hit, _ = concept_success(tokens, probs, concept, valid)
    return hit, (probs[..., concept.long()].sum(-1) * valid).sum(-1) / valid.sum(-1).clamp(min=1)


check_concept_success = Exercise(
    "concept_success", concept_success,
    cases=lambda: [Case("3 texts of lengths 6, 3, 5; a concept token after the 2nd text's end",
                        _cs_case(1, 3, 6, 12, [6, 3, 5], [2, 7, 9], plant=[(0, 2), (1, 4), (2, 0)])),
                   Case("4 texts, one of them empty (edge case: 0, not NaN)",
                        _cs_case(2, 4, 5, 10, [5, 0, 2, 4], [1, 4], plant=[(0, 1), (0, 3), (1, 2), (3, 4)])),
                   Case("2 full texts, a 1-token concept", _cs_case(3, 2, 7, 9, [7, 7], [5], plant=[(1, 6)])),
                   Case("5 texts, no concept token written", _cs_case(4, 5, 4, 15, [4, 1, 2, 3, 4], [0, 3, 11]))],
    mistakes=[
        Mistake("Only the text counts for a hit: mask the positions after its end (concept[tokens] & valid) — "
                "a concept token in the padding was never written.", _cs_hit_ignores_valid),
        Mistake("Average the mass over the text's own positions: divide by valid.sum(-1), not by all T "
                "positions.", _cs_mass_over_T),
        Mistake("Leave the padding positions out of the mass (multiply by valid, divide by valid.sum(-1)).",
                _cs_mass_with_padding),
        Mistake("hit is 1.0 if the text contains *at least one* concept token (.any(-1)), not the share of its "
                "tokens that are.", _cs_hit_rate),
        Mistake("The mass is the probability of *all* the concept's tokens at each position (probs[..., "
                "concept].sum(-1)), whatever token was then sampled.", _cs_sampled_prob),
        Mistake("Sum the probabilities over the concept's tokens (the probability of writing *some* concept "
                "token), do not average them.", _cs_mean_over_concept),
        Mistake("An empty text has mass 0, not NaN: clamp the number of positions (valid.sum(-1).clamp(min=1)).",
                _cs_nan_empty),
        Mistake("concept is a bool mask over the vocabulary: index with it directly (probs[..., concept]); "
                ".long() turns it into the token ids 0 and 1.", _cs_long_mask),
    ],
    hint="hit = (concept[tokens] & valid).any(-1).float(); mass = (probs[..., concept].sum(-1) * valid).sum(-1) "
         "/ valid.sum(-1).clamp(min=1); return hit, mass")


# ----------------------------------------------------------------------------- harmonic_aggregate
def _ha_case(success, fluency):
    def run(impl):
        s, f = torch.tensor(success), torch.tensor(fluency)
        before = s.clone(), f.clone()
        out = impl(s, f)
        return {"output": out, "inputs unchanged": bool(torch.equal(s, before[0]) and torch.equal(f, before[1]))}
    return run


def _ha_random(seed, *shape):
    def run(impl):
        g = seeded_generator(seed)
        s, f = torch.rand(*shape, generator=g), torch.rand(*shape, generator=g)
        return {"output": impl(s, f)}
    return run


check_harmonic_aggregate = Exercise(
    "harmonic_aggregate", harmonic_aggregate,
    cases=lambda: [Case("8 strengths, random success and fluency", _ha_random(1, 8)),
                   Case("zeros (edge case): both 0, one of them 0",
                        _ha_case([0.0, 0.0, 0.6, 0.3], [0.0, 0.9, 0.0, 0.3])),
                   Case("[3, 4]: 3 concepts × 4 strengths", _ha_random(2, 3, 4)),
                   Case("small values: success + fluency below 1", _ha_case([0.05, 0.2, 0.01], [0.1, 0.4, 0.3])),
                   Case("tiny values: success + fluency below 0.1 (a clamp must not touch them)",
                        _ha_case([0.004, 0.03, 0.0005], [0.002, 0.05, 0.06]))],
    mistakes=[
        Mistake("The aggregate is the *harmonic* mean 2·s·f / (s + f), not the arithmetic mean: a strength that "
                "writes gibberish (f = 0) must score 0 however well it steers.",
                lambda s, f: (s + f) / 2),
        Mistake("Harmonic mean, not geometric: 2·s·f / (s + f).", lambda s, f: (s * f).sqrt()),
        Mistake("Harmonic mean 2·s·f / (s + f), not the product s·f.", lambda s, f: s * f),
        Mistake("Where both are 0 the aggregate is 0, not NaN (0/0): clamp the denominator at a tiny value "
                "or use torch.where.", lambda s, f: 2 * s * f / (s + f)),
        Mistake("The harmonic mean has a factor 2: 2·s·f / (s + f) (so that s = f gives s).",
                lambda s, f: s * f / (s + f).clamp(min=1e-12)),
        Mistake("Harmonic mean, not the minimum: 2·s·f / (s + f).", lambda s, f: torch.minimum(s, f)),
        Mistake("Clamp the denominator at a tiny value (1e-12), not at 1: s + f is often below 1.",
                lambda s, f: 2 * s * f / (s + f).clamp(min=1)),
    ],
    hint="2 * success * fluency / (success + fluency).clamp(min=1e-12): the harmonic mean, 0 where both are 0.")
