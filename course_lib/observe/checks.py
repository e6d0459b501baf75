"""Notebook 00's exercise checks: seeded cases on small check models whose every parameter is
random (so a lens that skips the LayerNorm's scale or the unembedding bias shows), and the
plausible mistakes with their hints.

Every case also returns the tensor inputs after the call, so an implementation that edits its
inputs in place (the activation of a hook may also sit in a cache) is caught."""
from __future__ import annotations

from types import SimpleNamespace

from ..checking import Case, Exercise, Mistake, check_model, randomize_parameters, seeded_generator
from .interventions import head_ablation_hook, patch_position_hook
from .lens import final_token_residuals, logit_lens
from .measures import logit_difference, patching_score

D_MODEL, D_VOCAB = 16, 11
IN_PLACE = ("Work on a copy: your function changed its input in place (the activation a hook receives may "
            "also be stored in a cache). Start with x = x.clone() and change the copy.")


# ----------------------------------------------------------------------------- check inputs
def _random_model(n_layers: int, seed: int):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=n_layers, d_model=D_MODEL, n_heads=2, d_head=8, d_mlp=32, n_ctx=8,
                                  d_vocab=D_VOCAB, act_fn="gelu", normalization_type="LN", seed=seed, device="cpu")
    return randomize_parameters(HookedTransformer(cfg).eval(), seed)


@check_model
def _model_2_layers():
    return _random_model(2, seed=0)


@check_model
def _model_3_layers():
    return _random_model(3, seed=1)


def _tokens(seed: int, batch: int, pos: int = 6):
    import torch

    return torch.randint(0, D_VOCAB, (batch, pos), generator=seeded_generator(seed))


def _randn(seed: int, *shape):
    import torch

    return torch.randn(*shape, generator=seeded_generator(seed))


def _hook(name: str):
    return SimpleNamespace(name=name)


def _act_name(name: str, layer: int) -> str:
    from transformer_lens.utilities import get_act_name

    return get_act_name(name, layer)


def _with_inputs(out, **inputs) -> dict:
    """The output, and every tensor input as it is after the call (it must be unchanged)."""
    return {"output": out, **{f"{name} after the call (must be unchanged)": x for name, x in inputs.items()}}


# ----------------------------------------------------------------------------- exercise 1
def final_token_residuals_at(cache, n_layers: int, pos: int):
    import torch

    return torch.stack([cache["resid_pre", 0][:, pos]] + [cache["resid_post", l][:, pos] for l in range(n_layers)])


def _cache_case(model_factory, seed: int, batch: int):
    def run(impl):
        model = model_factory()
        _, cache = model.run_with_cache(_tokens(seed, batch))
        return impl(cache, model.cfg.n_layers)
    return run


def _wrong_axis_residuals(cache, n_layers):
    import torch

    return torch.stack([cache["resid_pre", 0][-1]] + [cache["resid_post", l][-1] for l in range(n_layers)])


check_final_token_residuals = Exercise(
    "final_token_residuals", final_token_residuals,
    cases=lambda: [Case("2-layer model, batch 3", _cache_case(_model_2_layers, 1, 3)),
                   Case("3-layer model, batch 2", _cache_case(_model_3_layers, 2, 2)),
                   Case("3-layer model, batch 1 (edge case)", _cache_case(_model_3_layers, 3, 1))],
    mistakes=[
        Mistake("Take the *last* position (index -1), not the first.",
                lambda cache, n: final_token_residuals_at(cache, n, 0)),
        Mistake("Start with the embedding (resid_pre of block 0): there are n_layers + 1 states.",
                lambda cache, n: final_token_residuals(cache, n)[1:]),
        Mistake("Stack the states along a new first dimension (layers first), not along the batch.",
                lambda cache, n: final_token_residuals(cache, n).transpose(0, 1)),
        Mistake("The position is the second index of a cached activation [batch, pos, d_model]: take [:, -1]; "
                "[-1] picks the last prompt of the batch instead.", _wrong_axis_residuals),
        Mistake("The states are the raw residual stream: do not apply a LayerNorm (the logit lens does that later).",
                lambda cache, n: cache.accumulated_resid(pos_slice=-1, apply_ln=True)),
    ],
    hint="Stack cache['resid_pre', 0][:, -1] (the embedding) and cache['resid_post', l][:, -1] for every layer "
         "l in range(n_layers): shape [n_layers + 1, batch, d_model].")


