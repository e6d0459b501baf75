"""Notebook 02's exercise checks: the SAE module, its loss, decoder normalisation, MMCS,
resampling of dead latents, fraction of variance unexplained and CE-loss recovered."""
from __future__ import annotations

import torch

from ..checking import Case, Exercise, Mistake, seeded_generator
from . import scratch as ref


def ce_loss_recovered(ce_clean, ce_sae, ce_zero):
    """(CE_zero_abl − CE_sae) / (CE_zero_abl − CE_clean): 1 = the SAE loses nothing, 0 = as bad as
    zeroing the activation."""
    return (ce_zero - ce_sae) / (ce_zero - ce_clean)


def _randn(seed: int, *shape):
    return torch.randn(*shape, generator=seeded_generator(seed))


# ----------------------------------------------------------------------------- the SAE module
def _fixed_weights(seed: int, d_in: int, d_sae: int) -> dict:
    g = seeded_generator(seed)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g), "b_enc": torch.randn(d_sae, generator=g) * 0.5,
            "W_dec": ref.normalize_decoder(torch.randn(d_sae, d_in, generator=g)),
            "b_dec": torch.randn(d_in, generator=g)}


def _sae_case(seed: int, batch_shape: tuple, d_in: int, d_sae: int):
    def run(cls):
        sae = cls(d_in, d_sae)
        sae.load_state_dict(_fixed_weights(seed, d_in, d_sae))
        x = _randn(seed + 1, *batch_shape, d_in)
        with torch.no_grad():
            f = sae.encode(x)
            x_hat, f2 = sae(x)
            return f, sae.decode(f.abs() + 0.1), x_hat, f2
    return run


class _NoPreBias(ref.SAE):
    def encode(self, x):
        return torch.relu(x @ self.W_enc + self.b_enc)


