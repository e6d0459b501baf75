"""Post-training an SAE for steering, after AlignSAE (arXiv 2512.02004): after unsupervised
pre-training, bind each chosen concept — here the 16 states — to one dedicated latent.

A copy of the shipped SAE is trained further on labelled held-out activations with its
reconstruction loss plus a **binding loss**: the pre-activation of state s's latent is pushed up
on the tokens of s above the TopK's selection threshold (the k-th largest pre-activation of the
token), and below it everywhere else (binary cross-entropy on the 16 bound latents). The
bound latent of each state starts as the latent that detects it best (train F1; distinct).

**Concept swap**: in "The capital of A is", remove A's latent and put B's latent (at its mean
activation on B's tokens) from A's first token on, inside the SAE with its error term; success when
the model then names B's capital. Compared with the same swap through the unsupervised latents.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from ..world import knowledge as kg

TEMPLATES = ("The capital of {} is", "{} has its capital in")


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    steps: int = 600
    lr: float = 1e-3
    binding: float = 10.0  # weight of the binding loss against the (variance-normalised) reconstruction loss
    batch_size: int = 1024
    seed: int = 0


def state_labels(data, concepts: dict) -> torch.Tensor:
    """[N] long: the index of the state (in ``concepts`` order, states only) of each token, −1 if none."""
    y = torch.full((len(data),), -1, dtype=torch.long)
    for i, c in enumerate(c for c in concepts.values() if c.field == "entity"):
        y[torch.from_numpy(data.labels["entity"] == c.name)] = i
    return y


def state_f1(codes: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[n_states, d_sae]: F1 of every latent (fires: > 0) as a detector of every state's tokens."""
    fires = (codes > 0).float()
    truth = torch.nn.functional.one_hot(y.clamp(min=0), int(y.max()) + 1).float() * (y >= 0)[:, None].float()
    both = truth.T @ fires
    return 2 * both / (truth.sum(0)[:, None] + fires.sum(0)[None, :]).clamp(min=1)


def bound_latents(score: torch.Tensor) -> torch.Tensor:
    """[n_states] distinct latents, greedily by ``score`` [n_states, d_sae] (e.g. :func:`state_f1`)."""
    score, chosen = score.clone(), torch.full((len(score),), -1)
    for _ in range(len(score)):
        s, f = divmod(int(score.argmax()), score.shape[1])
        chosen[s] = f
        score[s, :], score[:, f] = -1, -1
    return chosen