# ----------------------------------------------------------------------------- exercise 3
def _head_case(seed: int, shape: tuple, head: int):
    def run(impl):
        z = _randn(seed, *shape)
        return _with_inputs(impl(z, _hook(_act_name("z", 0)), head), z=z)
    return run


def _zero_all_positions(z, hook, head):
    z = z.clone()
    z[:, head] = 0.0
    return z


def _zero_d_head(z, hook, head):
    z = z.clone()
    z[..., head] = 0.0
    return z


def _ablate_in_place(z, hook, head):
    z[:, :, head] = 0.0
    return z


HEAD_AXIS = "hook_z is [batch, pos, head, d_head]: the head is the third index, z[:, :, head]."

check_head_ablation_hook = Exercise(
    "head_ablation_hook", head_ablation_hook,
    cases=lambda: [Case("batch 2, 5 positions, 4 heads, head 1", _head_case(3, (2, 5, 4, 8), 1)),
                   Case("head 2 of 4", _head_case(6, (3, 4, 4, 5), 2)),
                   Case("last head (edge case)", _head_case(4, (1, 5, 4, 8), 3)),
                   Case("negative index -1 (edge case)", _head_case(5, (2, 4, 3, 2), -1))],
    mistakes=[
        Mistake(HEAD_AXIS, _zero_all_positions),
        Mistake(HEAD_AXIS, _zero_d_head),
        Mistake("Zero only the chosen head, not every head.", lambda z, hook, head: z * 0.0),
        Mistake("Return the modified activation: a hook's return value replaces the activation.",
                lambda z, hook, head: None),
        Mistake(IN_PLACE, _ablate_in_place),
    ],
    hint="Copy z (z.clone()), set the copy's z[:, :, head] to 0 (every prompt and position, one head) and "
         "return the copy.")


# ----------------------------------------------------------------------------- exercise 2
def _lens_case(model_factory, seed: int, shape: tuple, scale: float = 1.0):
    def run(impl):
        resid = _randn(seed, *shape) * scale
        return _with_inputs(impl(model_factory(), resid), resid=resid)
    return run


def _bare_layer_norm(model, resid):
    import torch

    return model.unembed(torch.nn.functional.layer_norm(resid, (resid.shape[-1],), eps=model.cfg.eps))


def _centre_in_place(model, resid):
    resid -= resid.mean(-1, keepdim=True)
    return model.unembed(model.ln_final(resid))


check_logit_lens = Exercise(
    "logit_lens", logit_lens,
    cases=lambda: [Case("a batch of states [4, 16]", _lens_case(_model_2_layers, 6, (4, D_MODEL))),
                   Case("states with positions [2, 3, 16]", _lens_case(_model_3_layers, 7, (2, 3, D_MODEL))),
                   Case("a zero state (edge case)", _lens_case(_model_2_layers, 8, (1, D_MODEL), scale=0.0))],
    mistakes=[
        Mistake("Apply the final LayerNorm (model.ln_final) before unembedding: the unembedding was "
                "trained on normalised states.", lambda model, resid: model.unembed(resid)),
        Mistake("Unembed with model.unembed (W_U and b_U), not the transposed embedding W_E.",
                lambda model, resid: model.ln_final(resid) @ model.W_E.T),
        Mistake("Return logits, not probabilities: no softmax here.",
                lambda model, resid: logit_lens(model, resid).softmax(-1)),
        Mistake("The unembedding has a bias: model.unembed computes x @ W_U + b_U (you left out b_U).",
                lambda model, resid: model.ln_final(resid) @ model.W_U),
        Mistake("model.ln_final has a learned scale and bias (ln_final.w, ln_final.b): use the model's own "
                "final LayerNorm, not a bare normalisation.", _bare_layer_norm),
        Mistake(IN_PLACE, _centre_in_place),
    ],
    hint="logits = model.unembed(model.ln_final(resid)): the model's final LayerNorm (with its learned scale and "
         "bias), then the unembedding (W_U and b_U), for any leading shape of resid.")


