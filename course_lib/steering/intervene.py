"""Interventions on the residual stream: a steering hook that adds a scaled direction, and the
difference-of-means (CAA-style) direction of a concept.

Both are exercises of notebook 04 (checked by :mod:`.checks`, copied verbatim into the notebook):
short on purpose. The science of the notebook uses these very functions.
"""
from __future__ import annotations


def steering_hook(direction, scale, positions=None):
    """A TransformerLens hook function ``hook(resid, hook)`` that adds ``scale * direction`` to the
    residual stream ``resid`` [batch, pos, d_model] at the positions ``positions`` of every row of
    the batch: an int, a list of ints, a slice or an index tensor along the position axis (negative
    indices count from the end); ``None``: every position. ``direction``: [d_model], or
    [batch, 1, d_model] for one direction per row — then give ``positions`` as a list, slice or
    index tensor, not an int (an int drops the position axis, which the row's direction keeps);
    used as given, not normalised.

    The hook returns a new tensor and leaves its input unchanged (TransformerLens passes on what a
    hook returns). Use: ``model.run_with_hooks(tokens, fwd_hooks=[(name, steering_hook(v, 4.0, [-1]))])``.
    """
    def hook(resid, hook):
        if positions is None:
            return resid + scale * direction
        steered = resid.clone()
        steered[:, positions, :] += scale * direction
        return steered

    return hook


def diff_in_means(acts, is_concept):
    """The difference-of-means direction of a concept (CAA, Rimsky et al. 2024; AxBench's "mean
    difference"): the mean activation over the rows where the concept holds minus the mean over the
    *other* rows. ``acts`` [n, d_model], ``is_concept`` [n] bool (at least one row of each kind).
    Returns [d_model], not normalised."""
    return acts[is_concept].mean(0) - acts[~is_concept].mean(0)
