"""Steering methods side by side on the same concepts, measured exactly.

Every method but prompting adds a vector to the residual stream where the shipped SAE reads it
(``blocks.2.hook_resid_pre``), from the last prompt token on, at a strength given as the vector's
norm in units of the median norm of the stream on text tokens:

* ``SAE latent``: the decoder row of the latent that best *detects* the concept (input AUROC) —
  what correlation alone would pick;
* ``SAE latent, output-filtered``: among latents whose logit-lens tokens include a concept word,
  the one with the best output score (Arad et al.'s selection); the detecting latent if none;
* ``SAE clamp``: the detecting latent's activation set to the strength inside sae-lens's
  ``HookedSAETransformer.saes(..., use_error_term=True)``;
* ``difference of means`` (CAA-style): mean stream on concept words minus the mean elsewhere;
* ``ActAdd``: one prompt pair, the stream at ``<bos> word`` minus at ``<bos> The``;
* ``random``: a random direction (the control);
* ``prompting``: no vector; the prompt is instead a document's beginning that mentions the concept.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .generate import GenerateConfig, Steering, generated_mask, sample
from .intervene import diff_in_means
from .measures import concept_success, documents, fluency, lm_logprob

VECTOR_METHODS = ("SAE latent", "SAE latent, output-filtered", "difference of means", "ActAdd", "random")


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    strengths: tuple = (0.25, 0.5, 0.75, 1.0)  # × the median norm of the stream on text tokens
    samples: int = 4  # samples per neutral prompt
    new_tokens: int = 12
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Clamp:
    """Set latent ``latents[row]`` of the SAE to ``values[row]`` from position ``start`` on (a hook on
    ``hook_sae_acts_post``; the model must run inside ``model.saes(saes=[sae], use_error_term=True)``)."""

    hook: str
    latents: torch.Tensor  # [batch] long
    values: torch.Tensor  # [batch]
    start: int

    def __len__(self) -> int:
        return len(self.latents)

    def hooks(self, rows: torch.Tensor) -> list:
        latents, values, start = self.latents[rows], self.values[rows], self.start

        def clamp(acts, hook):
            acts = acts.clone()
            acts[torch.arange(len(latents)), start:, latents] = values[:, None].to(acts.dtype)
            return acts

        return [(self.hook, clamp)]


def method_directions(model, sae, data, latent_acts: torch.Tensor, concepts: dict, scores: dict,
                      generator: torch.Generator) -> dict:
    """method → [n_concepts, d_model] unit vectors (in the order of ``concepts``), and ``latent``:
    the detecting latent of each concept. ``data``: labelled activations
    (:func:`course_lib.interpretation.collect`), ``latent_acts`` [tokens, d_sae] the SAE's latents on
    them; ``scores``: :func:`.arad.latent_scores`'s output, for the output filter."""
    from .concepts import auroc, sorted_columns
    from .scores import decoder_directions

    W = decoder_directions(sae).cpu()
    columns = sorted_columns(latent_acts)
    out = {m: [] for m in VECTOR_METHODS}
    detecting = []
    for c in concepts.values():
        is_concept = torch.from_numpy(np.isin(data.labels["token"], c.words))
        best = int(auroc(latent_acts, is_concept, columns).argmax())
        detecting.append(best)
        says = torch.isin(scores["lens"][:, :5], torch.tensor(c.token_ids)).any(1) & scores["scored"]
        filtered = int(torch.where(says, scores["output"], torch.tensor(-1.0)).argmax()) if says.any() else best
        with torch.no_grad():
            _, cache = model.run_with_cache(model.to_tokens([f"{c.words[0]}", "The"]), names_filter=data.hook)
        out["SAE latent"].append(W[best])
        out["SAE latent, output-filtered"].append(W[filtered])
        out["difference of means"].append(diff_in_means(data.resid, is_concept))
        out["ActAdd"].append(cache[data.hook][0, -1] - cache[data.hook][1, -1])
        out["random"].append(torch.randn(W.shape[1], generator=generator))
    vectors = {m: torch.stack(v) for m, v in out.items()}
    vectors = {m: v / v.norm(dim=-1, keepdim=True) for m, v in vectors.items()}
    return {"vectors": vectors, "latent": torch.tensor(detecting)}