# ----------------------------------------------------------------------------- exercise 4
def _logit_diff_case(seed: int, batch: int, pos: int = 4):
    import torch

    def run(impl):
        g = seeded_generator(seed)
        logits = torch.randn(batch, pos, D_VOCAB, generator=g) * 3
        correct = torch.randint(0, D_VOCAB, (batch,), generator=g)
        wrong = (correct + torch.randint(1, D_VOCAB, (batch,), generator=g)) % D_VOCAB
        return _with_inputs(impl(logits, correct, wrong), logits=logits, correct=correct, wrong=wrong)
    return run


def _every_pair(logits, correct, wrong):
    return (logits[:, -1][:, correct] - logits[:, -1][:, wrong]).mean()


def _subtract_in_place(logits, correct, wrong):
    logits -= logits.mean(-1, keepdim=True)
    return logit_difference(logits, correct, wrong)


check_logit_difference = Exercise(
    "logit_difference", logit_difference,
    cases=lambda: [Case("batch of 5", _logit_diff_case(9, 5)),
                   Case("batch of 3, 6 positions", _logit_diff_case(11, 3, 6)),
                   Case("batch of 1 (edge case)", _logit_diff_case(10, 1)),
                   Case("batch of 4 that prefers the correct tokens (difference > 0)", _logit_diff_case(12, 4))],
    mistakes=[
        Mistake("Use the last position (logits[:, -1]): that is where the next token is predicted.",
                lambda lg, c, w: logit_difference(lg[:, :1], c, w)),
        Mistake("Return one number: the mean over the batch.",
                lambda lg, c, w: lg[:, -1][range(len(c)), c] - lg[:, -1][range(len(c)), w]),
        Mistake("Compare logits, not probabilities (a softmax squashes the difference).",
                lambda lg, c, w: logit_difference(lg.softmax(-1), c, w)),
        Mistake("correct minus wrong, not wrong minus correct.", lambda lg, c, w: -logit_difference(lg, c, w)),
        Mistake("Average over the batch (.mean()), not .sum(): the metric must not grow with the batch size.",
                lambda lg, c, w: logit_difference(lg, c, w) * len(c)),
        Mistake("Pair each prompt with its own tokens: last[rows, correct] with rows = torch.arange(batch). "
                "last[:, correct] takes every prompt's logit for every prompt's token.", _every_pair),
        Mistake(IN_PLACE, _subtract_in_place),
    ],
    hint="last = logits[:, -1]; rows = torch.arange(batch); return (last[rows, correct] - last[rows, wrong]).mean().")


# ----------------------------------------------------------------------------- exercise 5
def _patch_case(seed: int, shape: tuple, pos: int, layer: int):
    import torch

    def run(impl):
        names = [_act_name("resid_pre", l) for l in range(3)]
        activation = _randn(seed, *shape)
        clean_cache = {name: _randn(seed + 100 + l, *shape) for l, name in enumerate(names)}
        out = impl(activation, _hook(names[layer]), pos, clean_cache)
        return _with_inputs(out, activation=activation, clean_cache=torch.stack(list(clean_cache.values())))
    return run


def _patch_everything(activation, hook, pos, clean_cache):
    return clean_cache[hook.name].clone()


def _patch_in_place(activation, hook, pos, clean_cache):
    activation[:, pos] = clean_cache[hook.name][:, pos]
    return activation


