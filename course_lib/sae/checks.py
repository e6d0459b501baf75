"""Notebook 02's exercise checks: the SAE module, its loss, decoder normalisation, MMCS, resampling
of dead latents, fraction of variance unexplained and CE-loss recovered. The notebook trains through
the SAE module and the loss, so their checks compare gradients too (``gradient_case``)."""
from __future__ import annotations

import torch

from ..checking import Case, Exercise, Mistake, gradient_case, seeded_generator
from . import measures, model, resampling

_PARAMS = ("W_enc", "b_enc", "W_dec", "b_dec")


def _randn(seed: int, *shape):
    return torch.randn(*shape, generator=seeded_generator(seed))


# ----------------------------------------------------------------------------- the SAE module
def _fixed_weights(seed: int, d_in: int, d_sae: int) -> dict:
    g = seeded_generator(seed)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g), "b_enc": torch.randn(d_sae, generator=g) * 0.5,
            "W_dec": model.normalize_decoder(torch.randn(d_sae, d_in, generator=g)),
            "b_dec": torch.randn(d_in, generator=g)}


def _sae_case(name: str, seed: int, batch_shape: tuple, d_in: int, d_sae: int) -> Case:
    """encode(x), decode(f) and forward(x) of an SAE with fixed random weights, and the gradients of
    all three with respect to x, f and every parameter."""
    def run(cls):
        sae = cls(d_in, d_sae)
        sae.load_state_dict(_fixed_weights(seed, d_in, d_sae))
        x = _randn(seed + 1, *batch_shape, d_in).requires_grad_()
        f = (_randn(seed + 2, *batch_shape, d_sae).abs() + 0.1).requires_grad_()
        out = {"encode(x)": sae.encode(x), "decode(f)": sae.decode(f), "forward(x)": sae(x)}
        return out, {"x": x, "f": f, **{p: getattr(sae, p) for p in _PARAMS}}
    return gradient_case(name, run)


class _NoPreBias(model.SAE):
    def encode(self, x):
        return torch.relu(x @ self.W_enc + self.b_enc)


class _NoReLU(model.SAE):
    def encode(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc


class _DecodeNoBias(model.SAE):
    def decode(self, f):
        return f @ self.W_dec


class _PreBiasAdded(model.SAE):
    def encode(self, x):
        return torch.relu((x + self.b_dec) @ self.W_enc + self.b_enc)


class _DetachedEncode(model.SAE):
    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc).detach()


class _TiedEncoder(model.SAE):
    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_dec.T + self.b_enc)


class _ReLUBeforeBias(model.SAE):
    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc) + self.b_enc


check_sae = Exercise(
    "SAE", model.SAE,
    cases=lambda: [_sae_case("batch of 5, d_in 6, d_sae 10", 1, (5,), 6, 10),
                   _sae_case("[batch, pos] inputs (2, 3, 4), d_sae 8", 2, (2, 3), 4, 8),
                   _sae_case("a single input, d_sae 1 (edge case)", 3, (1,), 3, 1)],
    mistakes=[
        Mistake("Subtract the decoder bias before encoding (the 'pre-bias'): f = ReLU((x − b_dec) W_enc + b_enc).",
                _NoPreBias),
        Mistake("Apply the ReLU in encode: latent activations are never negative.", _NoReLU),
        Mistake("decode adds the decoder bias back: x̂ = f W_dec + b_dec.", _DecodeNoBias),
        Mistake("The pre-bias is *subtracted* (x − b_dec), not added.", _PreBiasAdded),
        Mistake("Do not .detach() the latents: the training loop back-propagates through encode into W_enc, "
                "b_enc and b_dec (a detached encoder never learns).", _DetachedEncode),
        Mistake("Encode with W_enc ([d_in, d_sae]), not with the decoder transposed: the two are separate "
                "parameters.", _TiedEncoder),
        Mistake("Add b_enc *before* the ReLU: f = ReLU((x − b_dec) W_enc + b_enc).", _ReLUBeforeBias),
    ],
    hint="encode: ReLU((x − b_dec) @ W_enc + b_enc); decode: f @ W_dec + b_dec; W_enc is [d_in, d_sae]. "
         "Use torch operations on the parameters (no .detach(), .data or torch.no_grad()): the notebook trains "
         "through your class.")


