"""The figures notebook 04 asserts, computed from the shipped sweeps (data/steering) — one function,
used by the card, the tests and the notebook, so the three always say the same."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .measures import fluency_score, harmonic_aggregate


def corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, dtype=float), np.asarray(b, dtype=float))[0, 1])


def rank_corr(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a, dtype=float), np.asarray(b, dtype=float))[0])


def chosen_strength(success: torch.Tensor, fluency: torch.Tensor, reference: float) -> torch.Tensor:
    """[L]: per latent, the strength index with the best harmonic aggregate of success (clipped at
    0) and fluency score (``fluency``: mean LM log-prob per token, ``reference``: unsteered)."""
    return harmonic_aggregate(success.clamp(min=0), fluency_score(fluency, reference).float()).argmax(0)


def sweep_figures(sweep: dict, target: str = "lens", at: float = 4.0) -> dict:
    """From one seed's latent sweep: correlations (Pearson, and Spearman's rank correlation) of the
    output and input scores with steering success at strength ``at``; success of the top
    output-score quartile over all latents, at that strength, at the strength chosen per latent by
    the harmonic aggregate, and at matched fluency (the largest strength whose fluency stays within
    1 nat/token of unsteered text)."""
    out, inp = np.asarray(sweep["output_score"]), np.asarray(sweep["input_score"])
    success = torch.tensor(sweep["success"][target])
    flu = torch.tensor(sweep["fluency"])
    k = sweep["strengths"].index(at)
    top = torch.from_numpy(out >= np.quantile(out, 0.75))
    cols = torch.arange(success.shape[1])
    best = chosen_strength(success, flu, sweep["base_fluency"])
    s_best, f_best = success[best, cols], flu[best, cols]
    ok = flu >= sweep["base_fluency"] - 1.0
    s_matched = torch.where(ok, success, torch.zeros(())).max(0).values.clamp(min=0)
    return {"corr output": corr(out, success[k]), "corr input": corr(inp, success[k]),
            "rank corr output": rank_corr(out, success[k]), "rank corr input": rank_corr(inp, success[k]),
            "ratio fixed": float(success[k][top].mean() / success[k].mean()),
            "ratio harmonic": float(s_best[top].mean() / s_best.mean()),
            "fluency harmonic top": float(f_best[top].mean()), "fluency harmonic all": float(f_best.mean()),
            "ratio matched": float(s_matched[top].mean() / s_matched.mean()),
            "corr output harmonic": corr(out, s_best), "corr input harmonic": corr(inp, s_best)}


def exact_fluency(row: dict, reference: float) -> float:
    """A row's mean fluency score (:func:`.measures.fluency_score` of each text's exact log-probability
    per token against ``reference``; a text out of support scores 0)."""
    lp = [-np.inf if v is None else v for v in row["exact_per_text"]]
    return float(fluency_score(torch.tensor(lp), reference).mean())


def unsteered_reference(rows: list) -> float:
    """The exact log-probability per token of the unsteered generations (in support), averaged."""
    values = [v for r in rows if r["method"] == "unsteered" for v in r["exact_per_text"] if v is not None]
    return float(np.mean(values))


def method_table(rows: list, success: str = "hit") -> dict:
    """method → mean over concepts of the best harmonic aggregate over strengths (success: the hit
    rate; fluency: :func:`exact_fluency` against the unsteered generations), and the success and
    fluency at that strength."""
    ref, by = unsteered_reference(rows), {}
    for r in rows:
        by.setdefault((r["method"], r["concept"]), []).append(r)
    out = {}
    for (method, _), rs in by.items():
        s = torch.tensor([r[success] for r in rs], dtype=torch.float64)
        f = torch.tensor([exact_fluency(r, ref) for r in rs], dtype=torch.float64)
        h = harmonic_aggregate(s, f)
        i = int(h.argmax())
        out.setdefault(method, []).append((float(h[i]), float(s[i]), float(f[i])))
    return {m: dict(zip(("harmonic", "success", "fluency"), np.mean(v, axis=0).tolist())) for m, v in out.items()}


def by_strength(rows: list, method: str, key: str = "hit") -> dict:
    """strength → the mean of ``key`` over concepts, for one method."""
    out = {}
    for r in rows:
        if r["method"] == method:
            out.setdefault(r["strength"], []).append(r[key])
    return {s: float(np.mean(v)) for s, v in sorted(out.items())}


def asserted(folder) -> dict:
    """figure → [seed 0, seed 1] (or one number for the single AlignSAE run)."""
    import json

    folder = Path(folder)
    seeds = sorted(int(p.stem.split("seed")[1]) for p in folder.glob("sweep_seed*.json"))
    sweeps = [json.loads((folder / f"sweep_seed{s}.json").read_text()) for s in seeds]
    methods = [json.loads((folder / f"methods_seed{s}.json").read_text())["rows"] for s in seeds]
    figs = [sweep_figures(s) for s in sweeps]
    desc = [sweep_figures(s, "description") for s in sweeps]
    tables = [method_table(m) for m in methods]
    out = {f"logit-lens success: {k}": [f[k] for f in figs] for k in figs[0]}
    out.update({f"description success: {k}": [f[k] for f in desc] for k in ("corr output", "corr input",
                                                                               "ratio fixed", "ratio harmonic")})
    for m in tables[0]:
        out[f"methods: {m}, harmonic"] = [t[m]["harmonic"] for t in tables]
        out[f"methods: {m}, hit rate"] = [t[m]["success"] for t in tables]
    out["methods: random - unsteered hit rate, largest at strength <= 0.75"] = [
        max(abs(hit - by_strength(m, "unsteered")[0.0]) for s, hit in by_strength(m, "random").items() if s <= 0.75)
        for m in methods]
    align = json.loads((folder / "alignsae.json").read_text())
    for name in ("unsupervised", "post-trained"):
        for key in ("swap", "prefer B", "clean", "fvu", "bound_f1"):
            out[f"AlignSAE {name}: {key}"] = align[name][key]
    out["AlignSAE unsupervised, best of 3 latents: swap"] = align["unsupervised, best of 3 latents per state"]
    return out