def _patch_the_cache(activation, hook, pos, clean_cache):
    clean_cache[hook.name][:, pos] = activation[:, pos]
    return activation


def _patch_batch_axis(activation, hook, pos, clean_cache):
    activation = activation.clone()
    activation[pos] = clean_cache[hook.name][pos]
    return activation


check_patch_position_hook = Exercise(
    "patch_position_hook", patch_position_hook,
    cases=lambda: [Case("batch 3, 5 positions, position 2, before block 1", _patch_case(11, (3, 5, D_MODEL), 2, 1)),
                   Case("first position, before block 0 (edge case)", _patch_case(12, (2, 4, D_MODEL), 0, 0)),
                   Case("last position via -1, before block 2 (edge case)", _patch_case(13, (4, 4, D_MODEL), -1, 2))],
    mistakes=[
        Mistake("Patch only position `pos`; the other positions keep the corrupted activation.", _patch_everything),
        Mistake("Replace the activation at `pos`, do not add the clean one to it.",
                lambda a, hook, pos, cc: patch_position_hook(a, hook, pos, {hook.name: cc[hook.name] + a})),
        Mistake("The activation came back unchanged: overwrite its position `pos` with clean_cache[hook.name][:, pos].",
                lambda a, hook, pos, cc: a.clone()),
        Mistake("Index the clean cache with hook.name, the name of the hook point being patched (the same hook "
                "runs at every layer), not a fixed name.",
                lambda a, hook, pos, cc: patch_position_hook(a, _hook(_act_name("resid_pre", 1)), pos, cc)),
        Mistake(IN_PLACE, _patch_in_place),
        Mistake("Copy from the clean cache into (a copy of) the activation, not the other way round: the clean "
                "cache must not change.", _patch_the_cache),
        Mistake("The position is the second index: activation[:, pos]; activation[pos] is a whole prompt of the batch.",
                _patch_batch_axis),
    ],
    hint="activation = activation.clone(); activation[:, pos] = clean_cache[hook.name][:, pos]; return activation.")


# ----------------------------------------------------------------------------- exercise 6
def _score_tensors(impl):
    patched, corrupted, clean = _randn(14, 3, 4), _randn(15, 3, 4), _randn(16, 3, 4) + 5
    return _with_inputs(impl(patched, corrupted, clean), patched=patched, corrupted=corrupted, clean=clean)


def _subtract_in_place_score(patched, corrupted, clean):
    patched -= corrupted
    return patched / (clean - corrupted)


check_patching_score = Exercise(
    "patching_score", patching_score,
    cases=lambda: [Case("numbers", lambda impl: impl(1.0, -2.0, 4.0)),
                   Case("patch that fully restores (edge case)", lambda impl: impl(3.5, 0.5, 3.5)),
                   Case("clean below corrupted (edge case)", lambda impl: impl(-1.0, 2.0, -4.0)),
                   Case("tensors", _score_tensors)],
    mistakes=[
        Mistake("Measure the gain over the *corrupted* run: (patched − corrupted) / (clean − corrupted).",
                lambda p, c, cl: (p - cl) / (cl - c)),
        Mistake("Divide by the full gap clean − corrupted, so that 1 means 'fully restored'.",
                lambda p, c, cl: p - c),
        Mistake("That is the share still *missing*, (clean − patched) / (clean − corrupted) = 1 − score; the score "
                "is what the patch gained: (patched − corrupted) / (clean − corrupted).",
                lambda p, c, cl: (cl - p) / (cl - c)),
        Mistake("Keep the sign of the gap: where clean < corrupted, a patch towards clean still scores > 0 "
                "(no abs()).", lambda p, c, cl: (p - c) / abs(cl - c)),
        Mistake(IN_PLACE, _subtract_in_place_score),
    ],
    hint="(patched − corrupted) / (clean − corrupted): 0 where the patch changes nothing, 1 where it restores "
         "the clean value; the same expression works for numbers and tensors.")
