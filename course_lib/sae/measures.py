"""Measurements of an SAE: dictionary recovery (MMCS), reconstruction (FVU), sparsity (L0), dead
latents, and the behavioural ones on a language model (CE-loss recovered, CE increase, KL)."""
from __future__ import annotations

import torch


def mmcs(true_dictionary, W_dec):
    """Mean max cosine similarity: for every true direction (rows of ``true_dictionary``
    [n_true, d]), the best cosine with any learned decoder row (``W_dec`` [d_sae, d]); averaged."""
    t = true_dictionary / true_dictionary.norm(dim=-1, keepdim=True)
    w = W_dec / W_dec.norm(dim=-1, keepdim=True)
    return (t @ w.T).max(dim=1).values.mean()


def fvu(x, x_hat):
    """Fraction of variance unexplained: Σ‖x − x̂‖² / Σ‖x − mean(x)‖²."""
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()


def ce_loss_recovered(ce_clean, ce_sae, ce_zero):
    """(CE_zero_abl − CE_sae) / (CE_zero_abl − CE_clean): 1 = the SAE loses nothing, 0 = as bad as
    zeroing the activation."""
    return (ce_zero - ce_sae) / (ce_zero - ce_clean)


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
        if W_dec is None:
            raise ValueError("sae_stats: pass W_dec (the learned decoder) together with true_dictionary")
        out["MMCS"] = mmcs(true_dictionary, W_dec).item()
    return out


def next_token_ce(logits, tokens, keep):
    """Next-token cross-entropy (TransformerLens's ``lm_cross_entropy_loss``) summed over the
    predictions selected by ``keep`` [batch, pos - 1] (the prediction made at position p of token
    p + 1): returns (sum, count)."""
    from transformer_lens.utilities import lm_cross_entropy_loss

    ce = lm_cross_entropy_loss(logits, tokens, per_token=True)  # [batch, pos - 1]
    return ce[keep].sum().item(), int(keep.sum())


def kl_divergence(clean_logits, other_logits, keep):
    """KL(clean ‖ other) of the next-token distributions, summed over the predictions selected by
    ``keep`` [batch, pos - 1]."""
    logp, logq = clean_logits[:, :-1].log_softmax(-1), other_logits[:, :-1].log_softmax(-1)
    kl = torch.nn.functional.kl_div(logq, logp, log_target=True, reduction="none").sum(-1)
    return kl[keep].sum().item()
