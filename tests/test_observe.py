"""Notebook 00's checks (see check_contract.py for what every check must do), and the faults of
course_lib.observe: clear errors instead of NaN/inf."""
import functools

import pytest
import torch
from check_contract import Contract, contract_tests

from course_lib import observe as ob
from course_lib.observe import checks


# ----------------------------------------------------------------------------- final_token_residuals
def _residuals_hard_coded_two_layers(cache, n_layers):
    return ob.final_token_residuals(cache, 2)


def _residuals_without_last_block(cache, n_layers):
    return torch.stack([cache["resid_pre", 0][:, -1]] + [cache["resid_post", l][:, -1] for l in range(n_layers - 1)])


def _residuals_embed_only(cache, n_layers):  # hook_embed lacks the positional embedding
    return torch.stack([cache["hook_embed"][:, -1]] + [cache["resid_post", l][:, -1] for l in range(n_layers)])


def _residuals_from_mid(cache, n_layers):
    return torch.stack([cache["resid_pre", 0][:, -1]] + [cache["resid_mid", l][:, -1] for l in range(n_layers)])


def _residuals_pre_chain(cache, n_layers):  # resid_pre of block l + 1 is resid_post of block l
    return torch.stack([cache["resid_pre", l][:, -1] for l in range(n_layers)] + [cache["resid_post", n_layers - 1][:, -1]])


# ----------------------------------------------------------------------------- head_ablation_hook
def _ablate_first_head_always(z, hook, head):
    return ob.head_ablation_hook(z, hook, 0)


def _ablate_by_slice(z, hook, head):  # z[:, :, -1:0] is empty: head -1 is never zeroed
    z = z.clone()
    z[:, :, head:head + 1] = 0.0
    return z


def _mean_ablation(z, hook, head):
    z = z.clone()
    z[:, :, head] = z[:, :, head].mean(0)
    return z


def _ablate_by_mask(z, hook, head):
    mask = torch.ones(z.shape[2])
    mask[head] = 0.0
    return z * mask[:, None]


def _ablate_with_where(z, hook, head):
    heads = torch.arange(z.shape[2])[None, None, :, None]
    return torch.where(heads == head % z.shape[2], torch.zeros_like(z), z)


# ----------------------------------------------------------------------------- logit_lens
def _lens_other_layer_norm(model, resid):
    return model.unembed(model.blocks[-1].ln2(resid))


def _lens_layer_norm_twice(model, resid):
    return model.unembed(model.ln_final(model.ln_final(resid)))


def _lens_norm_over_wrong_axis(model, resid):
    centred = resid - resid.mean(0, keepdim=True)
    normed = centred / (centred.pow(2).mean(0, keepdim=True) + model.cfg.eps).sqrt()
    return model.unembed(normed * model.ln_final.w + model.ln_final.b)


