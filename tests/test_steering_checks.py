"""Notebook 04 (steering): the checks' contracts — accept the reference and correct alternatives,
reject plausible mistakes with the right hint, survive junk (see check_contract.py)."""
import numpy as np
import torch
from check_contract import Contract, contract_tests

from course_lib.steering import checks as ch
from course_lib.steering import intervene as iv
from course_lib.steering import measures as ms
from course_lib.steering import scores as sc

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- steering_hook
def _hook_delta_alt(direction, scale, positions=None):
    def hook(resid, hook):
        delta = torch.zeros_like(resid)
        delta[:, slice(None) if positions is None else positions, :] = scale * direction
        return resid + delta
    return hook


def _hook_no_none_branch_alt(direction, scale, positions=None):
    def hook(resid, hook):
        out = resid.clone()
        out[:, positions, :] += scale * direction  # positions=None adds an axis: a view of every position
        return out
    return hook


def _hook_index_alt(direction, scale, positions=None):
    def hook(resid, hook):
        idx = torch.arange(resid.shape[1])[slice(None) if positions is None else positions]
        out = resid.clone()
        out[:, idx] = out[:, idx] + direction * scale
        return out
    return hook


def _hook_subtracts(direction, scale, positions=None):
    return iv.steering_hook(-direction, scale, positions)


def _hook_hardcoded_scale(direction, scale, positions=None):
    return iv.steering_hook(direction, 4.0, positions)


def _hook_last_when_none(direction, scale, positions=None):
    return iv.steering_hook(direction, scale, -1 if positions is None else positions)


def _hook_in_place_when_none(direction, scale, positions=None):
    def hook(resid, hook):
        if positions is None:
            resid += scale * direction
            return resid
        return iv.steering_hook(direction, scale, positions)(resid, hook)
    return hook


def _hook_squared_scale(direction, scale, positions=None):
    return iv.steering_hook(direction, scale * abs(scale), positions)


def _hook_if_not_positions(direction, scale, positions=None):
    def hook(resid, hook):
        if not positions:  # positions=0 (the first position) is taken for None
            return resid + scale * direction
        return iv.steering_hook(direction, scale, positions)(resid, hook)
    return hook


def _hook_no_default(direction, scale, positions):  # the notebook calls steering_hook(v, scale)
    return iv.steering_hook(direction, scale, positions)


def _hook_default_last(direction, scale, positions=-1):
    return iv.steering_hook(direction, scale, positions)


def _hook_first_call_only(direction, scale, positions=None):
    calls = []

    def hook(resid, hook):
        calls.append(1)
        return iv.steering_hook(direction, scale, positions)(resid, hook) if len(calls) == 1 else resid
    return hook


def _hook_isinstance_dispatch(direction, scale, positions=None):  # an index tensor is silently ignored
    def hook(resid, hook):
        out = resid.clone()
        if positions is None:
            out += scale * direction
        elif isinstance(positions, (int, slice)):
            out[:, positions, :] += scale * direction
        elif isinstance(positions, list):
            for p in positions:
                out[:, p, :] += scale * direction
        return out
    return hook


def _hook_mask_alt(direction, scale, positions=None):
    def hook(resid, hook):
        mask = torch.zeros(resid.shape[1], dtype=resid.dtype)
        mask[slice(None) if positions is None else positions] = 1.0
        return resid + scale * direction * mask[None, :, None]
    return hook


class _HookObjectAlt:
    def __init__(self, direction, scale, positions=None):
        self.delta, self.positions = scale * direction, positions

    def __call__(self, resid, hook):
        out = resid.clone()
        out[:, slice(None) if self.positions is None else self.positions, :] += self.delta
        return out


# ----------------------------------------------------------------------------- diff_in_means
def _dim_numpy_alt(acts, is_concept):
    a, c = acts.numpy(), is_concept.numpy()
    return torch.from_numpy(a[c].mean(axis=0) - a[~c].mean(axis=0))


def _dim_weights_alt(acts, is_concept):
    w = is_concept.float() / is_concept.sum() - (~is_concept).float() / (~is_concept).sum()
    return w @ acts


def _dim_wrong_axis(acts, is_concept):
    return acts[is_concept].mean(1) - acts[~is_concept].mean(1)


def _dim_median(acts, is_concept):
    return acts[is_concept].median(0).values - acts[~is_concept].median(0).values


def _dim_in_place(acts, is_concept):
    acts -= acts[~is_concept].mean(0)  # centres the caller's tensor
    return acts[is_concept].mean(0)


def _dim_hardcoded_rows(acts, is_concept):
    return acts[:4].mean(0) - acts[4:].mean(0)


def _dim_float_division(acts, is_concept):
    n_in = int(is_concept.sum())
    return acts[is_concept].sum(0) / n_in - acts[~is_concept].sum(0) / n_in


