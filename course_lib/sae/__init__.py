"""Notebook 02 — sparse autoencoders: a from-scratch SAE on data with a known dictionary,
the same through sae-lens (Standard, TopK, JumpReLU), a compute scaling law, and an SAE on the
world LM's residual stream (shipped in data/sae/, loaded with :func:`load_world_sae`).

    python -m course_lib.sae train-world   # seeded; writes data/sae/
    python -m course_lib.sae bench         # tokens/s: from-scratch trainer vs sae-lens SAETrainer
"""
from .toy_data import ToyDictionaryData
from .scratch import SAE, mmcs, sae_stats, train_scratch_sae
from .world import SAEFilesError, load_world_sae  # noqa: E402

__all__ = ["SAE", "SAEFilesError", "ToyDictionaryData", "load_world_sae", "mmcs", "sae_stats", "train_scratch_sae"]