class _NoReLU(ref.SAE):
    def encode(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc


class _DecodeNoBias(ref.SAE):
    def decode(self, f):
        return f @ self.W_dec


class _PreBiasAdded(ref.SAE):
    def encode(self, x):
        return torch.relu((x + self.b_dec) @ self.W_enc + self.b_enc)


check_sae = Exercise(
    "SAE", ref.SAE,
    cases=lambda: [Case("batch of 5, d_in 6, d_sae 10", _sae_case(1, (5,), 6, 10)),
                   Case("[batch, pos] inputs (2, 3, 4), d_sae 8", _sae_case(2, (2, 3), 4, 8)),
                   Case("a single input, d_sae 1 (edge case)", _sae_case(3, (1,), 3, 1))],
    mistakes=[
        Mistake("Subtract the decoder bias before encoding (the 'pre-bias'): f = ReLU((x − b_dec) W_enc + b_enc).",
                _NoPreBias),
        Mistake("Apply the ReLU in encode: latent activations are never negative.", _NoReLU),
        Mistake("decode adds the decoder bias back: x̂ = f W_dec + b_dec.", _DecodeNoBias),
        Mistake("The pre-bias is *subtracted* (x − b_dec), not added.", _PreBiasAdded),
    ],
    hint="encode: ReLU((x − b_dec) @ W_enc + b_enc); decode: f @ W_dec + b_dec; W_enc is [d_in, d_sae].")


# ----------------------------------------------------------------------------- the loss
def _loss_case(seed: int, batch: int, d_in: int, d_sae: int, l1: float, relu: bool = True):
    def run(impl):
        g = seeded_generator(seed)
        x, x_hat = torch.randn(batch, d_in, generator=g), torch.randn(batch, d_in, generator=g)
        f = torch.randn(batch, d_sae, generator=g)
        return impl(x, x_hat, f.relu() if relu else f, l1)
    return run


check_sae_loss = Exercise(
    "sae_loss", ref.sae_loss,
    cases=lambda: [Case("batch 8, d_in 5, d_sae 12, λ = 0.3", _loss_case(4, 8, 5, 12, 0.3)),
                   Case("λ = 0: reconstruction only (edge case)", _loss_case(5, 4, 3, 6, 0.0)),
                   Case("one sample, λ = 2 (edge case)", _loss_case(6, 1, 7, 3, 2.0))],
    mistakes=[
        Mistake("Sum the squared error over the d_in dimensions, then average over the batch "
                "(F.mse_loss averages over the dimensions too).",
                lambda x, x_hat, f, l1: torch.nn.functional.mse_loss(x_hat, x) + l1 * f.abs().sum(-1).mean()),
        Mistake("The sparsity term is the L1 norm of each sample's latents (sum over latents), averaged "
                "over the batch.", lambda x, x_hat, f, l1: (x - x_hat).pow(2).sum(-1).mean() + l1 * f.abs().mean()),
        Mistake("Use the L1 norm (sum of |f|), not the squared L2 norm, for sparsity.",
                lambda x, x_hat, f, l1: (x - x_hat).pow(2).sum(-1).mean() + l1 * f.pow(2).sum(-1).mean()),
        Mistake("Average over the batch: summing makes the loss (and the right λ) depend on the batch size.",
                lambda x, x_hat, f, l1: (x - x_hat).pow(2).sum() + l1 * f.abs().sum()),
    ],
    hint="loss = mean over the batch of ‖x − x̂‖² (summed over dimensions) + λ · mean over the batch of Σ|f|.")


# ----------------------------------------------------------------------------- decoder normalisation
check_normalize_decoder = Exercise(
    "normalize_decoder", ref.normalize_decoder,
    cases=lambda: [Case("W_dec [12, 5]", lambda impl: impl(_randn(7, 12, 5))),
                   Case("W_dec [3, 8] (fewer latents than dimensions)", lambda impl: impl(_randn(8, 3, 8) * 5)),
                   Case("one latent (edge case)", lambda impl: impl(_randn(9, 1, 4))),
                   Case("already unit rows (edge case)", lambda impl: impl(ref.normalize_decoder(_randn(10, 6, 6))))],
    mistakes=[
        Mistake("W_dec is [d_sae, d_in]: each *row* is a latent's direction; normalise along the last "
                "dimension (dim=-1), not the columns.", lambda W: W / W.norm(dim=0, keepdim=True)),
        Mistake("Normalise each row separately, not the whole matrix at once.", lambda W: W / W.norm()),
        Mistake("Divide by the norm (keepdim=True for broadcasting), do not subtract it.",
                lambda W: W - W.norm(dim=-1, keepdim=True)),
    ],
    hint="W_dec / W_dec.norm(dim=-1, keepdim=True)")


# ----------------------------------------------------------------------------- MMCS
def _mmcs_case(seed: int, n_true: int, d_sae: int, d: int, scale: float = 1.0):
    return lambda impl: impl(_randn(seed, n_true, d) * scale, _randn(seed + 1, d_sae, d))


def _mmcs_known(impl):
    true = ref.normalize_decoder(_randn(11, 4, 6))
    learned = torch.cat([true * 3.0, _randn(12, 5, 6)])  # contains every true direction (scaled)
    return impl(true, learned)


check_mmcs = Exercise(
    "mmcs", ref.mmcs,
    cases=lambda: [Case("6 true, 10 learned, d = 4", _mmcs_case(13, 6, 10, 4)),
                   Case("true directions not unit-norm, more true than learned", _mmcs_case(14, 9, 3, 5, 3.0)),
                   Case("learned dictionary contains every true direction (edge case: MMCS = 1)", _mmcs_known)],
    mistakes=[
        Mistake("For each *true* feature take the best learned column (max over learned), then average "
                "over true features — not the other way round.",
                lambda t, w: ref.mmcs(w, t)),
        Mistake("Use cosines: normalise both the true directions and the decoder rows before the dot product.",
                lambda t, w: (t @ w.T).max(dim=1).values.mean()),
        Mistake("Take the max cosine with any learned column, not the mean.",
                lambda t, w: (ref.normalize_decoder(t) @ ref.normalize_decoder(w).T).mean()),
        Mistake("A cosine of −1 is the opposite direction, not a match: do not take absolute values.",
                lambda t, w: (ref.normalize_decoder(t) @ ref.normalize_decoder(w).T).abs().max(dim=1).values.mean()),
    ],
    hint="cos = normalised true @ normalised W_dec.T, shape [n_true, d_sae]; max over dim 1; mean.")


# ----------------------------------------------------------------------------- resampling
def _resample_case(seed: int, d_in: int, d_sae: int, dead_idx: list[int]):
    def run(impl):
        g = seeded_generator(seed)
        W_enc, b_enc = torch.randn(d_in, d_sae, generator=g), torch.randn(d_sae, generator=g)
        W_dec = ref.normalize_decoder(torch.randn(d_sae, d_in, generator=g))
        dead = torch.zeros(d_sae, dtype=torch.bool)
        dead[dead_idx] = True
        inputs = torch.randn(len(dead_idx), d_in, generator=g) * 3
        return impl(W_enc, b_enc, W_dec, dead, inputs)
    return run


def _resample_all_norms(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    W_dec[dead], W_enc[:, dead], b_enc[dead] = d, (d * scale * W_enc.norm(dim=0).mean()).T, 0.0
    return W_enc, b_enc, W_dec


def _resample_keep_bias(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    new = ref.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale)
    return new[0], b_enc.clone(), new[2]


def _resample_raw_decoder(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    new = ref.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale)
    W_dec = new[2].clone()
    W_dec[dead] = inputs
    return new[0], new[1], W_dec


def _resample_no_scale(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    return ref.resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale=1.0)


check_resample_weights = Exercise(
    "resample_weights", ref.resample_weights,
    cases=lambda: [Case("3 of 10 latents dead", _resample_case(15, 6, 10, [1, 4, 9])),
                   Case("no latent dead (edge case: nothing changes)", _resample_case(16, 4, 5, [])),
                   Case("every latent dead (edge case: alive norm = 1)", _resample_case(17, 3, 4, [0, 1, 2, 3]))],
    mistakes=[
        Mistake("Scale by the mean encoder norm of the *alive* latents only (W_enc[:, ~dead]).", _resample_all_norms),
        Mistake("Reset the dead latents' encoder bias b_enc to 0.", _resample_keep_bias),
        Mistake("The new decoder row is the *normalised* input (unit norm).", _resample_raw_decoder),
        Mistake("The encoder column is the input direction × 0.2 × the mean alive encoder norm: keep it small "
                "so the new latent starts gently.", _resample_no_scale),
    ],
    hint="Work on clones. direction = inputs / ‖inputs‖; W_dec[dead] = direction; "
         "W_enc[:, dead] = (direction · scale · mean alive encoder-column norm).T; b_enc[dead] = 0.")


# ----------------------------------------------------------------------------- FVU and CE recovered
check_fvu = Exercise(
    "fvu", ref.fvu,
    cases=lambda: [Case("batch 20, d = 5", lambda impl: impl(_randn(18, 20, 5) + 3, _randn(19, 20, 5))),
                   Case("perfect reconstruction (edge case: 0)", lambda impl: impl(_randn(20, 6, 3), _randn(20, 6, 3))),
                   Case("predicting the mean (edge case: 1)",
                        lambda impl: impl(_randn(21, 8, 4), _randn(21, 8, 4).mean(0).expand(8, 4)))],
    mistakes=[
        Mistake("The variance is around the mean of x: divide by Σ‖x − mean(x)‖², not Σ‖x‖².",
                lambda x, x_hat: (x - x_hat).pow(2).sum() / x.pow(2).sum()),
        Mistake("FVU is unexplained variance: the error over the variance, not 1 minus it.",
                lambda x, x_hat: 1 - ref.fvu(x, x_hat)),
    ],
    hint="Σ (x − x̂)² / Σ (x − x.mean(0))²")

check_ce_loss_recovered = Exercise(
    "ce_loss_recovered", ce_loss_recovered,
    cases=lambda: [Case("numbers", lambda impl: impl(2.0, 2.5, 6.0)),
                   Case("a perfect SAE (edge case: 1)", lambda impl: impl(1.5, 1.5, 4.0)),
                   Case("an SAE as bad as zero-ablation (edge case: 0)", lambda impl: impl(1.5, 4.0, 4.0)),
                   Case("tensors", lambda impl: impl(_randn(22, 5).abs(), _randn(23, 5).abs() + 1, _randn(24, 5).abs() + 3))],
    mistakes=[
        Mistake("Measure what the SAE recovers relative to zero-ablation: (CE_zero − CE_sae) / (CE_zero − CE_clean).",
                lambda c, s, z: (s - c) / (z - c)),
        Mistake("Divide by the whole gap CE_zero − CE_clean so that 1 means 'as good as the clean model'.",
                lambda c, s, z: z - s),
        Mistake("The denominator is CE_zero − CE_clean (the damage zero-ablation does).",
                lambda c, s, z: (z - s) / z),
    ],
    hint="(ce_zero − ce_sae) / (ce_zero − ce_clean)")