# ----------------------------------------------------------------------------- output_score
def _os_argsort_alt(logits, lens_tokens):
    """Arad et al.'s own loop: argsort the probabilities, find each lens token's place."""
    probs = torch.softmax(logits, dim=-1)
    flat_p, flat_l = probs.reshape(-1, probs.shape[-1]), lens_tokens.reshape(-1, lens_tokens.shape[-1])
    out = []
    for p, lens in zip(flat_p, flat_l):
        order = torch.argsort(p, descending=True)
        ranks = [(order == t).nonzero(as_tuple=True)[0].item() for t in lens]
        out.append((1 - min(ranks) / len(p)) * p[lens].max())
    return torch.stack(out).reshape(probs.shape[:-1])


def _os_sorted_alt(logits, lens_tokens):
    probs = logits.softmax(-1)
    best = probs.gather(-1, lens_tokens).max(-1, keepdim=True).values  # the best lens token has the smallest rank
    rank = (probs > best).sum(-1)
    return (1.0 - rank.float() / probs.size(-1)) * best[..., 0]


def _os_sum_probs(logits, lens_tokens):
    probs, lens_probs, ranks = ch._os_parts(logits, lens_tokens)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.sum(-1)


def _os_hardcoded_k(logits, lens_tokens):
    return sc.output_score(logits, lens_tokens[..., :5])


def _os_log_probs(logits, lens_tokens):
    probs, lens_probs, ranks = ch._os_parts(logits, lens_tokens)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.log().max(-1).values


def _os_v_minus_one(logits, lens_tokens):
    probs, lens_probs, ranks = ch._os_parts(logits, lens_tokens)
    return (1 - ranks.min(-1).values / (probs.shape[-1] - 1)) * lens_probs.max(-1).values


