"""Notebook 06 — how transformers learn implicit (2-hop) reasoning, in the controlled world of
Wang et al. (2024) and Ye et al. (2025): world and splits, training, mechanism analyses,
shipped runs and exercise checks."""
from .world import E1, R1, R2, SPLITS, World, WorldConfig, build_splits  # noqa: F401
from .training import (TrainConfig, accuracy, answer_only_loss, evaluate, first_step_at,  # noqa: F401
                       make_model, predict, train)
