"""Interventions on transcoder features in the real model: suppress or swap a state's features.

The feature-swap (notebook 05, section 4): at chosen positions, zero the features of the source
state ("Texas") and set the target state's features ("California") to their typical values; the
change of the features' decoded output is added to the MLP output of the real model, which then
runs on (every later layer responds), and we read its next-token prediction.
"""
from __future__ import annotations


def swap_features(acts, remove, add, values, positions):
    """A copy of ``acts`` [..., pos, d_sae] in which, at every position in ``positions`` (indices
    along the ``pos`` axis, the second to last), the features ``remove`` are set to 0 and then the
    features ``add`` to ``values`` (one value per feature of ``add``, their typical activations).
    Every other entry, and ``acts`` itself, is unchanged."""
    out = acts.clone()
    for p in positions:
        out[..., p, remove] = 0
        out[..., p, add] = values
    return out


def swap_success_rate(logits, target_tokens):
    """The fraction of prompts whose top-1 next token is the target: ``logits`` [n_prompts, d_vocab]
    (the prediction at each prompt's last position), ``target_tokens`` [n_prompts] (token ids, e.g.
    the first token of the target state's capital). Returns a float in [0, 1]."""
    return (logits.argmax(-1) == target_tokens).float().mean().item()
