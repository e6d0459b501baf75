"""Fidelity of transcoders as a replacement of the world LM's MLPs.

Every figure is an average over *text* positions (not ``<bos>``, not padding), on held-out world
documents (seed ≥ 1000, never used to train the LM or the transcoders):

- per layer, each transcoder on the clean model's MLP input: normalized MSE (squared error over the
  MLP output's variance), L0 (active features per position), dead fraction (features that never
  fire on these positions), error share (the squared norm of the error over that of the MLP output);
- whole: the **replacement model**, every MLP replaced by its transcoder at once (each reading the
  replacement's own residual stream, so errors compound): top-1 agreement with the real model's
  next-token prediction, next-token cross-entropy and its increase over the real model's, and KL.
"""
from __future__ import annotations

import torch

from .transcoders import check_transcoders, input_hook, output_hook

EVAL_DOCS, EVAL_SEED = 600, 1000


def eval_tokens(model, n_docs: int = EVAL_DOCS, seed: int = EVAL_SEED):
    """Held-out world documents, one per row (seed ≥ 1000 is never used for training)."""
    from ..sae.world import eval_tokens as world_eval_tokens

    return world_eval_tokens(model, n_docs, seed)


def replacement_hooks(transcoders):
    """TransformerLens forward hooks that replace every MLP output by the transcoders' prediction
    from the model's own MLP input at that layer (per-layer: that layer's transcoder; CLT: every
    earlier layer's features too). Use as ``model.run_with_hooks(tokens, fwd_hooks=...)``."""
    check_transcoders(transcoders)
    acts = {}
    n = transcoders.n_layers

    def read(x, hook, l):
        acts[l] = transcoders.encode_layer(x, l)

    def write(out, hook, j):
        return transcoders.decode_layer(acts, j)

    return [h for l in range(n) for h in ((input_hook(l), lambda x, hook, l=l: read(x, hook, l)),
                                          (output_hook(l), lambda out, hook, l=l: write(out, hook, l)))]


def fidelity(model, transcoders, tokens, batch_size: int = 64) -> dict:
    """The figures of the module docstring for ``transcoders`` on ``tokens`` (rows of documents):
    ``{"layers": [{nmse, L0, dead, error_share}, ...], "top1_agreement", "CE_clean", "CE_replaced",
    "CE_increase", "KL", "positions", "predictions"}``."""
    from ..sae.measures import kl_divergence, next_token_ce
    from ..sae.world import _trimmed, text_positions

    check_transcoders(transcoders)
    n = transcoders.n_layers
    names = [input_hook(l) for l in range(n)] + [output_hook(l) for l in range(n)]
    sq_err, sq_out, sums, sq_sums = (torch.zeros(n, dtype=torch.float64) for _ in range(4))
    l0 = torch.zeros(n, dtype=torch.float64)
    fired = torch.zeros(n, transcoders.d_sae, dtype=torch.bool)
    count, agree, ce_clean, ce_rep, kl, n_pred = 0, 0, 0.0, 0.0, 0.0, 0
    sum_y = torch.zeros(n, model.cfg.d_model, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            batch = _trimmed(tokens[i:i + batch_size], model).to(model.cfg.device)
            text = text_positions(batch, model.tokenizer)
            predicts = text[:, :-1] & text[:, 1:]
            clean_logits, cache = model.run_with_cache(batch, names_filter=names)
            xs = [cache[input_hook(l)][text] for l in range(n)]
            acts = transcoders.encode(xs)
            out = transcoders.decode(acts)
            for l in range(n):
                y = cache[output_hook(l)][text].double()
                sq_err[l] += ((out[l].double() - y) ** 2).sum()
                sq_out[l] += (y ** 2).sum()
                sum_y[l] += y.sum(0)
                l0[l] += (acts[l] > 0).sum()
                fired[l] |= (acts[l] > 0).any(0).cpu()
            count += int(text.sum())
            rep_logits = model.run_with_hooks(batch, fwd_hooks=replacement_hooks(transcoders))
            agree += int((clean_logits.argmax(-1) == rep_logits.argmax(-1))[:, :-1][predicts].sum())
            ce, k = next_token_ce(clean_logits, batch, predicts)
            ce_clean += ce
            ce_rep += next_token_ce(rep_logits, batch, predicts)[0]
            kl += kl_divergence(clean_logits, rep_logits, predicts)
            n_pred += k
    if count == 0 or n_pred == 0:
        raise ValueError("no text positions to evaluate on (only <bos> and padding?)")
    var = sq_out - (sum_y ** 2).sum(-1) / count  # Σ‖y − ȳ‖²
    layers = [dict(nmse=float(sq_err[l] / var[l]), L0=float(l0[l] / count), dead=float(1 - fired[l].float().mean()),
                   error_share=float(sq_err[l] / sq_out[l])) for l in range(n)]
    return dict(layers=layers, top1_agreement=agree / n_pred, CE_clean=ce_clean / n_pred, CE_replaced=ce_rep / n_pred,
                CE_increase=(ce_rep - ce_clean) / n_pred, KL=kl / n_pred, positions=count, predictions=n_pred)


def path_lengths(graph, max_length: int = 12) -> torch.Tensor:
    """How long the graph's explained paths are: entry ``k - 1`` is the share of the influence on the
    logits that reaches the **token** nodes through paths of exactly ``k`` edges (influence as in
    pruning: rows of ``|A|`` normalised, weighted by the logits' probabilities). Length 1: token →
    logit (through attention and the residual stream alone); 2: token → feature → logit; 3 and more:
    chains of features (e.g. city → state → capital). Sums to 1 (paths ending at error nodes are
    left out: they explain nothing)."""
    from .attribution import normalized

    A = normalized(graph.adjacency).double()
    tokens = graph.slice("token")
    P = graph.logit_weights.double()
    share = []
    for _ in range(max_length):
        P = P @ A
        share.append(P[tokens].sum())
        if not P.any():
            break
    share = torch.stack(share)
    return (share / share.sum().clamp(min=1e-12)).float()


def mean_path_length(graph) -> float:
    """The influence-weighted mean number of edges from a token to the logits (:func:`path_lengths`)."""
    share = path_lengths(graph)
    return float((share * torch.arange(1, len(share) + 1)).sum())
