"""The library way: the same data through sae-lens's ``SAETrainer`` (Standard = ReLU + L1,
TopK, JumpReLU), fed by a plain iterator of activation batches. No wandb, no hub."""
from __future__ import annotations

import contextlib
import functools
import os

ARCHITECTURES = ("standard", "topk", "jumprelu")
# Defaults for the toy data (d=32, 64 true features, ~3 active per sample).
ARCH_DEFAULTS = {"standard": dict(l1_coefficient=0.3),
                 "topk": dict(k=4),
                 "jumprelu": dict(l0_coefficient=0.05, jumprelu_init_threshold=0.01, jumprelu_bandwidth=0.05)}


def training_sae(architecture: str, d_in: int, d_sae: int, **kwargs):
    """A fresh sae-lens training SAE of the given architecture."""
    from sae_lens import (JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig, StandardTrainingSAE,
                          StandardTrainingSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig)

    classes = {"standard": (StandardTrainingSAE, StandardTrainingSAEConfig),
               "topk": (TopKTrainingSAE, TopKTrainingSAEConfig),
               "jumprelu": (JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig)}
    if architecture not in classes:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    sae_cls, cfg_cls = classes[architecture]
    return sae_cls(cfg_cls(d_in=d_in, d_sae=d_sae, **{**ARCH_DEFAULTS[architecture], **kwargs}))


@contextlib.contextmanager
def _quiet_trainer(progress: bool):
    """sae-lens's trainer always opens a tqdm bar; silence it unless ``progress``."""
    import sae_lens.training.sae_trainer as trainer_module

    original = trainer_module.tqdm
    if not progress:
        trainer_module.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        trainer_module.tqdm = original


def train_saelens(batches, architecture: str, d_in: int, d_sae: int, steps: int, batch_size: int,
                  lr: float = 1e-3, seed: int = 0, progress: bool = True, device: str = "cpu", **sae_kwargs):
    """Train an sae-lens SAE with ``SAETrainer`` on ``batches`` (an iterator of [batch_size, d_in]
    tensors). Returns the trained training-SAE (encode/decode/W_dec like any sae-lens SAE)."""
    import torch
    from sae_lens import SAETrainer
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.manual_seed(seed)
    sae = training_sae(architecture, d_in, d_sae, device=device, **sae_kwargs)
    cfg = SAETrainerConfig(total_training_samples=steps * batch_size, train_batch_size_samples=batch_size,
                           lr=lr, lr_end=lr, device=device, dead_feature_window=200, feature_sampling_window=1000,
                           logger=LoggingConfig(log_to_wandb=False))
    with _quiet_trainer(progress):
        return SAETrainer(cfg, sae, batches).fit().eval()
