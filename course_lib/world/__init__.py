"""The glass-box world: a knowledge graph, a probabilistic grammar with exact log-probabilities
and per-token labels, a word-level tokenizer, and the world LM trained on its text."""
from .lm import load_world_model, world_metrics

__all__ = ["load_world_model", "world_metrics"]