# ----------------------------------------------------------------------------- the loss
def _loss_case(name: str, seed: int, batch: int, d_in: int, d_sae: int, l1: float, relu: bool = True) -> Case:
    """The loss and its gradients with respect to x, x̂ and the latents' pre-activation z (f = ReLU(z),
    or f = z for signed latents)."""
    def run(impl):
        g = seeded_generator(seed)
        x = torch.randn(batch, d_in, generator=g).requires_grad_()
        x_hat = torch.randn(batch, d_in, generator=g).requires_grad_()
        z = torch.randn(batch, d_sae, generator=g).requires_grad_()
        return impl(x, x_hat, z.relu() if relu else z, l1), {"x": x, "x_hat": x_hat, "f": z}
    return gradient_case(name, run)


def _mse_mean(x, x_hat, f, l1):
    return torch.nn.functional.mse_loss(x_hat, x) + l1 * f.abs().sum(-1).mean()


def _l1_mean(x, x_hat, f, l1):
    return (x - x_hat).pow(2).sum(-1).mean() + l1 * f.abs().mean()


def _l2_penalty(x, x_hat, f, l1):
    return (x - x_hat).pow(2).sum(-1).mean() + l1 * f.pow(2).sum(-1).mean()


def _summed(x, x_hat, f, l1):
    return (x - x_hat).pow(2).sum() + l1 * f.abs().sum()


def _no_abs(x, x_hat, f, l1):
    return (x - x_hat).pow(2).sum(-1).mean() + l1 * f.sum(-1).mean()


def _detached_loss(x, x_hat, f, l1):
    return (x - x_hat).pow(2).sum(-1).mean().detach() + l1 * f.abs().sum(-1).mean().detach()


def _unsquared(x, x_hat, f, l1):
    return (x - x_hat).norm(dim=-1).mean() + l1 * f.abs().sum(-1).mean()


check_sae_loss = Exercise(
    "sae_loss", model.sae_loss,
    cases=lambda: [_loss_case("batch 8, d_in 5, d_sae 12, λ = 0.3", 4, 8, 5, 12, 0.3),
                   _loss_case("λ = 0: reconstruction only (edge case)", 5, 4, 3, 6, 0.0),
                   _loss_case("one sample, λ = 2 (edge case)", 6, 1, 7, 3, 2.0),
                   _loss_case("signed latents (the L1 norm of any f), λ = 0.5", 7, 6, 4, 5, 0.5, relu=False)],
    mistakes=[
        Mistake("Sum the squared error over the d_in dimensions, then average over the batch "
                "(F.mse_loss averages over the dimensions too).", _mse_mean),
        Mistake("The sparsity term is the L1 norm of each sample's latents (sum over latents), averaged "
                "over the batch.", _l1_mean),
        Mistake("Use the L1 norm (sum of |f|), not the squared L2 norm, for sparsity.", _l2_penalty),
        Mistake("Average over the batch: summing makes the loss (and the right λ) depend on the batch size.", _summed),
        Mistake("The L1 norm sums the *absolute values* |f|: without abs() negative latents lower the penalty.",
                _no_abs),
        Mistake("Return the loss as a tensor connected to the graph: .detach() or .item() leaves nothing to "
                "back-propagate, and training stops learning.", _detached_loss),
        Mistake("The reconstruction term is the *squared* error ‖x − x̂‖², not the norm ‖x − x̂‖.", _unsquared),
    ],
    hint="loss = mean over the batch of ‖x − x̂‖² (summed over dimensions) + λ · mean over the batch of Σ|f|, "
         "computed with torch operations (the notebook back-propagates through it).")


# ----------------------------------------------------------------------------- decoder normalisation
IN_PLACE = ("Return a new tensor and leave the arguments unchanged (no W /= …, .div_(), or .data = …): "
            "the caller still uses them (and an in-place edit of a parameter that requires grad raises).")


def _unchanged(impl, *args):
    """The output, and the tensor arguments as they are after the call (they must not change)."""
    return {"output": impl(*args), "the arguments after the call (must be unchanged)": list(args)}


def _with_zero_row(impl):
    W = _randn(11, 5, 4)
    W[2] = 0.0
    return _unchanged(impl, W)


def _normalize_in_place(W):
    W /= W.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return W


