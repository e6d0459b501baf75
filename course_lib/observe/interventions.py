"""Manipulating a transformer with hooks: zero-ablating an attention head, and activation patching
(copying one position's activation from a clean run into a corrupted one).

A hook ``hook_fn(activation, hook)`` returns the activation that replaces the original; both hooks
work on a copy, so the activation (which may also sit in a cache) is never changed in place.
These are the reference solutions of the notebook's exercises 3 and 5.
"""


def head_ablation_hook(z, hook, head):
    """Zero-ablate one attention head: ``z`` is ``hook_z`` of shape [batch, pos, head, d_head]."""
    z = z.clone()
    z[:, :, head] = 0.0
    return z


def patch_position_hook(activation, hook, pos, clean_cache):
    """Replace the activation at position ``pos`` by the clean run's activation at that hook."""
    activation = activation.clone()
    activation[:, pos] = clean_cache[hook.name][:, pos]
    return activation
