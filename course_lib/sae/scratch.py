"""A ReLU + L1 sparse autoencoder from scratch: f = ReLU(W_enc (x − b_dec) + b_enc),
x̂ = W_dec f + b_dec, loss ||x − x̂||² + λ ||f||₁, decoder rows of unit norm, dead-latent
resampling (Anthropic, *Towards Monosemanticity*, 2023)."""
from __future__ import annotations

import torch
from torch import nn


# The known-dictionary data and the chosen from-scratch run (shared by the notebook and the tests).
TOY_DATA = dict(d=32, n_features=64, mean_active=3.0, seed=0)
SCRATCH = dict(d_sae=128, steps=2000, l1_coeff=0.3, lr=1e-3, batch_size=256, seed=0)
# Dead latents on purpose: a too-high (decaying) learning rate; resampling at three steps.
DEAD_DEMO = dict(d_sae=64, steps=2000, l1_coeff=0.3, lr=0.1, lr_decay=True, window=100, seed=0)
RESAMPLE_AT = (1000, 1300, 1600)
EVAL_SEED = 1000


class SAE(nn.Module):
    """Weights in sae-lens's layout: ``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in] (one row per
    latent = its dictionary direction), ``b_enc`` [d_sae], ``b_dec`` [d_in]."""

    def __init__(self, d_in: int, d_sae: int):
        super().__init__()
        if not (isinstance(d_in, int) and isinstance(d_sae, int) and d_in > 0 and d_sae > 0):
            raise ValueError(f"d_in and d_sae must be positive ints, got {d_in!r}, {d_sae!r}")
        self.d_in, self.d_sae = d_in, d_sae
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f):
        return f @ self.W_dec + self.b_dec

    def forward(self, x):
        """Returns (x_hat, f)."""
        f = self.encode(x)
        return self.decode(f), f


def init_sae(sae: SAE, generator, data_mean=None) -> SAE:
    """Random unit decoder rows, encoder = decoder transposed, b_dec = data mean (or 0)."""
    with torch.no_grad():
        w = torch.randn(sae.d_sae, sae.d_in, generator=generator)
        sae.W_dec.copy_(normalize_decoder(w))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_enc.zero_()
        sae.b_dec.copy_(data_mean if data_mean is not None else torch.zeros(sae.d_in))
    return sae


def sae_loss(x, x_hat, f, l1_coeff: float):
    """Mean over the batch of the squared reconstruction error (summed over dimensions) plus
    λ times the mean L1 norm of the latents."""
    return (x - x_hat).pow(2).sum(-1).mean() + l1_coeff * f.abs().sum(-1).mean()


def normalize_decoder(W_dec):
    """Each latent's decoder row scaled to unit norm (rows of [d_sae, d_in])."""
    return W_dec / W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def mmcs(true_dictionary, W_dec):
    """Mean max cosine similarity: for every true direction (rows of ``true_dictionary``
    [n_true, d]), the best cosine with any learned decoder row (``W_dec`` [d_sae, d]); averaged."""
    t = true_dictionary / true_dictionary.norm(dim=-1, keepdim=True)
    w = W_dec / W_dec.norm(dim=-1, keepdim=True)
    return (t @ w.T).max(dim=1).values.mean()


def resample_weights(W_enc, b_enc, W_dec, dead, inputs, scale: float = 0.2):
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


def pick_resample_inputs(sae: SAE, x, n: int, generator):
    """``n`` inputs drawn with probability ∝ their squared reconstruction error (with replacement),
    centred on b_dec (the SAE sees x − b_dec)."""
    with torch.no_grad():
        err = (sae(x)[0] - x).pow(2).sum(-1)
        idx = torch.multinomial(err.cpu() + 1e-12, n, replacement=True, generator=generator).to(x.device)
        return x[idx] - sae.b_dec


def _reset_adam_rows(optimizer, sae: SAE, dead) -> None:
    """Zero Adam's moments for the resampled latents' parameters."""
    for p, index in ((sae.W_enc, (slice(None), dead)), (sae.b_enc, dead), (sae.W_dec, dead)):
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][index] = 0.0


def resample_dead_latents(sae: SAE, optimizer, dead, x, generator, resample=resample_weights) -> int:
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


def train_scratch_sae(data, d_sae: int, steps: int, l1_coeff: float = 0.1, lr: float = 1e-3,
                      batch_size: int = 256, seed: int = 0, resample_at=(), window: int = 200,
                      progress: bool = True, sae_cls=SAE, loss_fn=sae_loss, normalize=normalize_decoder,
                      resample=resample_weights, log_every: int = 0, init_b_dec: str = "mean",
                      lr_decay: bool = False, on_step=None, device="cpu"):
    """Train a ReLU + L1 SAE on batches from ``data`` (anything with ``.sample(n, generator)``).

    ``resample_at``: steps at which latents that did not fire during the last ``window`` steps are
    resampled. ``on_step(step, sae)`` is called after every step. ``lr_decay``: decay the learning rate linearly to 0. ``init_b_dec``: 'mean' (of the data) or 'zero'. Returns (sae, history) where history lists dicts of step, loss and dead fraction."""
    from tqdm.auto import tqdm

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    g = torch.Generator().manual_seed(seed)
    if init_b_dec not in ("mean", "zero"):
        raise ValueError(f"init_b_dec must be 'mean' or 'zero', got {init_b_dec!r}")
    x0 = data.sample(4096, g)
    sae = init_sae(sae_cls(x0.shape[1], d_sae), g, x0.mean(0).cpu() if init_b_dec == "mean" else None).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps if lr_decay else 1.0)
    since_fired = torch.zeros(d_sae, dtype=torch.long, device=device)
    history = []
    for step in tqdm(range(1, steps + 1), desc=f"SAE d_sae={d_sae}", disable=not progress):
        x = data.sample(batch_size, g).to(device)
        x_hat, f = sae(x)
        loss = loss_fn(x, x_hat, f, l1_coeff)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            sae.W_dec.copy_(normalize(sae.W_dec))
        since_fired = torch.where((f > 0).any(0), 0, since_fired + 1)
        if step in resample_at:
            resample_dead_latents(sae, opt, since_fired >= window, data.sample(4096, g).to(device), g, resample)
            since_fired.zero_()
        if on_step is not None:
            on_step(step, sae)
        if log_every and (step % log_every == 0 or step == steps):
            history.append(dict(step=step, loss=loss.item(), dead=(since_fired >= window).float().mean().item()))
    return sae, history


@torch.no_grad()
def sae_stats(encode, decode, x, true_dictionary=None, W_dec=None) -> dict:
    """L0 (mean active latents per input), FVU (fraction of variance unexplained), dead fraction
    (latents that never fire on ``x``) and, given the true dictionary and W_dec, MMCS."""
    f = encode(x)
    x_hat = decode(f)
    out = dict(L0=(f > 0).float().sum(-1).mean().item(),
               FVU=fvu(x, x_hat).item(),
               dead=((f > 0).sum(0) == 0).float().mean().item())
    if true_dictionary is not None:
        out["MMCS"] = mmcs(true_dictionary, W_dec).item()
    return out


def fvu(x, x_hat):
    """Fraction of variance unexplained: Σ‖x − x̂‖² / Σ‖x − mean(x)‖²."""
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