check_normalize_decoder = Exercise(
    "normalize_decoder", model.normalize_decoder,
    cases=lambda: [Case("W_dec [12, 5]", lambda impl: _unchanged(impl, _randn(7, 12, 5))),
                   Case("W_dec [3, 8] (fewer latents than dimensions)", lambda impl: _unchanged(impl, _randn(8, 3, 8) * 5)),
                   Case("short rows (norms below 1)", lambda impl: _unchanged(impl, _randn(12, 6, 3) * 0.1)),
                   Case("tiny rows (norms ~1e-4: clamp far below them)",
                        lambda impl: _unchanged(impl, _randn(13, 4, 5) * 1e-4)),
                   Case("one latent (edge case)", lambda impl: _unchanged(impl, _randn(9, 1, 4))),
                   Case("already unit rows (edge case)",
                        lambda impl: _unchanged(impl, model.normalize_decoder(_randn(10, 6, 6)))),
                   Case("a dead latent's all-zero row (edge case: stays zero, no NaN)", _with_zero_row)],
    mistakes=[
        Mistake("W_dec is [d_sae, d_in]: each *row* is a latent's direction; normalise along the last "
                "dimension (dim=-1), not the columns.", lambda W: W / W.norm(dim=0, keepdim=True)),
        Mistake("Normalise each row separately, not the whole matrix at once.", lambda W: W / W.norm()),
        Mistake("Divide by the norm (keepdim=True for broadcasting), do not subtract it.",
                lambda W: W - W.norm(dim=-1, keepdim=True)),
        Mistake("An all-zero row (a latent that never learned anything) divides 0 by 0 = NaN, and the NaN spreads "
                "through training: clamp the norm, e.g. W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8).",
                lambda W: W / W.norm(dim=-1, keepdim=True)),
        Mistake("Divide by the norm, not the squared norm.", lambda W: W / W.pow(2).sum(-1, keepdim=True)),
        Mistake("Scale *every* row to norm 1, also the shorter ones (this only shrinks rows longer than 1).",
                lambda W: W / W.norm(dim=-1, keepdim=True).clamp(min=1)),
        Mistake(IN_PLACE, _normalize_in_place),
    ],
    hint="W_dec / W_dec.norm(dim=-1, keepdim=True), with the norm clamped away from 0 (.clamp(min=1e-8)).")


# ----------------------------------------------------------------------------- MMCS
def _mmcs_case(seed: int, n_true: int, d_sae: int, d: int, scale: float = 1.0):
    return lambda impl: _unchanged(impl, _randn(seed, n_true, d) * scale, _randn(seed + 1, d_sae, d) * 2)


def _mmcs_known(impl):
    true = model.normalize_decoder(_randn(11, 4, 6))
    learned = torch.cat([true * 3.0, _randn(12, 5, 6)])  # contains every true direction (scaled)
    return _unchanged(impl, true, learned)


def _mmcs_in_place(t, w):
    t /= t.norm(dim=-1, keepdim=True)
    w /= w.norm(dim=-1, keepdim=True)
    return (t @ w.T).max(dim=1).values.mean()


def _unit(W):
    return W / W.norm(dim=-1, keepdim=True)


check_mmcs = Exercise(
    "mmcs", measures.mmcs,
    cases=lambda: [Case("6 true, 10 learned, d = 4", _mmcs_case(13, 6, 10, 4)),
                   Case("true directions not unit-norm, more true than learned", _mmcs_case(14, 9, 3, 5, 3.0)),
                   Case("learned dictionary contains every true direction (edge case: MMCS = 1)", _mmcs_known)],
    mistakes=[
        Mistake("For each *true* feature take the best learned row (max over learned), then average "
                "over true features — not the other way round.", lambda t, w: measures.mmcs(w, t)),
        Mistake("Use cosines: normalise both the true directions and the decoder rows before the dot product.",
                lambda t, w: (t @ w.T).max(dim=1).values.mean()),
        Mistake("Take the max cosine with any learned row, not the mean.", lambda t, w: (_unit(t) @ _unit(w).T).mean()),
        Mistake("A cosine of −1 is the opposite direction, not a match: do not take absolute values.",
                lambda t, w: (_unit(t) @ _unit(w).T).abs().max(dim=1).values.mean()),
        Mistake("Normalise the true directions too (they need not have unit norm).",
                lambda t, w: (t @ _unit(w).T).max(dim=1).values.mean()),
        Mistake("Normalise the learned decoder rows too (they need not have unit norm).",
                lambda t, w: (_unit(t) @ w.T).max(dim=1).values.mean()),
        Mistake("Average the best cosines over the true features (mean), do not add them up.",
                lambda t, w: (_unit(t) @ _unit(w).T).max(dim=1).values.sum()),
        Mistake(IN_PLACE, _mmcs_in_place),
    ],
    hint="cos = normalised true @ normalised W_dec.T, shape [n_true, d_sae]; max over dim 1; mean.")


