"""Notebook 02 — sparse autoencoders: a from-scratch SAE on data with a known dictionary,
the same through sae-lens (Standard, TopK, JumpReLU), a compute scaling law, and an SAE on the
world LM's residual stream (shipped in data/sae/, loaded with :func:`load_world_sae`).

Modules: ``toy_data`` (data with a known dictionary), ``model`` (the SAE, its loss, decoder
normalisation), ``resampling`` (dead latents), ``training`` (the from-scratch loop and its configs),
``measures`` (MMCS, FVU, L0, CE-loss recovered, KL), ``library`` (sae-lens's trainer), ``scaling``
(compute scaling law, footprint), ``world`` (the world-LM SAE), ``bench``, ``checks`` (the exercises).

    python -m course_lib.sae train-world   # seeded; writes data/sae/
    python -m course_lib.sae bench         # tokens/s: from-scratch trainer vs sae-lens SAETrainer

Importing the package is cheap: each name is imported from its module on first use.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "ToyDictionaryData": "toy_data", "TOY_DATA": "toy_data",
    "SAE": "model", "sae_loss": "model", "normalize_decoder": "model",
    "resample_weights": "resampling",
    "ScratchConfig": "training", "SCRATCH": "training", "DEAD_DEMO": "training", "RESAMPLE_AT": "training",
    "EVAL_SEED": "training", "train_scratch_sae": "training",
    "mmcs": "measures", "fvu": "measures", "sae_stats": "measures", "ce_loss_recovered": "measures",
    "toy_sae_config": "library", "train_saelens": "library",
    "SCALING_DATA": "scaling", "SweepConfig": "scaling", "scaling_sweep": "scaling", "compute_frontier": "scaling",
    "fit_power_law": "scaling", "sae_footprint": "scaling",
    "WorldSAEConfig": "world", "WORLD_SAE": "world", "LIVE_SAE": "world", "load_world_sae": "world",
    "eval_tokens": "world", "evaluate_world_sae": "world", "sae_transformer": "world", "text_positions": "world",
    "train_world_sae": "world",
    "world_sae_metrics": "world", "pca_baseline": "world",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
