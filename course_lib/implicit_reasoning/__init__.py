"""Notebook 06 — how transformers learn implicit (2-hop) reasoning, in the controlled world of
Wang et al. (2024) and Ye et al. (2025).

Modules: ``world`` (knowledge graph, splits), ``training`` (model, answer-only loss, training
loop), ``measures`` (accuracy, first step at a threshold, edit rates), ``lens`` (logit lens,
cosine lens, probe), ``patching`` (cross-query patching, causal tracing), ``editing``
(knowledge editing), ``runs`` (the shipped runs), ``plots``, ``checks`` (the exercises).
Importing the package does not import torch."""
from . import runs
from .checks import (
                     check_answer_accuracy,
                     check_answer_only_loss,
                     check_build_splits,
                     check_edit_metrics,
                     check_grokfast_ema,
                     check_logit_lens_at,
                     check_patched_logits,
)
from .editing import edit_first_hop, run_edits
from .grokfast import grokfast_ema
from .lens import cosine_lens, lens_bridge_accuracy, logit_lens_at, probe_bridge, resid_hook_name, residual_states
from .measures import accuracy, answer_accuracy, answered_correctly, edit_metrics, evaluate, first_step_at, predict
from .patching import causal_tracing, cross_query_pairs, cross_query_patching, patched_logits
from .plots import LivePlot, live_widget, mark_thresholds, plot_log
from .training import TrainConfig, answer_only_loss, make_model, train
from .world import E1, R1, R2, SPLITS, World, WorldConfig, build_splits

__all__ = [
    "runs", "check_answer_accuracy", "check_answer_only_loss", "check_build_splits", "check_edit_metrics",
    "check_grokfast_ema", "grokfast_ema", "LivePlot", "live_widget", "mark_thresholds",
    "plot_log",
    "check_logit_lens_at", "check_patched_logits", "edit_first_hop", "run_edits", "cosine_lens",
    "lens_bridge_accuracy", "logit_lens_at", "probe_bridge", "resid_hook_name", "residual_states", "accuracy",
    "answer_accuracy", "answered_correctly", "edit_metrics", "evaluate", "first_step_at", "predict",
    "causal_tracing", "cross_query_pairs", "cross_query_patching", "patched_logits", "TrainConfig",
    "answer_only_loss", "make_model", "train", "E1", "R1", "R2", "SPLITS", "World", "WorldConfig", "build_splits",
]
