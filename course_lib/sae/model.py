"""A ReLU + L1 sparse autoencoder from scratch (Anthropic, *Towards Monosemanticity*, 2023):
f = ReLU((x − b_dec) W_enc + b_enc), x̂ = f W_dec + b_dec, loss ‖x − x̂‖² + λ ‖f‖₁, decoder rows of
unit norm. The reference implementations of notebook 02's exercises 1–3 (the notebook's solution
code is the same code, see tests/test_one_source.py)."""
from __future__ import annotations

import torch


class SAE(torch.nn.Module):
    """Weights in sae-lens's layout: ``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in] (one row per
    latent = its dictionary direction), ``b_enc`` [d_sae], ``b_dec`` [d_in]."""

    def __init__(self, d_in, d_sae):
        super().__init__()
        if min(d_in, d_sae) < 1:
            raise ValueError(f"d_in and d_sae must be positive ints, got {d_in!r}, {d_sae!r}")
        self.d_in, self.d_sae = int(d_in), int(d_sae)
        self.W_enc = torch.nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae))
        self.W_dec = torch.nn.Parameter(torch.zeros(d_sae, d_in))
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))

    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f):
        return f @ self.W_dec + self.b_dec

    def forward(self, x):
        f = self.encode(x)
        return self.decode(f), f


def sae_loss(x, x_hat, f, l1_coeff):
    """Mean over the batch of the squared reconstruction error (summed over dimensions) plus
    λ times the mean L1 norm of the latents."""
    return (x - x_hat).pow(2).sum(-1).mean() + l1_coeff * f.abs().sum(-1).mean()


def normalize_decoder(W_dec):
    """Each latent's decoder row scaled to unit norm (rows of [d_sae, d_in]); an all-zero row stays zero."""
    return W_dec / W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def init_sae(sae: SAE, generator, data_mean=None) -> SAE:
    """Random unit decoder rows, encoder = decoder transposed, b_dec = data mean (or 0)."""
    with torch.no_grad():
        w = torch.randn(sae.d_sae, sae.d_in, generator=generator)
        sae.W_dec.copy_(normalize_decoder(w))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_enc.zero_()
        sae.b_dec.copy_(data_mean if data_mean is not None else torch.zeros(sae.d_in))
    return sae
