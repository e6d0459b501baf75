"""The from-scratch training loop of notebook 02 and its configurations: Adam on the SAE loss,
decoder rows renormalised after every step, optional resampling of dead latents."""
from __future__ import annotations

import dataclasses

from ._validate import as_int

EVAL_SEED = 1000  # seed of the held-out toy samples (training uses the config's seed)


@dataclasses.dataclass(frozen=True)
class ScratchConfig:
    """One from-scratch training run. ``resample_at``: steps at which the latents that did not fire
    during the last ``window`` steps are resampled; ``lr_decay``: decay the learning rate linearly
    to 0; ``init_b_dec``: 'mean' (of the data) or 'zero'; ``log_every``: record the loss and dead
    fraction every that many steps (0: never)."""

    d_sae: int = 128
    steps: int = 2000
    l1_coeff: float = 0.1
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    resample_at: tuple = ()
    window: int = 200
    log_every: int = 0
    init_b_dec: str = "mean"
    lr_decay: bool = False

    def __post_init__(self):
        for name, minimum in (("d_sae", 1), ("steps", 1), ("batch_size", 1), ("seed", 0), ("window", 1),
                              ("log_every", 0)):
            object.__setattr__(self, name, as_int(getattr(self, name), name, minimum))
        object.__setattr__(self, "resample_at", tuple(as_int(s, "resample_at step") for s in self.resample_at))
        if not self.l1_coeff >= 0 or not self.lr > 0:
            raise ValueError(f"l1_coeff must be >= 0 and lr > 0, got {self.l1_coeff!r}, {self.lr!r}")
        if self.init_b_dec not in ("mean", "zero"):
            raise ValueError(f"init_b_dec must be 'mean' or 'zero', got {self.init_b_dec!r}")


# The chosen from-scratch run on the toy data: 128 latents for 64 true features.
SCRATCH = ScratchConfig(d_sae=128, steps=2000, l1_coeff=0.3, lr=1e-3, batch_size=256, seed=0)
# Dead latents on purpose: a too-high (decaying) learning rate; the resampling run adds RESAMPLE_AT.
DEAD_DEMO = ScratchConfig(d_sae=64, steps=2000, l1_coeff=0.3, lr=0.1, lr_decay=True, window=100, log_every=50, seed=0)
RESAMPLE_AT = (1000, 1300, 1600)


def train_scratch_sae(data, config: ScratchConfig = SCRATCH, *, sae_cls=None, loss_fn=None, normalize=None,
                      resample=None, on_step=None, progress: bool = True, device="cpu"):
    """Train a ReLU + L1 SAE on batches from ``data`` (anything with ``.sample(n, generator)``).

    ``sae_cls``, ``loss_fn``, ``normalize``, ``resample``: the pieces the notebook's exercises write
    (default: the references). ``on_step(step, sae)`` is called after every step. Gradients are
    switched on inside, whatever the caller's grad mode. Returns (sae, history): history lists
    dicts of step, loss and dead fraction every ``config.log_every`` steps."""
    import torch
    from tqdm.auto import tqdm

    from .model import SAE, init_sae, normalize_decoder, sae_loss
    from .resampling import dead_latents, resample_dead_latents, resample_weights

    if not isinstance(config, ScratchConfig):
        raise TypeError(f"config must be a ScratchConfig, got {type(config).__name__}")
    if not hasattr(data, "sample"):
        raise TypeError(f"data must have a .sample(n, generator) method (e.g. ToyDictionaryData), got {type(data).__name__}")
    sae_cls, loss_fn = sae_cls or SAE, loss_fn or sae_loss
    normalize, resample = normalize or normalize_decoder, resample or resample_weights
    c = config
    g = torch.Generator().manual_seed(c.seed)
    x0 = data.sample(4096, g)
    sae = init_sae(sae_cls(x0.shape[1], c.d_sae), g, x0.mean(0).cpu() if c.init_b_dec == "mean" else None).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=c.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / c.steps if c.lr_decay else 1.0)
    since_fired = torch.zeros(c.d_sae, dtype=torch.long, device=device)
    history = []
    with torch.enable_grad():
        for step in tqdm(range(1, c.steps + 1), desc=f"SAE d_sae={c.d_sae}", disable=not progress):
            x = data.sample(c.batch_size, g).to(device)
            x_hat, f = sae(x)
            loss = loss_fn(x, x_hat, f, c.l1_coeff)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                sae.W_dec.copy_(normalize(sae.W_dec))
            since_fired = torch.where((f > 0).any(0), 0, since_fired + 1)
            if step in c.resample_at:
                resample_dead_latents(sae, opt, dead_latents(since_fired, c.window), data.sample(4096, g).to(device),
                                      g, resample)
                since_fired.zero_()
            if on_step is not None:
                on_step(step, sae)
            if c.log_every and (step % c.log_every == 0 or step == c.steps):
                history.append(dict(step=step, loss=loss.item(),
                                    dead=dead_latents(since_fired, c.window).float().mean().item()))
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged: the loss is {loss.item()} after {c.steps} steps "
                                 f"(try a smaller learning rate than {c.lr})")
    return sae, history
