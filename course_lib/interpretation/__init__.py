"""Notebook 03 — feature interpretation, scored against the world's ground truth.

Labelled activations and label predicates (:mod:`.labels`); the units to interpret — SAE latents
and their baselines at matched density (:mod:`.units`); dashboard parts (:mod:`.contexts`) and
the offline dashboard / feature browser (:mod:`.dashboard`); the explainer and scorers,
vectorised (:mod:`.scoring`); coverage, sparse probing, output features (:mod:`.measures`);
feature absorption (:mod:`.absorption`); the extra SAEs of data/interpretation (:mod:`.saes`,
``python -m course_lib.interpretation build``); figures (:mod:`.plots`); checks (:mod:`.checks`).
"""
from .absorption import ToyAbsorptionConfig, toy_absorption, world_absorption
from .checks import (
                     check_balanced_accuracy,
                     check_explain,
                     check_logit_effects,
                     check_precision_recall_f1,
                     check_quantile_samples,
                     check_top_activations,
)
from .contexts import label_panel, logit_effects, quantile_samples, top_activations
from .dashboard import dashboard_html, feature_browser, latents_for
from .labels import CollectConfig, LabelledTokens, Predicates, build_predicates, collect
from .measures import ProbeConfig, best_latent_f1, concept_family, coverage, decodable_tasks, output_share, sparse_probing
from .saes import EXTRA_SAES, WIDTHS, extra_metrics, load_extra_sae
from .scoring import ScoreConfig, UnitScores, balanced_accuracy, decile_weights, explain, precision_recall_f1, score_units
from .units import BaselineConfig, Units, baselines, sae_units

__all__ = ["BaselineConfig", "CollectConfig", "EXTRA_SAES", "LabelledTokens", "Predicates", "ProbeConfig", "ScoreConfig",
           "ToyAbsorptionConfig", "UnitScores", "Units", "WIDTHS", "balanced_accuracy", "baselines", "best_latent_f1",
           "build_predicates", "check_balanced_accuracy", "check_explain", "check_logit_effects",
           "check_precision_recall_f1", "check_quantile_samples", "check_top_activations", "collect", "concept_family",
           "coverage", "dashboard_html", "decodable_tasks", "decile_weights", "explain", "extra_metrics", "feature_browser",
           "label_panel",
           "latents_for", "load_extra_sae", "logit_effects", "output_share", "precision_recall_f1", "quantile_samples",
           "sae_units", "score_units", "sparse_probing", "top_activations", "toy_absorption", "world_absorption"]
