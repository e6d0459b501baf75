"""The parts of a latent's dashboard (Bricken et al. 2023; sae-dashboard / sae-vis): its top
activating tokens, tokens sampled across its activation quantiles, its direct effect on the
logits, and the ground-truth panel — P(label value | the latent fires) against the base rate."""
from __future__ import annotations

import numpy as np
import torch


def top_activations(acts, n):
    """The ``n`` largest activations of one latent over tokens (``acts`` [N]), strongest first,
    among the tokens where it fires (> 0): ``(values, indices)``, fewer than ``n`` if it fires less."""
    n_fire = int((acts > 0).sum())
    top = acts.topk(min(n, n_fire))
    return top.values, top.indices


def quantile_samples(acts, n_bins, per_bin, generator):
    """Tokens sampled across a latent's activation range: sort the tokens where it fires by
    activation, cut them into ``n_bins`` bins of (nearly) equal count, weakest first, and draw
    ``per_bin`` distinct tokens at random from each bin (all of a bin when it has fewer), using
    ``generator``. Returns a list of ``n_bins`` index tensors."""
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[acts[firing].argsort()]
    samples = []
    for chunk in torch.tensor_split(ordered, n_bins):
        pick = torch.randperm(len(chunk), generator=generator)[:per_bin]
        samples.append(chunk[pick])
    return samples


def logit_effects(model, direction):
    """The direct effect on the next-token logits of adding ``direction`` [d_model] to the final
    residual stream, to first order through the final LayerNorm: centre it (LayerNorm subtracts
    the mean), scale by the LayerNorm's weight, unembed. Biases are left out (they do not depend on
    the direction), and so is the division by the residual's norm (positive: it changes no
    ranking). Returns [d_vocab]."""
    centred = direction - direction.mean()
    return (centred * model.ln_final.w) @ model.W_U


def label_panel(labels: dict, fires: np.ndarray, fields, top: int = 3) -> list:
    """Ground-truth panel: for each field, the values most over-represented where the latent fires,
    as (field, value, P(value | fires), P(value)) rows."""
    out = []
    if not fires.any():
        return out
    for field in fields:
        as_str = np.asarray([str(v) for v in labels[field]])
        values, counts = np.unique(as_str[fires], return_counts=True)
        stats = [(counts[i] / fires.sum(), (as_str == v).mean(), v) for i, v in enumerate(values)
                 if v not in ("None", "False")]
        stats.sort(key=lambda s: -(s[0] - s[1]))
        out += [(field, v, p, base) for p, base, v in stats[:top]]
    return out
