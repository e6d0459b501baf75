"""Notebook 05 — transcoders, a replacement model, and the two-hop circuit Dallas → Texas → Austin.

Modules: ``transcoders`` (per-layer TopK transcoders and the cross-layer transcoder, their forward
passes and the shipped weights), ``training`` (``python -m course_lib.circuits train``), ``measures``
(fidelity: normalized MSE, L0, dead fraction, top-1 agreement and CE with every MLP replaced, error
share, path lengths), ``interventions`` (two-hop prompts, state features, suppress and swap them,
graph-predicted vs real ablation effects), ``labels`` (ground-truth probe labels of the state
features), ``attribution`` and ``graph`` (the local
replacement model, attribution graphs, pruning, drawing), ``checks`` (the exercises).

Importing the package is cheap: each name is imported from its module on first use.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    # transcoders, training, measures, interventions, labels
    "transcoder_forward": "transcoders", "clt_decode": "transcoders", "Transcoder": "transcoders",
    "TranscoderSet": "transcoders", "CrossLayerTranscoder": "transcoders", "load_transcoders": "transcoders",
    "load_clt": "transcoders", "input_hook": "transcoders", "output_hook": "transcoders",
    "shipped_metrics": "transcoders", "TrainConfig": "training", "training_activations": "training",
    "train_transcoders": "training", "normalized_mse": "training", "fidelity": "measures", "eval_tokens": "measures",
    "replacement_hooks": "measures", "path_lengths": "measures", "mean_path_length": "measures",
    "swap_features": "interventions", "swap_success_rate": "interventions", "two_hop_prompts": "interventions",
    "state_features": "interventions", "swap_table": "interventions", "summarize": "interventions",
    "run_swapped": "interventions", "edit_hooks": "interventions", "prompt_features": "interventions",
    "predicted_ablation_effects": "interventions", "real_ablation_effects": "interventions",
    "probe_labels": "labels", "kinds_table": "labels",
    # attribution, graph, checks
    "Graph": "attribution", "Node": "attribution", "AttributionConfig": "attribution", "attribute": "attribution",
    "prune": "attribution", "replacement_score": "attribution", "completeness_score": "attribution",
    "node_influence": "attribution", "frozen_path": "attribution", "direct_edge": "attribution",
    "edge_sum_error": "attribution", "prune_by_influence": "attribution",
    "draw": "graph", "label_features": "graph",
    "check_transcoder_forward": "checks",
    "check_normalized_mse": "checks", "check_clt_decode": "checks", "check_direct_edge": "checks",
    "check_edge_sum_error": "checks", "check_prune_by_influence": "checks", "check_swap_features": "checks",
    "check_swap_success_rate": "checks",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
