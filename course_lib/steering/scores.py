"""Input and output scores of SAE latents, after Arad, Mueller & Belinkov (2025), "SAEs Are Good
for Steering – If You Select the Right Features" (EMNLP 2025, arXiv:2505.20063; code:
github.com/technion-cs-nlp/saes-are-good-for-steering, ``src/utils.py``, ``src/output_score.py``,
``src/input_score.py``, ``src/sae_utils.py``).

* **Logit-lens tokens** of latent f: the top-k tokens of ``softmax(unembed(ln_final(W_dec[f])))``
  (their ``cache_logit_lens``; k = 20 in their runs). :func:`logit_lens_tokens`.
* **Output score**: add ``factor × (largest latent activation at the last position)`` to latent f at
  the *last* position of a neutral prefix ("From my experience,"; factor 10), through the SAE with
  its error term kept, and read the next-token distribution there:
  ``(1 − min rank of a lens token / |V|) × (largest probability of a lens token)``, ranks counted
  from 0 in descending probability (their ``get_output_score``). :func:`amplified_logits` runs the
  intervention; :func:`output_score` (an exercise) scores the distribution.
* **Input score**: over the latent's top activating examples (their first 100; latents with fewer
  than 10 are skipped), the fraction whose activating token (the argmax token of the example) is
  one of the lens tokens (their ``input_score.py``). :func:`input_score` (an exercise).
"""
from __future__ import annotations

import numbers

import torch


def logit_lens_tokens(model, direction, k: int = 20):
    """The logit-lens tokens of one direction [d_model] or of each row of [n, d_model] (e.g. an SAE's
    ``W_dec``): the indices of the ``k`` largest entries of
    ``softmax(model.unembed(model.ln_final(direction)))``, most probable first: [k] or [n, k].

    As in Arad et al.'s code, the final LayerNorm is applied to the direction itself (its own
    centring, norm, scale and bias) and the unembedding includes its bias ``b_U``."""
    if not torch.is_tensor(direction) or direction.ndim not in (1, 2) or direction.shape[-1] != model.cfg.d_model:
        raise ValueError(f"direction must be a tensor [d_model] or [n, d_model] with d_model = {model.cfg.d_model}, "
                         f"got {_describe(direction)}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= int(k) <= model.cfg.d_vocab:
        raise ValueError(f"k must be an int between 1 and d_vocab = {model.cfg.d_vocab}, got {k!r}")
    k = int(k)
    d = direction.to(model.W_U.device, model.W_U.dtype)
    with torch.no_grad():
        logits = model.unembed(model.ln_final(d[None, :, :] if d.ndim == 2 else d[None, None]))[0]
    indices = logits.softmax(-1).topk(k, dim=-1).indices
    return indices if direction.ndim == 2 else indices[0]


def _describe(x) -> str:
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {list(x.shape)}"
    return f"a {type(x).__name__}"


def decoder_directions(sae) -> torch.Tensor:
    """[d_sae, d_model]: the change of the SAE's output per unit of each latent's activation, i.e.
    ``W_dec`` (divided by its row norms for an sae-lens SAE with ``rescale_acts_by_decoder_norm``,
    whose decoder does the same)."""
    W = sae.W_dec.detach()
    if getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        W = W / W.norm(dim=-1, keepdim=True)
    return W


def amplified_logits(model, sae, latents, prefix, factor: float = 10.0, batch_size: int = 256):
    """Next-token logits [len(latents), d_vocab] at the last position of ``prefix`` (a string or a
    [1, pos] token tensor), each row with one latent raised, Arad et al.'s output-score
    intervention: the latent's activation at the last position gets ``factor`` times the largest
    latent activation there added, inside sae-lens's ``model.saes(..., use_error_term=True)`` (the
    SAE's reconstruction error is added back, so only the raised latent changes the stream).

    ``model`` must be a ``sae_lens.HookedSAETransformer`` (``course_lib.sae.sae_transformer(model)``)."""
    from sae_lens import HookedSAETransformer

    if not isinstance(model, HookedSAETransformer):
        raise TypeError("model must be a sae_lens.HookedSAETransformer: wrap the world LM with "
                        "course_lib.sae.sae_transformer(model)")
    latents = torch.as_tensor(latents, dtype=torch.long).flatten()
    if len(latents) and not (0 <= int(latents.min()) and int(latents.max()) < sae.cfg.d_sae):
        raise ValueError(f"latents must be indices in [0, {sae.cfg.d_sae}), got min {int(latents.min())}, "
                         f"max {int(latents.max())}")
    tokens = model.to_tokens(prefix) if isinstance(prefix, str) else torch.as_tensor(prefix)
    if tokens.ndim != 2 or tokens.shape[0] != 1:
        raise ValueError(f"prefix must be a string or a [1, pos] token tensor, got {_describe(tokens)}")
    hook_name = f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post"
    out = []
    with torch.no_grad(), model.saes(saes=[sae], use_error_term=True):
        for chunk in latents.split(batch_size):
            def raise_latent(acts, hook, chunk=chunk):
                acts = acts.clone()
                acts[torch.arange(len(chunk)), -1, chunk] += factor * acts[:, -1, :].max(-1).values
                return acts

            batch = tokens.expand(len(chunk), -1).to(model.cfg.device)
            out.append(model.run_with_hooks(batch, fwd_hooks=[(hook_name, raise_latent)])[:, -1, :])
    return torch.cat(out) if out else torch.zeros(0, model.cfg.d_vocab)


def output_score(logits, lens_tokens):
    """Arad et al.'s output score of a latent from the next-token ``logits`` [..., d_vocab] after
    raising it (:func:`amplified_logits`) and its logit-lens tokens ``lens_tokens`` [..., k] (long):
    ``(1 − r / d_vocab) × p``, where p is the largest probability of a lens token and r the smallest
    rank of a lens token (0 for the most probable token of the vocabulary: the number of tokens
    more probable than it). Returns [...] (one score per row)."""
    probs = logits.softmax(-1)
    lens_probs = probs.gather(-1, lens_tokens)
    ranks = (probs[..., None, :] > lens_probs[..., :, None]).sum(-1)
    rank_score = 1 - ranks.min(-1).values / probs.shape[-1]
    return rank_score * lens_probs.max(-1).values


def input_score(top_tokens, lens_tokens):
    """Arad et al.'s input score of a latent: the fraction of its top activating examples whose
    activating token is one of its logit-lens tokens. ``top_tokens`` [..., n] (long): the token id
    of each top example, repeats counted; ``lens_tokens`` [..., k] (long). Returns [...] floats."""
    hits = (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1)
    return hits.float().mean(-1)
