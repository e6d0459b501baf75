"""Notebook 04 — steering: from correlation to cause, and choosing the features that steer.

Modules: ``intervene`` (the steering hook, the difference-of-means direction), ``scores`` (Arad et
al.'s input and output scores of SAE latents), ``measures`` (exact concept success, fluency under
the world grammar, the harmonic aggregate, side effects), ``checks`` (the exercises);
``concepts`` (concepts and their words from the world's labels, AUROC), ``generate`` (batched
seeded sampling with per-row steering, neutral prompts), ``methods`` (methods side by side),
``arad`` (Arad et al.'s sweep), ``alignsae`` (post-training an SAE for steering), ``build``
(``python -m course_lib.steering build``: data/steering), ``results`` (the asserted figures),
``plots``, ``widget`` (the steering panel).

Importing the package is cheap: each name is imported from its module on first use.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "steering_hook": "intervene", "diff_in_means": "intervene",
    "logit_lens_tokens": "scores", "decoder_directions": "scores", "amplified_logits": "scores",
    "output_score": "scores", "input_score": "scores",
    "concept_success": "measures", "documents": "measures", "fluency": "measures", "fluency_score": "measures",
    "harmonic_aggregate": "measures", "lm_logprob": "measures", "kl_side_effect": "measures",
    "PrefixScorer": "measures", "prefix_scorer": "measures",
    "check_steering_hook": "checks", "check_diff_in_means": "checks", "check_output_score": "checks",
    "check_input_score": "checks", "check_concept_success": "checks", "check_harmonic_aggregate": "checks",
    "Concept": "concepts", "world_concepts": "concepts", "concept_aurocs": "concepts", "auroc": "concepts",
    "GenerateConfig": "generate", "Steering": "generate", "sample": "generate", "generated_mask": "generate",
    "neutral_prompts": "generate",
    "VECTOR_METHODS": "methods", "CompareConfig": "methods", "Clamp": "methods",
    "method_directions": "methods", "context_sentences": "methods", "compare_methods": "methods",
    "SweepConfig": "arad", "predicate_words": "arad", "latent_scores": "arad", "steering_sweep": "arad",
    "AlignConfig": "alignsae", "post_train": "alignsae", "swap_success": "alignsae", "bound_latents": "alignsae",
    "state_labels": "alignsae", "fvu": "alignsae",
    "STEERING_DIR": "build", "load": "build", "load_aligned_sae": "build", "setup": "build", "prompts_for": "build",
    "lens_targets": "build", "description_targets": "build",
    "asserted": "results", "sweep_figures": "results", "method_table": "results", "chosen_strength": "results",
    "by_strength": "results", "align_experiment": "alignsae", "state_f1": "alignsae",
    "plot_scores": "plots", "plot_methods": "plots",
    "SteeringLab": "widget", "steering_panel": "widget", "continuations_html": "widget",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
