"""Reading the residual stream at one position: the logit lens (exercise), the bridge entity
per layer, the cosine lens and a linear probe for the bridge.

Layer index ``l`` in 0..n_layers names a residual-stream state: 0 = the embeddings
(``blocks.0.hook_resid_pre``), ``l`` = the output of block ``l-1``."""
from __future__ import annotations

import numpy as np

from .world import R1, World


def resid_hook_name(model, layer: int) -> str:
    """Hook name of residual state ``layer`` (0 = embeddings, ``n_layers`` = the final state)."""
    from transformer_lens.utilities import get_act_name

    L = model.cfg.n_layers
    if not 0 <= layer <= L:
        raise ValueError(f"layer must be in 0..{L} (0 = embeddings, l = after block l-1), got {layer}")
    return get_act_name("resid_pre", layer) if layer < L else get_act_name("resid_post", L - 1)


def residual_states(model, tokens, pos: int):
    """Residual stream at position ``pos`` for every layer: [n_layers + 1, batch, d_model]."""
    import torch

    names = {resid_hook_name(model, l) for l in range(model.cfg.n_layers + 1)}
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        return cache.accumulated_resid(pos_slice=pos).clone()


def logit_lens_at(model, cache, pos):
    """Logit lens at one position: every layer's state through ln_final and the unembedding.
    Returns [n_layers + 1, batch, d_vocab]."""
    import torch

    L = model.cfg.n_layers
    states = torch.stack([cache["resid_pre", 0][:, pos]] + [cache["resid_post", l][:, pos] for l in range(L)])
    return model.unembed(model.ln_final(states))


def lens_bridge_accuracy(model, queries: np.ndarray, pos: int = R1, lens=logit_lens_at) -> list[float]:
    """Per layer: fraction of 2-hop queries (rows (e1, r1, r2, e2, e3)) whose bridge e2 is the
    top-1 of ``lens`` (the logit lens) at ``pos``."""
    import torch

    tokens = torch.from_numpy(queries[:, :3].copy())
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens)
        top = lens(model, cache, pos).argmax(-1)
        return [round(float(x), 3) for x in (top == torch.from_numpy(queries[:, 3].copy())).float().mean(1)]


def _atomic_tokens(world: World, rows: np.ndarray):
    import torch

    return torch.tensor(np.c_[rows[:, :2], np.full(len(rows), world.cfg.pad)], dtype=torch.long)


def cosine_lens(model, world: World, layer: int, n_max: int = 2000) -> dict[str, float]:
    """Cohesion of r1-position states grouped by bridge entity. For ID first hops: mean cosine to
    the centroid of other ID states with the same bridge (``id_same``) vs. other bridges
    (``id_other``); for OOD first hops, mean cosine to the ID centroid of their bridge
    (``ood_same``) and of other bridges (``ood_other``)."""
    import torch
    from torch.nn.functional import cosine_similarity, normalize

    rows_id = world.atomic[~world.is_ood][:n_max]
    rows_ood = world.atomic[world.is_ood]
    s_id, s_ood = (normalize(residual_states(model, _atomic_tokens(world, rows), R1)[layer], dim=-1)
                   for rows in (rows_id, rows_ood))
    E = world.cfg.n_entities
    b_id = torch.from_numpy(rows_id[:, 2].copy())
    sums = torch.zeros(E, s_id.shape[1]).index_add_(0, b_id, s_id)
    counts = torch.bincount(b_id, minlength=E).float()

    def same_other(s, b, exclude_self):
        tot = sums[b] - (s if exclude_self else 0)
        n = counts[b] - (1 if exclude_self else 0)
        ok = n > 0
        same = cosine_similarity(s[ok], tot[ok], dim=-1).mean()
        other = (s @ normalize(sums[counts > 0], dim=-1).T).mean()
        return round(float(same), 3), round(float(other), 3)

    id_same, id_other = same_other(s_id, b_id, True)
    ood_same, ood_other = same_other(s_ood, torch.from_numpy(rows_ood[:, 2].copy()), False)
    return {"id_same": id_same, "id_other": id_other, "ood_same": ood_same, "ood_other": ood_other}


def probe_bridge(model, world: World, layer: int, eval_queries: dict[str, np.ndarray], steps: int = 300,
                 seed: int = 0) -> dict[str, float]:
    """Linear probe for the bridge e2 from the r1-position state at ``layer``. Trained on the
    atomic triples whose (e1, r1) is not the first hop of any evaluation query; returns the
    probe's accuracy on its training set and on each evaluation set (queries [n, 5])."""
    import torch

    held = {(int(q[0]), int(q[1])) for qs in eval_queries.values() for q in qs}
    rows = np.array([r for r in world.atomic if (int(r[0]), int(r[1])) not in held])
    x = residual_states(model, _atomic_tokens(world, rows), R1)[layer]
    y = torch.from_numpy(rows[:, 2].copy())
    torch.manual_seed(seed)
    probe = torch.nn.Linear(x.shape[1], world.cfg.n_entities)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    with torch.enable_grad():
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(probe((x - mu) / sd), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        out = {"train": round(float((probe((x - mu) / sd).argmax(-1) == y).float().mean()), 3)}
        for name, q in eval_queries.items():
            if len(q) == 0:
                out[name] = float("nan")
                continue
            states = residual_states(model, torch.from_numpy(q[:, :3].copy()), R1)[layer]
            pred = probe((states - mu) / sd).argmax(-1)
            out[name] = round(float((pred == torch.from_numpy(q[:, 3].copy())).float().mean()), 3)
    return out