def fvu(sae, x: torch.Tensor) -> float:
    with torch.no_grad():
        recon = sae.decode(sae.encode(x))
    return float(((recon - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


def post_train(sae, resid: torch.Tensor, y: torch.Tensor, slots: torch.Tensor, config: AlignConfig = AlignConfig()):
    """A post-trained copy of ``sae``: reconstruction + binding of state ``i`` (``y == i``) to latent
    ``slots[i]``. ``resid`` [N, d_model] training activations. Returns (sae, loss history)."""
    aligned = copy.deepcopy(sae).train()
    generator = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(aligned.parameters(), lr=config.lr)
    var = ((resid - resid.mean(0)) ** 2).sum(-1).mean()
    target = torch.zeros(len(resid), len(slots))
    target[y >= 0, y[y >= 0]] = 1
    history = []
    with torch.enable_grad():
        for _ in range(config.steps):
            idx = torch.randint(len(resid), (config.batch_size,), generator=generator)
            x = resid[idx]
            recon = aligned.decode(aligned.encode(x))
            pre = aligned.process_sae_in(x) @ aligned.W_enc + aligned.b_enc
            if aligned.cfg.rescale_acts_by_decoder_norm:
                pre = pre * aligned.W_dec.norm(dim=-1)
            kth = pre.detach().topk(aligned.cfg.k, dim=-1).values[:, -1:]  # the TopK's selection threshold
            rec_loss = ((recon - x) ** 2).sum(-1).mean() / var
            bind = torch.nn.functional.binary_cross_entropy_with_logits(pre[:, slots] - kth, target[idx])
            loss = rec_loss + config.binding * bind
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append((rec_loss.item(), bind.item()))
    return aligned.eval(), history


def swap_success(sae_model, sae, slots: torch.Tensor, values: torch.Tensor, concepts: dict) -> dict:
    """Share of (A, B) state pairs, both templates, where swapping A's latent for B's makes the
    model's top next token B's capital (``swap``), or at least ranks B's capital above A's
    (``prefer B``); and, for reference, how often the unswapped prompt names A's capital."""
    states = [c for c in concepts.values() if c.field == "entity"]
    tok = sae_model.tokenizer
    hook = f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post"
    capital = [tok.convert_tokens_to_ids(kg.STATES[c.name][0].split()[0]) for c in states]
    hits, prefer, clean = [], [], []
    with torch.no_grad(), sae_model.saes(saes=[sae], use_error_term=True):
        for template in TEMPLATES:
            for a, ca in enumerate(states):
                tokens = sae_model.to_tokens(template.format(ca.name))
                words = torch.isin(tokens[0], torch.tensor(tok.convert_tokens_to_ids(ca.name.split())))
                where = torch.arange(tokens.shape[1]) >= int(torch.nonzero(words)[0, 0])  # A's words and after
                clean.append(int(sae_model(tokens)[0, -1].argmax()) == capital[a])
                others = [b for b in range(len(states)) if b != a]

                def swap(acts, hook, others=others, a=a):
                    acts = acts.clone()
                    rows = torch.arange(len(others))
                    acts[:, where, slots[a]] = 0
                    acts[rows[:, None], torch.nonzero(where)[:, 0][None, :], slots[others][:, None]] = \
                        values[others][:, None]
                    return acts

                logits = sae_model.run_with_hooks(tokens.expand(len(others), -1), fwd_hooks=[(hook, swap)])
                last = logits[:, -1]
                hits += (last.argmax(-1) == torch.tensor(capital)[others]).tolist()
                prefer += (last[rows_of(others), torch.tensor(capital)[others]] > last[:, capital[a]]).tolist()
    return {"swap": float(np.mean(hits)), "prefer B": float(np.mean(prefer)), "clean": float(np.mean(clean)),
            "pairs": len(hits)}


def rows_of(items) -> torch.Tensor:
    return torch.arange(len(items))


def align_experiment(sae_model, sae, data, concepts: dict, config: AlignConfig = AlignConfig()):
    """Post-train on the train split; on the held-out split, the bound latents' F1 and the FVU, and
    the swap success of the post-trained and the unsupervised SAE (bound latents, and the best of
    each state's 3 best-detecting unsupervised latents). Returns (post-trained SAE, results)."""
    y = state_labels(data, concepts)
    train = torch.from_numpy(np.asarray(data.train))
    with torch.no_grad():
        codes = sae.encode(data.resid)
    f1 = state_f1(codes[train], y[train])
    slots = bound_latents(f1)
    aligned, history = post_train(sae, data.resid[train], y[train], slots, config)
    result = {"slots": slots.tolist(), "loss_first": history[0], "loss_last": history[-1]}
    for name, s in (("unsupervised", sae), ("post-trained", aligned)):
        with torch.no_grad():
            a = s.encode(data.resid)
        values = torch.stack([a[y == i, slots[i]].mean() for i in range(len(slots))])
        held_f1 = state_f1(a[~train], y[~train])[torch.arange(len(slots)), slots]
        result[name] = dict(swap_success(sae_model, s, slots, values, concepts), fvu=fvu(s, data.resid[~train]),
                            bound_f1=float(held_f1.mean()))
    top3 = f1.topk(3, dim=1).indices
    result["unsupervised, best of 3 latents per state"] = max(
        swap_success(sae_model, sae, top3[:, j], torch.stack([codes[y == i, top3[i, j]].mean() for i in range(len(slots))]),
                     concepts)["swap"] for j in range(3))
    return aligned, result
