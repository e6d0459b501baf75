"""Arad, Mueller & Belinkov (2025) reproduced on the world SAE: every live latent's input and output
score, and how well it steers, measured exactly.

What a latent *should* steer toward is its **description**: the ground-truth label predicate that
explains it best (notebook 03's explainer, over the current token's labels and the next token's —
what an explainer reading its dashboard and its logit effects would write). A predicate is
written by a set of words (``entity_type = state``: Texas, Ohio, …; ``next token = Austin``:
Austin): the words that satisfy it (almost) wherever they occur. Steering *succeeds* by the share
of generated tokens that are such words, above the same share without steering; *fluency* is the
unsteered world LM's mean log-probability per generated token.
"""
from __future__ import annotations

import dataclasses

import torch
from tqdm.auto import tqdm

from .generate import GenerateConfig, Steering, generated_mask, sample
from .measures import lm_logprob
from .scores import amplified_logits, decoder_directions, logit_lens_tokens, output_score


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Each latent steered at ``strengths`` × its largest activation on held-out text, on
    ``n_prompts`` neutral prompts, ``new_tokens`` sampled (seed ``seed`` draws the prompts and the samples)."""

    strengths: tuple = (0.5, 1.0, 2.0, 4.0)
    n_prompts: int = 4
    new_tokens: int = 12
    seed: int = 0
    lens_k: int = 20  # logit-lens tokens per latent (Arad et al.: 20)
    n_top: int = 100  # top activating examples of the input score (Arad et al.: 100)
    min_top: int = 10  # latents with fewer firing tokens are not scored (Arad et al.: 10)
    purity: float = 0.75  # a word writes a predicate if the predicate holds on this share of its occurrences
    factor: float = 10.0  # output score: the latent raised by factor × the largest activation (Arad et al.: 10)
    baseline_samples: int = 64  # unsteered samples per prompt, for the base rate


def predicate_words(preds, data, vocab: dict, purity: float = 0.75, min_count: int = 3) -> torch.Tensor:
    """[P, d_vocab] bool: the words that write each predicate — those on which it holds in at least
    ``purity`` of their ``min_count`` or more occurrences. A predicate about the next token
    (``next pos = NOUN``) is written by the words of its current-token form (``pos = NOUN``)."""
    ids = torch.tensor([vocab[w] for w in data.labels["token"]])
    counts = torch.zeros(len(vocab)).index_add_(0, ids, torch.ones(len(ids)))
    onehot = torch.zeros(len(ids), len(vocab))
    onehot[torch.arange(len(ids)), ids] = 1
    share = (onehot.T @ preds.matrix.float()) / counts[:, None].clamp(min=1)  # [V, P]
    words = (share >= purity) & (counts[:, None] >= min_count)
    for j, name in enumerate(preds.names):
        if name.startswith("next "):
            current = name[len("next "):]
            words[:, j] = words[:, preds.names.index(current)] if current in preds.names else False
    return words.T.contiguous()


def latent_scores(sae_model, sae, acts, data, prompts: torch.Tensor, config: SweepConfig = SweepConfig(),
                  progress: bool = True) -> dict:
    """Input score, output score (mean over the ``prompts``), logit-lens tokens and largest
    activation of every latent (``acts`` [tokens, d_sae]: its activations on ``data``'s tokens);
    ``scored``: the latents firing on at least ``config.min_top`` tokens."""
    vocab = sae_model.tokenizer.get_vocab()
    token_ids = torch.tensor([vocab[w] for w in data.labels["token"]])
    lens = logit_lens_tokens(sae_model, decoder_directions(sae), config.lens_k)
    top = acts.topk(config.n_top, dim=0)  # [n_top, L]
    fires = (acts > 0).sum(0)
    scored = fires >= config.min_top
    n_valid = fires.clamp(max=config.n_top)
    top_tokens = token_ids[top.indices.T]  # [L, n_top]
    valid = torch.arange(config.n_top)[None, :] < n_valid[:, None]
    hits = (top_tokens[:, :, None] == lens[:, None, :]).any(-1) & valid
    inp = hits.float().sum(1) / n_valid.clamp(min=1)  # input_score over the firing examples only
    everyone = torch.arange(sae.cfg.d_sae)
    out = torch.stack([output_score(amplified_logits(sae_model, sae, everyone, p[None], config.factor), lens)
                       for p in tqdm(prompts, desc="output scores", leave=False, disable=not progress)]).mean(0)
    return {"input": inp, "output": out, "lens": lens, "max_act": acts.max(0).values, "scored": scored}


def steering_sweep(model, sae, targets: dict, max_act: torch.Tensor, prompts: torch.Tensor,
                   config: SweepConfig = SweepConfig(), progress: bool = True) -> dict:
    """Steer with every latent at every strength, ``len(prompts)`` samples each. ``targets``: name →
    [L, d_vocab] bool, the words each latent should make the model write (e.g. its description's
    words, its logit-lens tokens). Returns ``success[name]`` (mass on the words above the unsteered
    mass) and ``fluency`` [n_strengths, L], ``base_rate[name]`` [L] and ``base_fluency`` (a number)."""
    L, n_p, P = len(max_act), len(prompts), prompts.shape[1]
    eos = model.tokenizer.eos_token_id
    gen = GenerateConfig(new_tokens=config.new_tokens, seed=config.seed)
    base, probs = sample(model, prompts.repeat(config.baseline_samples, 1), gen, keep_probs=True)
    base_mask = generated_mask(base, P, eos)
    steps = base_mask.sum(1, keepdim=True).clamp(min=1)
    base_rate = {name: (((probs @ t.float().T) * base_mask[:, P:, None]).sum(1) / steps).mean(0)
                 for name, t in targets.items()}
    base_fluency = lm_logprob(model, base, base_mask).mean().item()
    directions = decoder_directions(sae).cpu()
    success = {name: torch.zeros(len(config.strengths), L) for name in targets}
    fluency = torch.zeros(len(config.strengths), L)
    chunk = max(1, gen.batch_size // n_p)
    bar = tqdm(total=len(config.strengths) * L, desc="steering sweep", disable=not progress)
    for k, strength in enumerate(config.strengths):
        for start in range(0, L, chunk):
            latents = torch.arange(start, min(L, start + chunk))
            row_latent = latents.repeat_interleave(n_p)
            steer = Steering(sae.cfg.metadata.hook_name, directions[row_latent], strength * max_act[row_latent], P - 1)
            seed = config.seed + 1 + k * 1000 + start
            tokens, probs = sample(model, prompts.repeat(len(latents), 1), dataclasses.replace(gen, seed=seed), steer,
                                   keep_probs=True)
            valid = generated_mask(tokens, P, eos)
            for name, t in targets.items():
                mass = ((probs * t[row_latent, None, :]).sum(-1) * valid[:, P:]).sum(1) / valid.sum(1).clamp(min=1)
                success[name][k, latents] = mass.view(-1, n_p).mean(1) - base_rate[name][latents]
            fluency[k, latents] = lm_logprob(model, tokens, valid).view(-1, n_p).mean(1)
            bar.update(len(latents))
    bar.close()
    return {"success": success, "fluency": fluency, "base_rate": base_rate, "base_fluency": base_fluency}
