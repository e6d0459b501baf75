"""Dead latents and resampling (Anthropic, *Towards Monosemanticity*, 2023): a latent that has not
fired for a while is pointed at an input the SAE reconstructs badly, and its optimizer state is reset."""
from __future__ import annotations

import torch


def resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    """New (W_enc, b_enc, W_dec) with every dead latent re-initialised from an input.

    ``dead``: bool [d_sae]; ``inputs``: [n_dead, d_in], one (already sampled) input per dead latent,
    in order. Dead latent j gets decoder row = input / ‖input‖, encoder column = that direction ×
    ``scale`` × the mean norm of the *alive* latents' encoder columns (1.0 if none is alive), b_enc = 0.
    """
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    if not dead.any():
        return W_enc, b_enc, W_dec
    direction = inputs / inputs.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    alive_norm = W_enc[:, ~dead].norm(dim=0).mean() if (~dead).any() else torch.tensor(1.0)
    W_dec[dead] = direction
    W_enc[:, dead] = (direction * scale * alive_norm).T
    b_enc[dead] = 0.0
    return W_enc, b_enc, W_dec


def dead_latents(steps_since_fired, window: int):
    """The latents that have not fired during the last ``window`` steps: bool [d_sae]."""
    return steps_since_fired >= window


def pick_resample_inputs(sae, x, n: int, generator):
    """``n`` inputs drawn with probability ∝ their squared reconstruction error (with replacement),
    centred on b_dec (the SAE sees x − b_dec)."""
    with torch.no_grad():
        err = (sae(x)[0] - x).pow(2).sum(-1)
        idx = torch.multinomial(err.cpu() + 1e-12, n, replacement=True, generator=generator).to(x.device)
        return x[idx] - sae.b_dec


def _reset_adam_rows(optimizer, sae, dead) -> None:
    """Zero Adam's moments for the resampled latents' parameters."""
    for p, index in ((sae.W_enc, (slice(None), dead)), (sae.b_enc, dead), (sae.W_dec, dead)):
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][index] = 0.0


def resample_dead_latents(sae, optimizer, dead, x, generator, resample=resample_weights) -> int:
    """Re-initialise the dead latents of ``sae`` in place from inputs ``x`` it reconstructs badly,
    and reset their optimizer state. Returns how many were resampled."""
    n = int(dead.sum())
    if n == 0:
        return 0
    inputs = pick_resample_inputs(sae, x, n, generator)
    with torch.no_grad():
        W_enc, b_enc, W_dec = resample(sae.W_enc, sae.b_enc, sae.W_dec, dead, inputs)
        sae.W_enc.copy_(W_enc), sae.b_enc.copy_(b_enc), sae.W_dec.copy_(W_dec)
    _reset_adam_rows(optimizer, sae, dead)
    return n