def _lens_by_hand(model, resid):
    centred = resid - resid.mean(-1, keepdim=True)
    normed = centred / (centred.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()
    return (normed * model.ln_final.w + model.ln_final.b) @ model.W_U + model.b_U


# ----------------------------------------------------------------------------- logit_difference
def _diff_second_last(logits, correct, wrong):
    return ob.logit_difference(logits[:, :-1], correct, wrong)


def _diff_by_gather(logits, correct, wrong):
    last = logits[:, -1]
    return (last.gather(1, correct[:, None]) - last.gather(1, wrong[:, None])).mean()


def _diff_log_probs(logits, correct, wrong):  # log-softmax shifts every logit of a row by the same amount
    return ob.logit_difference(logits.log_softmax(-1), correct, wrong)


def _diff_median(logits, correct, wrong):
    last = logits[:, -1]
    rows = torch.arange(len(correct))
    return (last[rows, correct] - last[rows, wrong]).median()


# ----------------------------------------------------------------------------- patch_position_hook
def _patch_position_and_after(activation, hook, pos, clean_cache):
    activation = activation.clone()
    activation[:, pos:] = clean_cache[hook.name][:, pos:]
    return activation


def _patch_last_always(activation, hook, pos, clean_cache):
    return ob.patch_position_hook(activation, hook, -1, clean_cache)


def _patch_first_cache_entry(activation, hook, pos, clean_cache):
    activation = activation.clone()
    activation[:, pos] = next(iter(clean_cache.values()))[:, pos]
    return activation


def _patch_with_where(activation, hook, pos, clean_cache):
    positions = torch.arange(activation.shape[1])[None, :, None]
    return torch.where(positions == pos % activation.shape[1], clean_cache[hook.name], activation)


def _patch_by_cat(activation, hook, pos, clean_cache):
    pos = pos % activation.shape[1]
    clean = clean_cache[hook.name]
    return torch.cat([activation[:, :pos], clean[:, pos:pos + 1], activation[:, pos + 1:]], dim=1)


# ----------------------------------------------------------------------------- patching_score
def _score_over_clean(patched, corrupted, clean):
    return (patched - corrupted) / clean


def _score_mean(patched, corrupted, clean):
    return torch.as_tensor((patched - corrupted) / (clean - corrupted)).mean()


def _score_over_corrupted(patched, corrupted, clean):
    return (patched - corrupted) / (corrupted - clean)


def _score_ratio(patched, corrupted, clean):
    return patched / clean


def _score_rearranged(patched, corrupted, clean):
    gap = clean - corrupted
    return 1 - (clean - patched) / gap


def _residuals_second_last(cache, n_layers):
    return torch.stack([cache["resid_pre", 0][:, -2]] + [cache["resid_post", l][:, -2] for l in range(n_layers)])


def _residuals_embed_plus_pos(cache, n_layers):
    return torch.stack([cache["hook_embed"][:, -1] + cache["hook_pos_embed"][:, -1]]
                       + [cache["resid_post", l][:, -1] for l in range(n_layers)])


def _ablate_last_position_only(z, hook, head):
    z = z.clone()
    z[:, -1, head] = 0.0
    return z


def _lens_unbiased_variance(model, resid):
    centred = resid - resid.mean(-1, keepdim=True)
    normed = centred / (resid.var(-1, keepdim=True) + model.cfg.eps).sqrt()  # var() is unbiased: / (d - 1)
    return model.unembed(normed * model.ln_final.w + model.ln_final.b)


def _patch_previous_position(activation, hook, pos, clean_cache):
    activation = activation.clone()
    activation[:, pos - 1] = clean_cache[hook.name][:, pos - 1]
    return activation


def _patch_first_clean_prompt(activation, hook, pos, clean_cache):
    activation = activation.clone()
    activation[:, pos] = clean_cache[hook.name][0, pos]
    return activation


def _patch_index_copy(activation, hook, pos, clean_cache):
    pos = pos % activation.shape[1]
    return activation.index_copy(1, torch.tensor([pos]), clean_cache[hook.name][:, pos:pos + 1])


CASES = {
    "final_token_residuals": Contract(ob.check_final_token_residuals, ob.final_token_residuals, wrongs=[
        (lambda cache, n: checks.final_token_residuals_at(cache, n, 0), "the *last* position"),
        (lambda cache, n: ob.final_token_residuals(cache, n)[1:], "n_layers + 1 states"),
        (lambda cache, n: torch.stack([cache["resid_post", l][:, -1] for l in range(n)], dim=1), None),
        (lambda cache, n: ob.final_token_residuals(cache, n).transpose(0, 1), "new first dimension"),
        (checks._wrong_axis_residuals, "[-1] picks the last prompt"),
        (lambda cache, n: cache.accumulated_resid(pos_slice=-1, apply_ln=True), "do not apply a LayerNorm"),
        (_residuals_hard_coded_two_layers, None),
        (_residuals_without_last_block, None),
        (_residuals_embed_only, None),
        (_residuals_from_mid, None),
        (_residuals_second_last, None),
    ], alternatives=[
        lambda cache, n: cache.accumulated_resid(pos_slice=-1),
        _residuals_pre_chain,
        _residuals_embed_plus_pos,
    ]),
    "head_ablation_hook": Contract(ob.check_head_ablation_hook, ob.head_ablation_hook, wrongs=[
        (checks._zero_all_positions, "the head is the third index"),
        (checks._zero_d_head, "the head is the third index"),
        (lambda z, hook, head: torch.zeros_like(z), "not every head"),
        (lambda z, hook, head: None, "Return the modified activation"),
        (checks._ablate_in_place, "Work on a copy"),
        (_ablate_first_head_always, None),
        (_ablate_by_slice, None),
        (_mean_ablation, None),
        (_ablate_last_position_only, None),
    ], alternatives=[_ablate_by_mask, _ablate_with_where]),
    "logit_lens": Contract(ob.check_logit_lens, ob.logit_lens, wrongs=[
        (lambda model, resid: model.unembed(resid), "model.ln_final"),
        (lambda model, resid: model.ln_final(resid) @ model.W_E.T, "not the transposed embedding"),
        (lambda model, resid: ob.logit_lens(model, resid).softmax(-1), "no softmax"),
        (lambda model, resid: model.unembed(model.ln_final(resid)).log_softmax(-1), None),
        (lambda model, resid: model.ln_final(resid) @ model.W_U, "you left out b_U"),
        (checks._bare_layer_norm, "learned scale and bias"),
        (checks._centre_in_place, "Work on a copy"),
        (_lens_other_layer_norm, None),
        (_lens_layer_norm_twice, None),
        (_lens_norm_over_wrong_axis, None),
        (_lens_unbiased_variance, None),
    ], alternatives=[_lens_by_hand, lambda model, resid: model.unembed(model.ln_final(resid.clone()))]),
    "logit_difference": Contract(ob.check_logit_difference, ob.logit_difference, wrongs=[
        (lambda lg, c, w: (lg[:, 0, c] - lg[:, 0, w]).diagonal().mean(), "last position"),
        (lambda lg, c, w: lg[:, -1].gather(1, c[:, None])[:, 0] - lg[:, -1].gather(1, w[:, None])[:, 0],
         "mean over the batch"),
        (lambda lg, c, w: ob.logit_difference(lg.softmax(-1), c, w), "not probabilities"),
        (lambda lg, c, w: ob.logit_difference(lg, w, c), "correct minus wrong"),
        (lambda lg, c, w: (lg[:, -1, c] - lg[:, -1, w]).diagonal().sum(), "not .sum()"),
        (checks._every_pair, "its own tokens"),
        (checks._subtract_in_place, "Work on a copy"),
        (_diff_second_last, None),
        (_diff_median, None),
        (lambda lg, c, w: ob.logit_difference(lg, c, w).abs(), None),  # not "wrong minus correct"
        (lambda lg, c, w: (lg.mean(1)[torch.arange(len(c)), c] - lg.mean(1)[torch.arange(len(c)), w]).mean(), None),
    ], alternatives=[_diff_by_gather, _diff_log_probs]),
    "patch_position_hook": Contract(ob.check_patch_position_hook, ob.patch_position_hook, wrongs=[
        (lambda a, hook, pos, cc: cc[hook.name], "Patch only position"),
        (lambda a, hook, pos, cc: _patch_with_where(a, hook, pos, {hook.name: a + cc[hook.name]}), "do not add"),
        (lambda a, hook, pos, cc: a.clone(), "came back unchanged"),
        (lambda a, hook, pos, cc: ob.patch_position_hook(a, checks._hook("blocks.1.hook_resid_pre"), pos, cc),
         "Index the clean cache with hook.name"),
        (checks._patch_in_place, "Work on a copy"),
        (checks._patch_the_cache, "not the other way round"),
        (checks._patch_batch_axis, "the second index"),
        (_patch_position_and_after, None),
        (_patch_last_always, None),
        (_patch_first_cache_entry, None),
        (_patch_previous_position, None),
        (_patch_first_clean_prompt, None),
    ], alternatives=[_patch_with_where, _patch_by_cat, _patch_index_copy]),
    "patching_score": Contract(ob.check_patching_score, ob.patching_score, wrongs=[
        (lambda p, c, cl: (p - cl) / (cl - c), "gain over the *corrupted* run"),
        (lambda p, c, cl: p - c, "Divide by the full gap"),
        (lambda p, c, cl: (cl - p) / (cl - c), "still *missing*"),
        (lambda p, c, cl: (p - c) / abs(cl - c), "Keep the sign"),
        (checks._subtract_in_place_score, "Work on a copy"),
        (_score_over_clean, None),
        (_score_mean, None),
        (_score_over_corrupted, None),
        (_score_ratio, None),
    ], alternatives=[_score_rearranged, lambda p, c, cl: (p - c) * (cl - c) ** -1]),
}

globals().update(contract_tests(CASES))


# ----------------------------------------------------------------------------- faults
@pytest.mark.parametrize("clean, corrupted", [(2.0, 2.0), (torch.tensor([1.0, 2.0]), torch.tensor([0.0, 2.0]))])
def test_patching_score_refuses_an_undefined_score(clean, corrupted):
    with pytest.raises(ValueError, match="undefined"):
        ob.patching_score(1.0, corrupted, clean)


def test_check_models_have_every_parameter_random():
    for factory in (checks._model_2_layers, checks._model_3_layers):
        model = factory()
        assert not torch.allclose(model.ln_final.w, torch.ones_like(model.ln_final.w))
        assert model.ln_final.b.abs().min() > 0 and model.b_U.abs().min() > 0


def test_the_hooks_work_in_a_model_and_leave_it_clean():
    model = checks._model_2_layers()
    tokens = checks._tokens(0, 2)
    _, cache = model.run_with_cache(tokens)
    ablated = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_z",
                                                       functools.partial(ob.head_ablation_hook, head=1))])
    patched = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_resid_pre",
                                                       functools.partial(ob.patch_position_hook, pos=2, clean_cache=cache))])
    assert not torch.allclose(ablated, model(tokens))
    assert torch.allclose(patched, model(tokens), atol=1e-5)  # patching a run with itself changes nothing
    assert sum(len(h.fwd_hooks) for h in model.hook_dict.values()) == 0
