"""Observing the residual stream: its state at the last position after every block, and the logit
lens (nostalgebraist, 2020), which decodes any of these states as if it were the last one.

These are the reference solutions of the notebook's exercises 1 and 2 (the notebook's solution
code is the same code, see tests/test_one_source.py). ``cache.accumulated_resid(pos_slice=-1)``
is TransformerLens's own version of :func:`final_token_residuals`.
"""


def final_token_residuals(cache, n_layers):
    """Residual stream at the last position before block 0 and after every block:
    shape [n_layers + 1, batch, d_model]."""
    import torch

    return torch.stack([cache["resid_pre", 0][:, -1]] + [cache["resid_post", l][:, -1] for l in range(n_layers)])


def logit_lens(model, resid):
    """Read a residual-stream state as if it were the last layer's: final LayerNorm, then unembed."""
    return model.unembed(model.ln_final(resid))
