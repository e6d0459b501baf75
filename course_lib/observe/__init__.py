"""Notebook 00 — observing and manipulating a transformer (the world LM): reading the residual
stream and the logit lens (:mod:`.lens`), ablation and patching hooks (:mod:`.interventions`),
metrics (:mod:`.measures`), figures (:mod:`.plots`) and the exercise checks (:mod:`.checks`).

Importing the package is cheap: torch is imported only when a function runs.
"""
from .checks import (
    check_final_token_residuals,
    check_head_ablation_hook,
    check_logit_difference,
    check_logit_lens,
    check_patch_position_hook,
    check_patching_score,
)
from .interventions import head_ablation_hook, patch_position_hook
from .lens import final_token_residuals, logit_lens
from .measures import logit_difference, patching_score
from .plots import plot_ablation, plot_attention_from_last, plot_logit_lens, plot_patching

__all__ = ["check_final_token_residuals", "check_head_ablation_hook", "check_logit_difference", "check_logit_lens",
           "check_patch_position_hook", "check_patching_score", "final_token_residuals", "head_ablation_hook",
           "logit_difference", "logit_lens", "patch_position_hook", "patching_score", "plot_ablation",
           "plot_attention_from_last", "plot_logit_lens", "plot_patching"]
