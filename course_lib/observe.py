"""Notebook 00 — observing and manipulating a transformer: reference implementations of the
exercises (cache reading, head ablation, logit lens, logit difference, activation patching)
and their checks."""
from __future__ import annotations

import functools
from types import SimpleNamespace

from .checking import Case, Exercise, Mistake, seeded_generator


# ----------------------------------------------------------------------------- references
def final_token_residuals(cache, n_layers: int):
    """Residual stream at the last position before block 0 and after every block:
    shape [n_layers + 1, batch, d_model]."""
    import torch

    return torch.stack([cache["resid_pre", 0][:, -1]] + [cache["resid_post", l][:, -1] for l in range(n_layers)])


def head_ablation_hook(z, hook, head: int):
    """Zero-ablate one attention head: ``z`` is ``hook_z`` of shape [batch, pos, head, d_head]."""
    z = z.clone()
    z[:, :, head] = 0.0
    return z


def logit_lens(model, resid):
    """Read a residual-stream state as if it were the last layer's: final LayerNorm, then unembed."""
    return model.unembed(model.ln_final(resid))


def logit_difference(logits, correct, wrong):
    """Mean over the batch of logit(correct) − logit(wrong) at the last position.
    ``logits``: [batch, pos, vocab]; ``correct``, ``wrong``: token ids, shape [batch]."""
    import torch

    last = logits[:, -1]
    rows = torch.arange(last.shape[0], device=last.device)
    return (last[rows, correct] - last[rows, wrong]).mean()


def patch_position_hook(activation, hook, pos: int, clean_cache):
    """Replace the activation at position ``pos`` by the clean run's activation at that hook."""
    activation = activation.clone()
    activation[:, pos] = clean_cache[hook.name][:, pos]
    return activation


def patching_score(patched, corrupted, clean):
    """Fraction of the clean behaviour a patch restores: 0 = corrupted, 1 = clean."""
    return (patched - corrupted) / (clean - corrupted)


