"""The steering panel: pick a concept, a method and a strength, and read live continuations with
their exact concept hits and fluency. Without a live kernel (a stored notebook) the static
fallback, :func:`continuations_html` for one setting, shows what the panel shows."""
from __future__ import annotations

import html

import numpy as np
import torch

from .generate import GenerateConfig, Steering, generated_mask, sample
from .measures import concept_success, documents, fluency
from .methods import VECTOR_METHODS, Clamp

PANEL_METHODS = VECTOR_METHODS + ("SAE clamp",)


class SteeringLab:
    """Everything the panel needs: models, concepts, the method vectors of :func:`.methods.method_directions`,
    the neutral prompts and the strength unit (the stream's median norm)."""

    def __init__(self, model, sae_model, sae, concepts: dict, directions: dict, prompts: torch.Tensor, scale: float):
        self.model, self.sae_model, self.sae = model, sae_model, sae
        self.concepts, self.directions, self.prompts, self.scale = concepts, directions, prompts, scale

    def run(self, concept: str, method: str, strength: float, seed: int = 0) -> list:
        """One continuation per prompt: (prompt, continuation, hit, exact log-prob per token or −inf)."""
        if concept not in self.concepts:
            raise ValueError(f"concept must be one of {list(self.concepts)}, got {concept!r}")
        if method not in PANEL_METHODS:
            raise ValueError(f"method must be one of {PANEL_METHODS}, got {method!r}")
        i, n, P = list(self.concepts).index(concept), len(self.prompts), self.prompts.shape[1]
        hook = self.sae.cfg.metadata.hook_name
        value = torch.full((n,), float(strength) * self.scale)
        config = GenerateConfig(seed=seed)
        if method == "SAE clamp":
            clamp = Clamp(f"{hook}.hook_sae_acts_post", self.directions["latent"][i].expand(n), value, P - 1)
            with self.sae_model.saes(saes=[self.sae], use_error_term=True):
                tokens, probs = sample(self.sae_model, self.prompts, config, clamp, keep_probs=True)
        else:
            vector = self.directions["vectors"][method][i].expand(n, -1)
            tokens, probs = sample(self.model, self.prompts, config, Steering(hook, vector, value, P - 1), keep_probs=True)
        mask = torch.zeros(self.model.cfg.d_vocab, dtype=torch.bool)
        mask[list(self.concepts[concept].token_ids)] = True
        valid = generated_mask(tokens, P, self.model.tokenizer.eos_token_id)
        hit, _ = concept_success(tokens[:, P:], probs, mask, valid[:, P:])
        docs = documents(tokens, self.model.tokenizer)
        lp = fluency(docs, prompt_len=P)["logp_per_token"]
        return [(" ".join(d[1:P]), " ".join(d[P:]), bool(h), float(v)) for d, h, v in zip(docs, hit.tolist(), lp)]


def continuations_html(results: list, words) -> str:
    """An HTML table of :meth:`SteeringLab.run`'s continuations, concept words in bold."""
    rows = []
    for prompt, text, hit, lp in results:
        shown = " ".join(f"<b>{html.escape(w)}</b>" if w in words else html.escape(w) for w in text.split())
        flu = "out of support" if not np.isfinite(lp) else f"{lp:.2f}"
        rows.append(f"<tr><td>{html.escape(prompt)}</td><td>{shown}</td><td>{'yes' if hit else 'no'}</td>"
                    f"<td>{flu}</td></tr>")
    return ("<table><tr><th>prompt</th><th>continuation</th><th>concept hit</th>"
            "<th>exact log-prob / token</th></tr>" + "".join(rows) + "</table>")


def steering_panel(lab: SteeringLab, concept: str = "Texas", method: str = "difference of means", strength: float = 1.0):
    """The ipywidgets panel (concept, method, strength → live continuations with their scores)."""
    import ipywidgets as widgets

    concept_box = widgets.Dropdown(options=list(lab.concepts), value=concept, description="concept")
    method_box = widgets.Dropdown(options=list(PANEL_METHODS), value=method, description="method")
    strength_box = widgets.FloatSlider(value=strength, min=0.0, max=4.0, step=0.25, description="strength",
                                       continuous_update=False)
    out = widgets.HTML()

    def redraw(_=None):
        results = lab.run(concept_box.value, method_box.value, strength_box.value)
        out.value = continuations_html(results, lab.concepts[concept_box.value].words)

    for box in (concept_box, method_box, strength_box):
        box.observe(redraw, names="value")
    redraw()

    class SteeringPanel(widgets.VBox):
        def __repr__(self):  # a fixed text form keeps the notebook's stored output stable
            return "<steering panel: pick a concept, a method and a strength>"

    return SteeringPanel([widgets.HBox([concept_box, method_box, strength_box]), out])
