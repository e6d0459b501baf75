"""Grokfast (Lee et al. 2024, "Grokfast: accelerated grokking by amplifying slow gradients"):
low-pass filter the gradients with an exponential moving average and add it back with a gain,
so that the slow, generalizing direction of the gradient is amplified."""
from __future__ import annotations


def grokfast_ema(model, ema, alpha, lamb):
    """One Grokfast-EMA step, after ``loss.backward()`` and before ``opt.step()``: for every
    parameter with a gradient g, ``ema <- alpha * ema + (1 - alpha) * g`` (``ema`` starts as g at
    the first step, when ``ema`` is None) and ``g <- g + lamb * ema`` (in place in ``p.grad``).
    Returns the new ``ema`` (a dict: parameter name -> tensor)."""
    if ema is None:
        ema = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    else:
        for name, p in model.named_parameters():
            if p.grad is not None:
                ema[name] = alpha * ema[name] + (1 - alpha) * p.grad.detach()
    for name, p in model.named_parameters():
        if p.grad is not None:
            p.grad = p.grad + lamb * ema[name]
    return ema
