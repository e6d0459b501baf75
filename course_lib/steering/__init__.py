"""Notebook 04 — steering: from correlation to cause, and choosing the features that steer.

Modules: ``intervene`` (the steering hook, the difference-of-means direction), ``scores`` (Arad et
al.'s input and output scores of SAE latents), ``measures`` (exact concept success, fluency under
the world grammar, the harmonic aggregate, side effects), ``checks`` (the exercises).

Importing the package is cheap: each name is imported from its module on first use.
"""
import importlib

_EXPORTS = {
    "steering_hook": "intervene", "diff_in_means": "intervene",
    "logit_lens_tokens": "scores", "decoder_directions": "scores", "amplified_logits": "scores",
    "output_score": "scores", "input_score": "scores",
    "concept_success": "measures", "documents": "measures", "fluency": "measures", "fluency_score": "measures",
    "harmonic_aggregate": "measures", "lm_logprob": "measures", "kl_side_effect": "measures",
    "PrefixScorer": "measures", "prefix_scorer": "measures",
    "check_steering_hook": "checks", "check_diff_in_means": "checks", "check_output_score": "checks",
    "check_input_score": "checks", "check_concept_success": "checks", "check_harmonic_aggregate": "checks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