# ----------------------------------------------------------------------------- check inputs
@functools.lru_cache(maxsize=1)
def _random_model():
    """A small random-initialised HookedTransformer to run the checks on (cached)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=8,
                                  d_vocab=11, act_fn="gelu", normalization_type="LN", seed=0, device="cpu")
    return HookedTransformer(cfg).eval()


def _tokens(seed: int, batch: int = 3, pos: int = 6):
    import torch

    return torch.randint(0, 11, (batch, pos), generator=seeded_generator(seed))


def _randn(seed: int, *shape):
    import torch

    return torch.randn(*shape, generator=seeded_generator(seed))


def _cache_case(seed: int, batch: int):
    def run(impl):
        model = _random_model()
        _, cache = model.run_with_cache(_tokens(seed, batch))
        return impl(cache, model.cfg.n_layers)
    return run


def _hook(name: str = "blocks.0.hook_resid_pre"):
    return SimpleNamespace(name=name)


# ----------------------------------------------------------------------------- checks
check_final_token_residuals = Exercise(
    "final_token_residuals", final_token_residuals,
    cases=lambda: [Case("random tokens, batch 3", _cache_case(1, 3)),
                   Case("random tokens, batch 1 (edge case)", _cache_case(2, 1))],
    mistakes=[
        Mistake("Take the *last* position (index -1), not the first.",
                lambda cache, n: final_token_residuals_at(cache, n, 0)),
        Mistake("Start with the embedding (resid_pre of block 0): there are n_layers + 1 states.",
                lambda cache, n: final_token_residuals(cache, n)[1:]),
        Mistake("Stack the states along a new first dimension (layers first), not along the batch.",
                lambda cache, n: final_token_residuals(cache, n).transpose(0, 1)),
    ],
    hint="Use cache['resid_pre', 0] and cache['resid_post', layer], each [batch, pos, d_model].")


def final_token_residuals_at(cache, n_layers: int, pos: int):
    import torch

    return torch.stack([cache["resid_pre", 0][:, pos]] + [cache["resid_post", l][:, pos] for l in range(n_layers)])


def _head_case(seed: int, shape: tuple, head: int):
    return lambda impl: impl(_randn(seed, *shape), _hook("blocks.0.attn.hook_z"), head)


def _zero_all_positions(z, hook, head):
    z = z.clone()
    z[:, head] = 0.0
    return z


check_head_ablation_hook = Exercise(
    "head_ablation_hook", head_ablation_hook,
    cases=lambda: [Case("batch 2, 5 positions, 4 heads, head 1", _head_case(3, (2, 5, 4, 8), 1)),
                   Case("last head (edge case)", _head_case(4, (1, 3, 4, 8), 3)),
                   Case("negative index -1 (edge case)", _head_case(5, (2, 4, 3, 2), -1))],
    mistakes=[
        Mistake("hook_z is [batch, pos, head, d_head]: the head is the third index, z[:, :, head].",
                _zero_all_positions),
        Mistake("Zero only the chosen head, not every head.", lambda z, hook, head: z * 0.0),
        Mistake("Return the modified activation: a hook's return value replaces the activation.",
                lambda z, hook, head: None),
    ])


def _lens_case(seed: int, shape: tuple):
    return lambda impl: impl(_random_model(), _randn(seed, *shape))


check_logit_lens = Exercise(
    "logit_lens", logit_lens,
    cases=lambda: [Case("a batch of states [4, 16]", _lens_case(6, (4, 16))),
                   Case("states with positions [2, 3, 16]", _lens_case(7, (2, 3, 16))),
                   Case("a zero state (edge case)", lambda impl: impl(_random_model(), _randn(8, 1, 16) * 0))],
    mistakes=[
        Mistake("Apply the final LayerNorm (model.ln_final) before unembedding: the unembedding was "
                "trained on normalised states.", lambda model, resid: model.unembed(resid)),
        Mistake("Unembed with model.unembed (W_U and b_U), not the transposed embedding W_E.",
                lambda model, resid: model.ln_final(resid) @ model.W_E.T),
        Mistake("Return logits, not probabilities: no softmax here.",
                lambda model, resid: logit_lens(model, resid).softmax(-1)),
    ])


def _logit_diff_case(seed: int, batch: int):
    import torch

    def run(impl):
        g = seeded_generator(seed)
        return impl(torch.randn(batch, 4, 11, generator=g), torch.randint(0, 11, (batch,), generator=g),
                    torch.randint(0, 11, (batch,), generator=g))
    return run


check_logit_difference = Exercise(
    "logit_difference", logit_difference,
    cases=lambda: [Case("batch of 5", _logit_diff_case(9, 5)), Case("batch of 1 (edge case)", _logit_diff_case(10, 1))],
    mistakes=[
        Mistake("Use the last position (logits[:, -1]): that is where the next token is predicted.",
                lambda lg, c, w: logit_difference(lg[:, :1], c, w)),
        Mistake("Return one number: the mean over the batch.",
                lambda lg, c, w: lg[:, -1][range(len(c)), c] - lg[:, -1][range(len(c)), w]),
        Mistake("Compare logits, not probabilities (a softmax squashes the difference).",
                lambda lg, c, w: logit_difference(lg.softmax(-1), c, w)),
        Mistake("correct minus wrong, not wrong minus correct.", lambda lg, c, w: -logit_difference(lg, c, w)),
    ])


def _patch_case(seed: int, shape: tuple, pos: int):
    def run(impl):
        name = "blocks.1.hook_resid_pre"
        return impl(_randn(seed, *shape), _hook(name), pos, {name: _randn(seed + 100, *shape)})
    return run


def _patch_everything(activation, hook, pos, clean_cache):
    return clean_cache[hook.name].clone()


check_patch_position_hook = Exercise(
    "patch_position_hook", patch_position_hook,
    cases=lambda: [Case("batch 2, 5 positions, position 2", _patch_case(11, (2, 5, 16), 2)),
                   Case("first position (edge case)", _patch_case(12, (1, 4, 16), 0)),
                   Case("last position via -1 (edge case)", _patch_case(13, (3, 4, 16), -1))],
    mistakes=[
        Mistake("Patch only position `pos`; the other positions keep the corrupted activation.", _patch_everything),
        Mistake("Replace the activation at `pos`, do not add the clean one to it.",
                lambda a, hook, pos, cc: patch_position_hook(a, hook, pos, {hook.name: cc[hook.name] + a})),
        Mistake("Index the clean cache with hook.name, the name of the hook point being patched.",
                lambda a, hook, pos, cc: a),
    ])

check_patching_score = Exercise(
    "patching_score", patching_score,
    cases=lambda: [Case("numbers", lambda impl: impl(1.0, -2.0, 4.0)),
                   Case("patch that fully restores (edge case)", lambda impl: impl(3.5, 0.5, 3.5)),
                   Case("tensors", lambda impl: impl(_randn(14, 3, 4), _randn(15, 3, 4), _randn(16, 3, 4) + 5))],
    mistakes=[
        Mistake("Measure the gain over the *corrupted* run: (patched − corrupted) / (clean − corrupted).",
                lambda p, c, cl: (p - cl) / (cl - c)),
        Mistake("Divide by the full gap clean − corrupted, so that 1 means 'fully restored'.",
                lambda p, c, cl: p - c),
    ])