def context_sentences(data, concepts: dict) -> dict:
    """concept → the beginning of a held-out document up to the end of its first sentence with a
    concept word (so the grammar can write it: prompting's fluency is conditional on it)."""
    out = {}
    for name, c in concepts.items():
        for row in data.rows:
            words = [w for w in row if w not in ("<bos>", "<eos>", "<pad>")]
            hits = [i for i, w in enumerate(words) if w in c.words]
            if hits and "." in words[hits[0]:] and '"' not in words:
                out[name] = words[:hits[0] + words[hits[0]:].index(".") + 1]
                break
    return out


def _measure(model, tokens, probs, concept_mask, P: int) -> dict:
    valid = generated_mask(tokens, P, model.tokenizer.eos_token_id)
    hit, mass = concept_success(tokens[:, P:], probs, concept_mask, valid[:, P:])
    exact = fluency(documents(tokens, model.tokenizer), prompt_len=P)
    lp = exact["logp_per_token"]
    return {"hit": hit.mean().item(), "mass": mass.mean().item(),
            "lm_logprob": lm_logprob(model, tokens, valid).mean().item(),
            "in_support": float(exact["in_support"].mean()),
            "exact_logprob": float(lp[exact["in_support"]].mean()) if exact["in_support"].any() else None,
            "exact_per_text": [round(float(v), 4) if np.isfinite(v) else None for v in lp]}


def compare_methods(model, sae_model, sae, concepts: dict, directions: dict, contexts: dict, prompts: torch.Tensor,
                    scale: float, config: CompareConfig = CompareConfig()) -> list:
    """One row per (concept, method, strength): hit rate, concept mass, the unsteered LM's and the
    grammar's log-probability per generated token (the latter over the in-support generations, and
    per text: None out of support) and the share in support. ``scale``: the median norm of the
    stream (strength 1)."""
    rows, P = [], prompts.shape[1]
    gen = GenerateConfig(new_tokens=config.new_tokens, seed=config.seed)
    batch = prompts.repeat(config.samples, 1)
    hook = sae.cfg.metadata.hook_name
    d_vocab = model.cfg.d_vocab
    for i, (name, c) in enumerate(concepts.items()):
        mask = torch.zeros(d_vocab, dtype=torch.bool)
        mask[list(c.token_ids)] = True
        tokens, probs = sample(model, batch, gen, keep_probs=True)
        rows.append(dict(concept=name, kind=c.kind, method="unsteered", strength=0.0,
                         **_measure(model, tokens, probs, mask, P)))
        context = torch.tensor(model.tokenizer.convert_tokens_to_ids(contexts[name]))
        prompted = torch.cat([batch[:, :1], context.expand(len(batch), -1)], dim=1)
        tokens, probs = sample(model, prompted, gen, keep_probs=True)
        rows.append(dict(concept=name, kind=c.kind, method="prompting", strength=0.0,
                         **_measure(model, tokens, probs, mask, prompted.shape[1])))
        for strength in config.strengths:
            for method in VECTOR_METHODS:
                v = directions["vectors"][method][i]
                steer = Steering(hook, v.expand(len(batch), -1), torch.full((len(batch),), strength * scale), P - 1)
                tokens, probs = sample(model, batch, gen, steer, keep_probs=True)
                rows.append(dict(concept=name, kind=c.kind, method=method, strength=strength,
                                 **_measure(model, tokens, probs, mask, P)))
            clamp = Clamp(f"{hook}.hook_sae_acts_post", directions["latent"][i].expand(len(batch)),
                          torch.full((len(batch),), strength * scale), P - 1)
            with sae_model.saes(saes=[sae], use_error_term=True):
                tokens, probs = sample(sae_model, batch, gen, clamp, keep_probs=True)
            rows.append(dict(concept=name, kind=c.kind, method="SAE clamp", strength=strength,
                             **_measure(model, tokens, probs, mask, P)))
    return rows
