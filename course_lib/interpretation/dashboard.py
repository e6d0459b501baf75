"""A small, offline feature dashboard (inline HTML + a matplotlib histogram as an inline PNG; no
``<script src>``, nothing loaded from a CDN) and an ipywidgets feature browser with a static
fallback. At scale use sae-dashboard's ``SaeVisRunner`` (it needs transformer-lens < 3 and a CDN)."""
from __future__ import annotations

import base64
import html
import io

import torch

from .contexts import label_panel, logit_effects, quantile_samples, top_activations

PANEL_FIELDS = ("token", "entity_type", "relation", "pos", "topic", "sentiment", "in_quote", "next token")


def _context_html(data, i: int, value: float, vmax: float) -> str:
    words, at = data.context(i)
    parts = []
    for k, w in enumerate(words):
        w = html.escape(w)
        if k == at:
            alpha = 0.25 + 0.75 * min(value / max(vmax, 1e-9), 1.0)
            parts.append(f'<b style="background:rgba(255,140,0,{alpha:.2f});padding:0 2px">{w}</b>')
        else:
            parts.append(w)
    return f'<div style="font-family:monospace;font-size:12px">{value:5.2f} &nbsp;{" ".join(parts)}</div>'


def _histogram_png(acts: torch.Tensor, title: str) -> str:
    from matplotlib.figure import Figure  # no pyplot: the figure is not shown, only embedded

    fig = Figure(figsize=(3.6, 1.8), dpi=80)
    ax = fig.subplots()
    fired = acts[acts > 0].numpy()
    ax.hist(fired, bins=30, color="darkorange")
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("activation where it fires", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def dashboard_html(latent: int, units, data, model, W_dec, scores=None, preds=None, n_top: int = 8, n_bins: int = 4,
                   per_bin: int = 2, seed: int = 0) -> str:
    """One latent's dashboard: the explanation and its scores (if ``scores``), top activating
    contexts, contexts from every activation quantile, the activation histogram, the promoted and
    suppressed tokens (direct logit effects of its decoder row) and the ground-truth panel."""
    acts = units.column(latent)
    fires = (acts > 0).numpy()
    vmax = float(acts.max()) if fires.any() else 1.0
    head = f"<h4 style='margin:4px 0'>{html.escape(units.name)} #{latent} — fires on {fires.mean():.2%} of tokens</h4>"
    if scores is not None and preds is not None:
        best, top_best = (html.escape(preds.names[i]) for i in (scores.best[latent], scores.top_best[latent]))
        head += (f"<div>explanation (train split): <b>{best}</b> — held-out F1 {scores.test_f1[latent]:.2f}, detection "
                 f"{scores.detection[latent]:.2f}, simulation {scores.simulation[latent]:.2f}; top-example explainer: "
                 f"{top_best}</div>")
    values, idx = top_activations(acts, n_top)
    top = "".join(_context_html(data, int(i), float(v), vmax) for v, i in zip(values, idx))
    quant = ""
    if fires.any():
        for b, chunk in enumerate(quantile_samples(acts, n_bins, per_bin, torch.Generator().manual_seed(seed))):
            quant += f"<div style='color:#666;font-size:11px'>quantile bin {b + 1}/{n_bins}</div>"
            quant += "".join(_context_html(data, int(i), float(acts[i]), vmax) for i in chunk)
    with torch.no_grad():
        effects = logit_effects(model, W_dec[latent].to(model.W_U.device)).cpu()
    up, down = effects.topk(6), (-effects).topk(6)
    tok = model.tokenizer.convert_ids_to_tokens
    promoted = ", ".join(f"{html.escape(t)} ({v:+.2f})" for t, v in zip(tok(up.indices.tolist()), up.values.tolist()))
    suppressed = ", ".join(f"{html.escape(t)} ({-v:+.2f})" for t, v in zip(tok(down.indices.tolist()), down.values.tolist()))
    logits = f"<div><b>promotes</b> {promoted}<br><b>suppresses</b> {suppressed}</div>"
    rows = "".join(f"<tr><td>{html.escape(f)}</td><td>{html.escape(str(v))}</td><td>{p:.2f}</td><td>{b:.3f}</td></tr>"
                   for f, v, p, b in label_panel(data.labels, fires, PANEL_FIELDS, top=2))
    panel = ("<table style='font-size:11px'><tr><th>field</th><th>value</th><th>P(value | fires)</th><th>base rate</th></tr>"
             f"{rows}</table>")
    return (f"<div style='border:1px solid #ccc;padding:6px;max-width:900px'>{head}"
            f"<div style='display:flex;gap:12px'><div style='flex:1'><b>top activations</b>{top}</div>"
            f"<div>{_histogram_png(acts, f'latent {latent}')}</div></div>"
            f"<b>across quantiles</b>{quant}{logits}<b>ground truth</b>{panel}</div>")


def latents_for(query: str, scores, preds, n: int = 5) -> list:
    """The units that match the label predicate ``query`` (e.g. ``"topic = food"``) best (train F1)."""
    j = preds.index(query)
    f1 = scores.f1_train[:, j]
    return f1.topk(n).indices.tolist()


def feature_browser(units, data, model, W_dec, scores, preds, start: int = 0):
    """An ipywidgets browser: pick a latent, or type a label predicate to jump to the latents that
    match it best. It is displayed as one output with two forms: the live widget, and the first
    dashboard as static HTML — what a viewer without widgets (a stored notebook, GitHub) shows."""
    from IPython.display import HTML, display

    first = dashboard_html(start, units, data, model, W_dec, scores, preds)
    try:
        import ipywidgets as w
    except ImportError:
        display(HTML(first))
        return None
    latent = w.BoundedIntText(value=start, min=0, max=units.n_units - 1, description="latent")
    query = w.Combobox(placeholder="label, e.g. topic = food", options=[p for p in preds.names if " & " not in p],
                       description="search", ensure_option=False)
    found, out = w.HTML(), w.HTML(first)

    def show(change=None):
        out.value = dashboard_html(int(latent.value), units, data, model, W_dec, scores, preds)

    def search(change=None):
        if query.value in preds.names:
            best = latents_for(query.value, scores, preds)
            f1 = scores.f1_train[best, preds.index(query.value)]
            found.value = "best latents: " + ", ".join(f"#{b} (F1 {v:.2f})" for b, v in zip(best, f1.tolist()))
            latent.value = best[0]

    latent.observe(show, names="value")
    query.observe(search, names="value")
    box = w.VBox([w.HBox([latent, query]), found, out])
    bundle = box._repr_mimebundle_()
    bundle["text/html"] = first  # the static fallback, in the same output
    bundle["text/plain"] = f"feature browser (widget), showing {units.name} #{start}"
    display(bundle, raw=True)
    return box
