"""Notebook 00's checks accept the reference, reject plausible mistakes with the right hint,
and fall back to the reference for a stub."""
import torch

from check_contract import contract_tests
from course_lib import observe as ob


# (check, reference, [(wrong implementation, expected hint fragment), ...])
CASES = {
    "final_token_residuals": (ob.check_final_token_residuals, ob.final_token_residuals, [
        (lambda cache, n: ob.final_token_residuals_at(cache, n, 0), "the *last* position"),
        (lambda cache, n: ob.final_token_residuals(cache, n)[1:], "n_layers + 1 states"),
        (lambda cache, n: torch.stack([cache["resid_post", l][:, -1] for l in range(n)], dim=1),
         "cache['resid_pre', 0]"),
    ]),
    "head_ablation_hook": (ob.check_head_ablation_hook, ob.head_ablation_hook, [
        (ob._zero_all_positions, "the head is the third index"),
        (lambda z, hook, head: torch.zeros_like(z), "not every head"),
        (lambda z, hook, head: None, "Return the modified activation"),
    ]),
    "logit_lens": (ob.check_logit_lens, ob.logit_lens, [
        (lambda model, resid: model.unembed(resid), "model.ln_final"),
        (lambda model, resid: model.ln_final(resid) @ model.W_E.T, "not the transposed embedding"),
        (lambda model, resid: model.unembed(model.ln_final(resid)).log_softmax(-1), None),
    ]),
    "logit_difference": (ob.check_logit_difference, ob.logit_difference, [
        (lambda lg, c, w: (lg[:, 0, c] - lg[:, 0, w]).diagonal().mean(), "last position"),
        (lambda lg, c, w: lg[:, -1].gather(1, c[:, None])[:, 0] - lg[:, -1].gather(1, w[:, None])[:, 0], "mean over the batch"),
        (lambda lg, c, w: ob.logit_difference(lg.softmax(-1), c, w), "not probabilities"),
        (lambda lg, c, w: ob.logit_difference(lg, w, c), "correct minus wrong"),
    ]),
    "patch_position_hook": (ob.check_patch_position_hook, ob.patch_position_hook, [
        (lambda a, hook, pos, cc: cc[hook.name], "Patch only position"),
        (lambda a, hook, pos, cc: torch.cat([a[:, :pos], (a + cc[hook.name])[:, pos:pos + 1] if pos != -1 else
                                             (a + cc[hook.name])[:, -1:], a[:, pos + 1:] if pos != -1 else a[:, :0]], 1),
         "do not add"),
        (lambda a, hook, pos, cc: a.clone(), "hook.name"),
    ]),
    "patching_score": (ob.check_patching_score, ob.patching_score, [
        (lambda p, c, cl: (p - cl) / (cl - c), "gain over the *corrupted* run"),
        (lambda p, c, cl: p - c, "Divide by the full gap"),
    ]),
}


test_reference_passes, test_mistakes_get_their_hint, test_stub_falls_back = contract_tests(CASES)
