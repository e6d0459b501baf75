"""The library way: the same data through sae-lens's ``SAETrainer`` (Standard = ReLU + L1,
TopK, JumpReLU), fed by a plain iterator of activation batches. No wandb, no hub."""
from __future__ import annotations

import contextlib
import functools
import os

from ._validate import as_int

ARCHITECTURES = ("standard", "topk", "jumprelu")


def toy_sae_config(architecture: str, d_in: int, d_sae: int, **overrides):
    """sae-lens's training config of ``architecture`` (``StandardTrainingSAEConfig``, …), with the
    sparsity settings chosen for the toy data (d = 32, 64 true features, ~3 active per sample)."""
    from sae_lens import JumpReLUTrainingSAEConfig, StandardTrainingSAEConfig, TopKTrainingSAEConfig

    toy = {"standard": (StandardTrainingSAEConfig, dict(l1_coefficient=0.3)),
           "topk": (TopKTrainingSAEConfig, dict(k=4)),
           "jumprelu": (JumpReLUTrainingSAEConfig, dict(l0_coefficient=0.05, jumprelu_init_threshold=0.01,
                                                        jumprelu_bandwidth=0.05))}
    if architecture not in toy:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    cfg_cls, defaults = toy[architecture]
    return cfg_cls(d_in=as_int(d_in, "d_in"), d_sae=as_int(d_sae, "d_sae"), **{**defaults, **overrides})


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


def train_saelens(batches, sae_config, steps: int, batch_size: int, lr: float = 1e-3, seed: int = 0,
                  progress: bool = True):
    """Train an sae-lens SAE (the training class of ``sae_config``, e.g. from :func:`toy_sae_config`)
    with ``SAETrainer`` on ``batches`` (an iterator of [batch_size, d_in] tensors on
    ``sae_config.device``). Gradients are switched on inside, whatever the caller's grad mode.
    Returns the trained training-SAE (encode/decode/W_dec like any sae-lens SAE)."""
    import torch
    from sae_lens import SAETrainer, TrainingSAE
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    steps, batch_size, seed = as_int(steps, "steps"), as_int(batch_size, "batch_size"), as_int(seed, "seed", 0)
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.manual_seed(seed)
    sae = TrainingSAE.from_dict(sae_config.to_dict())
    cfg = SAETrainerConfig(total_training_samples=steps * batch_size, train_batch_size_samples=batch_size,
                           lr=lr, lr_end=lr, device=sae_config.device, dead_feature_window=200,
                           feature_sampling_window=1000, logger=LoggingConfig(log_to_wandb=False))
    with _quiet_trainer(progress), torch.enable_grad():
        return SAETrainer(cfg, sae, batches).fit().eval()