def _os_rows_only(logits, lens_tokens):  # [V] and [n, V] only: the notebook passes [prompts, latents, V]
    squeeze = logits.ndim == 1
    if squeeze:
        logits, lens_tokens = logits[None], lens_tokens[None]
    probs = logits.softmax(-1)
    lens_probs = probs[torch.arange(len(probs))[:, None], lens_tokens]
    ranks = (probs[:, None, :] > lens_probs[:, :, None]).sum(-1)
    out = (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.max(-1).values
    return out[0] if squeeze else out


def _os_flat_squeezed(logits, lens_tokens):  # .squeeze() drops the batch axis of a batch of one
    probs = logits.reshape(-1, logits.shape[-1]).softmax(-1)
    lens_probs = probs.gather(-1, lens_tokens.reshape(-1, lens_tokens.shape[-1]))
    ranks = (probs[:, None, :] > lens_probs[:, :, None]).sum(-1)
    return ((1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.max(-1).values).squeeze()


def _os_integer_division(logits, lens_tokens):
    probs, lens_probs, ranks = ch._os_parts(logits, lens_tokens)
    return (1 - ranks.min(-1).values // probs.shape[-1]) * lens_probs.max(-1).values


def _os_rank_among_lens(logits, lens_tokens):
    probs = logits.softmax(-1)
    lens_probs = probs.gather(-1, lens_tokens)
    ranks = (lens_probs[..., None, :] > lens_probs[..., :, None]).sum(-1)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.max(-1).values


def _os_rank_of_rank_alt(logits, lens_tokens):
    probs = logits.softmax(-1)
    rank_of = probs.argsort(-1, descending=True).argsort(-1)
    rank = rank_of.gather(-1, lens_tokens).min(-1).values
    return (1 - rank / probs.shape[-1]) * probs.gather(-1, lens_tokens).max(-1).values


def _os_searchsorted_alt(logits, lens_tokens):
    probs = logits.softmax(-1)
    lens_probs = probs.gather(-1, lens_tokens)
    ascending = probs.sort(-1).values.contiguous()
    ranks = probs.shape[-1] - torch.searchsorted(ascending, lens_probs.contiguous(), right=True)
    return (1 - ranks.min(-1).values / probs.shape[-1]) * lens_probs.max(-1).values


# ----------------------------------------------------------------------------- input_score
def _is_loop_alt(top_tokens, lens_tokens):
    flat_t, flat_l = top_tokens.reshape(-1, top_tokens.shape[-1]), lens_tokens.reshape(-1, lens_tokens.shape[-1])
    scores = [sum(int(t) in set(lens.tolist()) for t in top) / len(top) for top, lens in zip(flat_t, flat_l)]
    return torch.tensor(scores, dtype=torch.float32).reshape(top_tokens.shape[:-1])


def _is_isin_rows_alt(top_tokens, lens_tokens):
    if top_tokens.ndim == 1:
        return torch.isin(top_tokens, lens_tokens).float().mean()
    return torch.stack([_is_isin_rows_alt(t, l) for t, l in zip(top_tokens, lens_tokens)])


def _is_int_division(top_tokens, lens_tokens):
    hits = (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1)
    return hits.sum(-1) // top_tokens.shape[-1]


def _is_hardcoded_n(top_tokens, lens_tokens):
    return (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1).float().sum(-1) / 10


def _is_any(top_tokens, lens_tokens):
    return (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1).any(-1).float()


def _is_distinct_over_n(top_tokens, lens_tokens):
    flat_t, flat_l = top_tokens.reshape(-1, top_tokens.shape[-1]), lens_tokens.reshape(-1, lens_tokens.shape[-1])
    scores = [len(set(t.tolist()) & set(l.tolist())) / len(t) for t, l in zip(flat_t, flat_l)]
    return torch.tensor(scores, dtype=torch.float32).reshape(top_tokens.shape[:-1])


# ----------------------------------------------------------------------------- concept_success
def _cs_loop_alt(tokens, probs, concept, valid):
    hit, mass = torch.zeros(len(tokens)), torch.zeros(len(tokens))
    for b in range(len(tokens)):
        n = int(valid[b].sum())
        text = tokens[b][valid[b]]
        hit[b] = float(bool(concept[text].any())) if n else 0.0
        mass[b] = probs[b][valid[b]][:, concept].sum() / n if n else 0.0
    return hit, mass


def _cs_where_alt(tokens, probs, concept, valid):
    hit = torch.where(valid, concept[tokens], False).any(dim=1).to(torch.float32)
    on_concept = (probs * concept.float()).sum(-1).masked_fill(~valid, 0.0)
    counts = valid.sum(1)
    mass = torch.where(counts > 0, on_concept.sum(1) / counts.clamp(min=1), torch.zeros(()))
    return hit, mass


def _cs_swapped(tokens, probs, concept, valid):
    hit, mass = ms.concept_success(tokens, probs, concept, valid)
    return mass, hit


def _cs_bool_hit(tokens, probs, concept, valid):
    hit, mass = ms.concept_success(tokens, probs, concept, valid)
    return hit.bool(), mass


def _cs_log_mass(tokens, probs, concept, valid):
    hit, _ = ms.concept_success(tokens, probs, concept, valid)
    per = probs[..., concept].sum(-1).log() * valid
    return hit, per.sum(-1) / valid.sum(-1).clamp(min=1)


def _cs_in_place(tokens, probs, concept, valid):
    probs[~valid] = 0.0  # zeroes the caller's padding rows
    hit, _ = ms.concept_success(tokens, probs, concept, valid)
    return hit, probs[..., concept].sum(-1).sum(-1) / valid.sum(-1).clamp(min=1)


def _cs_ignores_valid(tokens, probs, concept, valid):
    return concept[tokens].any(-1).float(), probs[..., concept].sum(-1).mean(-1)


def _cs_last_position(tokens, probs, concept, valid):
    hit, _ = ms.concept_success(tokens, probs, concept, valid)
    return hit, probs[:, -1][:, concept].sum(-1)


# ----------------------------------------------------------------------------- harmonic_aggregate
def _ha_reciprocal_alt(success, fluency):
    return 2 / (1 / success + 1 / fluency)  # IEEE: 1/0 = inf, 2/inf = 0


def _ha_nan_to_num_alt(success, fluency):
    return torch.nan_to_num(2 * success * fluency / (success + fluency), nan=0.0)


def _ha_where_alt(success, fluency):
    total = success + fluency
    return torch.where(total > 0, 2 * success * fluency / total, torch.zeros_like(total))


CASES = {
    "steering_hook": Contract(ch.check_steering_hook, iv.steering_hook, wrongs=[
        (ch._hook_no_return, "Return the steered tensor"),
        (ch._hook_in_place, "in place"),
        (ch._hook_normalised, "do not normalise"),
        (ch._hook_everywhere, "add only at those positions"),
        (ch._hook_batch_axis, "*second* axis"),
        (ch._hook_no_scale, "by scale"),
        (ch._hook_first_row, "every row of the batch"),
        (ch._hook_replaces, "do not overwrite"),
        (_hook_subtracts, None),
        (_hook_hardcoded_scale, None),
        (_hook_last_when_none, None),
        (_hook_in_place_when_none, None),
        (_hook_squared_scale, None),
        (ch._hook_truthy_positions, "positions=0 is the first position"),
        (_hook_if_not_positions, "positions=0 is the first position"),
        (_hook_no_default, None),
        (_hook_default_last, None),
        (_hook_first_call_only, None),
        (_hook_isinstance_dispatch, None),
    ], alternatives=[_hook_delta_alt, _hook_no_none_branch_alt, _hook_index_alt, _hook_mask_alt, _HookObjectAlt]),
    "diff_in_means": Contract(ch.check_diff_in_means, iv.diff_in_means, wrongs=[
        (ch._dim_reversed, "*towards* the concept"),
        (ch._dim_minus_all, "not of all rows"),
        (ch._dim_masked_mean, "divides by all n rows"),
        (ch._dim_normalised, "not a unit vector"),
        (ch._dim_concept_only, "what every activation shares"),
        (ch._dim_sums, "Means, not sums"),
        (ch._dim_long_index, "bool mask"),
        (_dim_wrong_axis, None),
        (_dim_median, None),
        (_dim_in_place, None),
        (_dim_hardcoded_rows, None),
        (_dim_float_division, None),
    ], alternatives=[_dim_numpy_alt, _dim_weights_alt]),
    "output_score": Contract(ch.check_output_score, sc.output_score, wrongs=[
        (ch._os_logits_as_probs, "probabilities first"),
        (ch._os_rank_from_one, "Count ranks from 0"),
        (ch._os_ascending, "*descending*"),
        (ch._os_first_lens_token, "not only the first"),
        (ch._os_mean_prob, "not their mean"),
        (ch._os_no_rank, "rank score"),
        (ch._os_rank_over_k, "not by k"),
        (ch._os_softmax_dim0, "last dimension"),
        (_os_sum_probs, None),
        (_os_hardcoded_k, None),
        (_os_log_probs, None),
        (_os_v_minus_one, None),
        (_os_rows_only, None),
        (_os_flat_squeezed, None),
        (_os_integer_division, "your rank score is always 1"),
        (_os_rank_among_lens, "your rank score is always 1"),
    ], alternatives=[_os_argsort_alt, _os_sorted_alt, _os_rank_of_rank_alt, _os_searchsorted_alt]),
    "input_score": Contract(ch.check_input_score, sc.input_score, wrongs=[
        (ch._is_lens_found, "not the fraction of lens tokens"),
        (ch._is_unique, "repeats included"),
        (ch._is_count, "Return a fraction"),
        (ch._is_top_lens_only, "*any* of the k"),
        (ch._is_over_k, "not by k"),
        (ch._is_isin_all, "*own* lens tokens"),
        (_is_int_division, None),
        (_is_hardcoded_n, None),
        (_is_any, None),
        (_is_distinct_over_n, None),
    ], alternatives=[_is_loop_alt, _is_isin_rows_alt]),
    "concept_success": Contract(ch.check_concept_success, ms.concept_success, wrongs=[
        (ch._cs_hit_ignores_valid, "Only the text counts"),
        (ch._cs_mass_over_T, "not by all T"),
        (ch._cs_mass_with_padding, "Leave the padding positions out"),
        (ch._cs_hit_rate, "*at least one*"),
        (ch._cs_sampled_prob, "whatever token was then sampled"),
        (ch._cs_mean_over_concept, "do not average"),
        (ch._cs_nan_empty, "not NaN"),
        (ch._cs_long_mask, "bool mask over the vocabulary"),
        (_cs_swapped, None),
        (_cs_bool_hit, None),
        (_cs_log_mass, None),
        (_cs_in_place, None),
        (_cs_last_position, None),
        (_cs_ignores_valid, None),
    ], alternatives=[_cs_loop_alt, _cs_where_alt]),
    "harmonic_aggregate": Contract(ch.check_harmonic_aggregate, ms.harmonic_aggregate, wrongs=[
        (lambda s, f: (s + f) / 2, "not the arithmetic mean"),
        (lambda s, f: (s * f).sqrt(), "not geometric"),
        (lambda s, f: s * f, "not the product"),
        (lambda s, f: 2 * s * f / (s + f), "not NaN"),
        (lambda s, f: s * f / (s + f).clamp(min=1e-12), "factor 2"),
        (lambda s, f: torch.minimum(s, f), "not the minimum"),
        (lambda s, f: 2 * s * f / (s + f).clamp(min=1), "not at 1"),
        (lambda s, f: 2 * s * f / (s + f + 1e-3), None),
        (lambda s, f: torch.maximum(s, f), None),
        (lambda s, f: float(2 * s * f / (s + f).clamp(min=1e-12)), None),
        (lambda s, f: 2 * s * f / (s + f).clamp(min=1e-12) if s.ndim == 1 else s, None),
        (lambda s, f: torch.tensor(np.asarray(2 * s * f / (s + f).clamp(min=1e-12)), dtype=torch.float64), None),
        (lambda s, f: 2 * s * f / (s + f).clamp(min=0.1), None),
    ], alternatives=[_ha_reciprocal_alt, _ha_nan_to_num_alt, _ha_where_alt, lambda s, f: 2 * s * f / (s + f + 1e-8)]),
}
globals().update(contract_tests(CASES))