# ----------------------------------------------------------------------------- resampling
def _resample_case(seed: int, d_in: int, d_sae: int, dead_idx: list[int], scale: float | None = None):
    """The new weights, and the arguments after the call (they must not change)."""
    def run(impl):
        g = seeded_generator(seed)
        W_enc, b_enc = torch.randn(d_in, d_sae, generator=g), torch.randn(d_sae, generator=g)
        W_dec = model.normalize_decoder(torch.randn(d_sae, d_in, generator=g))
        dead = torch.zeros(d_sae, dtype=torch.bool)
        dead[dead_idx] = True
        inputs = torch.randn(len(dead_idx), d_in, generator=g) * 3
        args = (W_enc, b_enc, W_dec, dead, inputs)
        out = impl(*args) if scale is None else impl(*args, scale=scale)
        return {"returned": out, "the arguments after the call": [a.clone() for a in args]}
    return run


def _resample_all_norms(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    W_dec[dead], W_enc[:, dead], b_enc[dead] = d, (d * scale * W_enc.norm(dim=0).mean()).T, 0.0
    return W_enc, b_enc, W_dec


def _resample_keep_bias(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    new = resampling.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale)
    return new[0], b_enc.clone(), new[2]


def _resample_raw_decoder(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    new = resampling.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale)
    W_dec = new[2].clone()
    W_dec[dead] = inputs
    return new[0], new[1], W_dec


def _resample_no_scale(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    return resampling.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale=1.0)


def _resample_fixed_scale(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    return resampling.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale=0.2)


def _resample_in_place(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    new = resampling.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale)
    for old, value in zip((W_enc, b_enc, W_dec), new):
        old.copy_(value)
    return W_enc, b_enc, W_dec


def _resample_no_fallback(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    if not dead.any():
        return W_enc, b_enc, W_dec
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    W_dec[dead], W_enc[:, dead], b_enc[dead] = d, (d * scale * W_enc[:, ~dead].norm(dim=0).mean()).T, 0.0
    return W_enc, b_enc, W_dec


check_resample_weights = Exercise(
    "resample_weights", resampling.resample_weights,
    cases=lambda: [Case("3 of 10 latents dead (default scale)", _resample_case(15, 6, 10, [1, 4, 9])),
                   Case("2 of 7 latents dead, scale = 0.5", _resample_case(18, 5, 7, [0, 5], scale=0.5)),
                   Case("no latent dead (edge case: nothing changes)", _resample_case(16, 4, 5, [], scale=0.3)),
                   Case("every latent dead (edge case: alive norm = 1)", _resample_case(17, 3, 4, [0, 1, 2, 3],
                                                                                        scale=0.4))],
    mistakes=[
        Mistake("Scale by the mean encoder norm of the *alive* latents only (W_enc[:, ~dead]).", _resample_all_norms),
        Mistake("Reset the dead latents' encoder bias b_enc to 0.", _resample_keep_bias),
        Mistake("The new decoder row is the *normalised* input (unit norm).", _resample_raw_decoder),
        Mistake("The encoder column is the input direction × scale × the mean alive encoder norm: keep it small "
                "so the new latent starts gently.", _resample_no_scale),
        Mistake("Use the `scale` argument, not a fixed 0.2 (0.2 is only its default).", _resample_fixed_scale),
        Mistake("Work on clones (W_enc.clone(), …): the function must not modify its arguments in place.",
                _resample_in_place),
        Mistake("With every latent dead there is no alive encoder column to average (the mean of nothing is NaN): "
                "use 1.0 then.", _resample_no_fallback),
    ],
    hint="Work on clones. direction = inputs / ‖inputs‖; W_dec[dead] = direction; "
         "W_enc[:, dead] = (direction · scale · mean norm of the alive encoder columns (1.0 if none)).T; "
         "b_enc[dead] = 0.")


# ----------------------------------------------------------------------------- FVU and CE recovered
def _fvu_scaled(impl):
    x = _randn(22, 30, 4) * torch.tensor([5.0, 1.0, 0.2, 2.0]) + 1
    return impl(x, x + _randn(23, 30, 4) * torch.tensor([0.1, 0.5, 0.2, 1.0]))


check_fvu = Exercise(
    "fvu", measures.fvu,
    cases=lambda: [Case("batch 20, d = 5", lambda impl: impl(_randn(18, 20, 5) + 3, _randn(19, 20, 5))),
                   Case("dimensions of different variance", _fvu_scaled),
                   Case("perfect reconstruction (edge case: 0)", lambda impl: impl(_randn(20, 6, 3), _randn(20, 6, 3))),
                   Case("predicting the mean (edge case: 1)",
                        lambda impl: impl(_randn(21, 8, 4), _randn(21, 8, 4).mean(0).expand(8, 4)))],
    mistakes=[
        Mistake("The variance is around the mean of x: divide by Σ‖x − mean(x)‖², not Σ‖x‖².",
                lambda x, x_hat: (x - x_hat).pow(2).sum() / x.pow(2).sum()),
        Mistake("FVU is unexplained variance: the error over the variance, not 1 minus it.",
                lambda x, x_hat: 1 - measures.fvu(x, x_hat)),
        Mistake("Centre each dimension on its own mean over the batch, x.mean(0), not on one overall mean.",
                lambda x, x_hat: (x - x_hat).pow(2).sum() / (x - x.mean()).pow(2).sum()),
        Mistake("The denominator is the variance of the input x, not of the reconstruction x̂.",
                lambda x, x_hat: (x - x_hat).pow(2).sum() / (x_hat - x_hat.mean(0)).pow(2).sum().clamp(min=1e-12)),
        Mistake("Sum the errors and the variances over all dimensions first, then divide once (not one ratio per "
                "dimension, averaged).",
                lambda x, x_hat: ((x - x_hat).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean()),
        Mistake("Compare squared errors with squared deviations: no square root.",
                lambda x, x_hat: (x - x_hat).norm() / (x - x.mean(0)).norm()),
    ],
    hint="Σ (x − x̂)² / Σ (x − x.mean(0))², both sums over the batch and the dimensions.")


def _ce_tensors(impl):
    return impl(_randn(22, 5).abs(), _randn(23, 5).abs() + 1, _randn(24, 5).abs() + 3)


check_ce_loss_recovered = Exercise(
    "ce_loss_recovered", measures.ce_loss_recovered,
    cases=lambda: [Case("numbers", lambda impl: impl(2.0, 2.5, 6.0)),
                   Case("a perfect SAE (edge case: 1)", lambda impl: impl(1.5, 1.5, 4.0)),
                   Case("an SAE as bad as zero-ablation (edge case: 0)", lambda impl: impl(1.5, 4.0, 4.0)),
                   Case("an SAE worse than zero-ablation (edge case: below 0)", lambda impl: impl(1.5, 5.0, 4.0)),
                   Case("an SAE a hair better than the clean model (edge case: above 1)",
                        lambda impl: impl(0.75, 0.74, 8.0)),
                   Case("tensors", _ce_tensors)],
    mistakes=[
        Mistake("Measure what the SAE recovers relative to zero-ablation: (CE_zero − CE_sae) / (CE_zero − CE_clean).",
                lambda c, s, z: (s - c) / (z - c)),
        Mistake("Divide by the whole gap CE_zero − CE_clean so that 1 means 'as good as the clean model'.",
                lambda c, s, z: z - s),
        Mistake("The denominator is CE_zero − CE_clean (the damage zero-ablation does).",
                lambda c, s, z: (z - s) / z),
        Mistake("Do not clip the score to [0, 1]: below 0 (worse than zero-ablation) and above 1 (better than clean) "
                "are informative.",
                lambda c, s, z: torch.as_tensor((z - s) / (z - c)).clamp(0, 1)),
        Mistake("No absolute values: an SAE worse than zero-ablation must get a negative score.",
                lambda c, s, z: abs(z - s) / abs(z - c)),
    ],
    hint="(ce_zero − ce_sae) / (ce_zero − ce_clean): 1 = the SAE loses nothing, 0 = as bad as zero-ablation.")
