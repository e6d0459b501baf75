"""Mechanism tools: logit lens at the r1 position, causal tracing, Ye et al.'s cross-query
semantic patching, the cosine lens, a bridge-entity probe, and knowledge editing.

Layer index ``l`` in 0..n_layers names a residual-stream state: 0 = the embeddings
(``blocks.0.hook_resid_pre``), ``l`` = the output of block ``l-1``."""
from __future__ import annotations

import numpy as np

from .world import E1, R1, R2, World


def resid_hook_name(model, layer: int) -> str:
    L = model.cfg.n_layers
    if not 0 <= layer <= L:
        raise ValueError(f"layer must be in 0..{L} (0 = embeddings, l = after block l-1), got {layer}")
    return f"blocks.{layer}.hook_resid_pre" if layer < L else f"blocks.{L - 1}.hook_resid_post"


def residual_states(model, tokens, pos: int):
    """Residual stream at position ``pos`` for every layer: [n_layers + 1, batch, d_model]."""
    import torch

    names = [resid_hook_name(model, l) for l in range(model.cfg.n_layers + 1)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return torch.stack([cache[n][:, pos] for n in names])


def logit_lens_at(model, cache, pos: int):
    """Logit lens at one position: every layer's state through ln_final and the unembedding.
    Returns [n_layers + 1, batch, d_vocab]."""
    import torch

    L = model.cfg.n_layers
    states = torch.stack([cache[resid_hook_name(model, l)][:, pos] for l in range(L + 1)])
    return model.unembed(model.ln_final(states))


def lens_bridge_accuracy(model, queries: np.ndarray, pos: int = R1) -> list[float]:
    """Per layer: fraction of 2-hop queries whose bridge e2 is the logit lens's top-1 at ``pos``."""
    import torch

    tokens = torch.from_numpy(queries[:, :3])
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        top = logit_lens_at(model, cache, pos).argmax(-1)
    return [round(float(x), 3) for x in (top == torch.from_numpy(queries[:, 3])).float().mean(1)]


def patched_logits(model, target_tokens, source_tokens, layer: int, pos: int, src_pos: int):
    """Run ``target_tokens`` with the residual state at (``layer``, ``pos``) replaced by the
    source run's state at (``layer``, ``src_pos``). Returns the target's logits."""
    import torch

    name = resid_hook_name(model, layer)
    with torch.no_grad():
        _, cache = model.run_with_cache(source_tokens, names_filter=lambda n: n == name)

    def hook(resid, hook):
        resid = resid.clone()
        resid[:, pos] = cache[name][:, src_pos]
        return resid

    with torch.no_grad():
        return model.run_with_hooks(target_tokens, fwd_hooks=[(name, hook)])


def cross_query_pairs(world: World, queries: np.ndarray, seed: int = 0):
    """For each 2-hop target (e1, r1, r2), a source *atomic* query (e1', r1') -> e2' with
    e2' != e2, and the answer the patch should produce: tail(e2', r2) (which must differ from
    the target's own answer). Returns (target tokens, source tokens, expected) tensors."""
    import torch

    rng = np.random.default_rng(seed)
    src_rows = world.atomic[~world.is_ood]
    targets, sources, expected = [], [], []
    for q in queries:
        for _ in range(20):
            s = src_rows[rng.integers(len(src_rows))]
            new = world.tail.get((int(s[2]), int(q[2])))
            if s[2] != q[3] and new is not None and new != q[4]:
                targets.append(q[:3]); sources.append([s[0], s[1], world.cfg.pad]); expected.append(new)
                break
    as_t = lambda a: torch.tensor(np.array(a), dtype=torch.long)
    return as_t(targets), as_t(sources), as_t(expected)


def cross_query_patching(model, world: World, queries: np.ndarray, seed: int = 0) -> dict[str, list[float]]:
    """Ye et al.'s cross-query semantic patching. Success = the 2-hop output becomes
    tail(e2', r2). Per position of the target (e1, r1, r2) and per layer. The source state is
    taken at the same position for e1 and r1, and at the source's last position (r1') for r2."""
    target, source, expected = cross_query_pairs(world, queries, seed)
    out = {}
    for name, pos, src_pos in (("e1", E1, E1), ("r1", R1, R1), ("r2", R2, R1)):
        rates = []
        for layer in range(model.cfg.n_layers + 1):
            pred = patched_logits(model, target, source, layer, pos, src_pos)[:, R2].argmax(-1)
            rates.append(round(float((pred == expected).float().mean()), 3))
        out[name] = rates
    return out


def causal_tracing(model, world: World, queries: np.ndarray, seed: int = 0) -> np.ndarray:
    """Restore clean states into a run whose e1 is replaced by another entity.
    Returns [n_layers + 1, 3]: fraction of queries whose clean answer is restored when the
    clean state at (layer, position) is patched in (only queries the model gets right, whose
    corrupted answer differs)."""
    import torch

    from .training import predict

    rng = np.random.default_rng(seed)
    clean = torch.from_numpy(queries[:, :3].copy())
    answer = torch.from_numpy(queries[:, 4].copy())
    corrupt = clean.clone()
    corrupt[:, E1] = torch.from_numpy((queries[:, 0] + rng.integers(1, world.cfg.n_entities, len(queries)))
                                      % world.cfg.n_entities)
    pos2 = torch.full((len(clean),), R2)
    keep = (predict(model, clean, pos2) == answer) & (predict(model, corrupt, pos2) != answer)
    clean, corrupt, answer = clean[keep], corrupt[keep], answer[keep]
    grid = np.zeros((model.cfg.n_layers + 1, 3))
    for layer in range(model.cfg.n_layers + 1):
        for pos in range(3):
            pred = patched_logits(model, corrupt, clean, layer, pos, pos)[:, R2].argmax(-1)
            grid[layer, pos] = round(float((pred == answer).float().mean()), 3)
    return grid


def cosine_lens(model, world: World, layer: int, n_max: int = 2000) -> dict[str, float]:
    """Cohesion of r1-position states grouped by bridge entity. For ID first hops: mean cosine to
    the centroid of other ID states with the same bridge (``id_same``) vs. other bridges
    (``id_other``); for OOD first hops, mean cosine to the ID centroid of their bridge
    (``ood_same``) and of other bridges (``ood_other``)."""
    import torch

    rows_id = world.atomic[~world.is_ood][:n_max]
    rows_ood = world.atomic[world.is_ood]
    def states(rows):
        toks = torch.tensor(np.c_[rows[:, :2], np.full(len(rows), world.cfg.pad)], dtype=torch.long)
        return torch.nn.functional.normalize(residual_states(model, toks, R1)[layer], dim=-1)
    s_id, s_ood = states(rows_id), states(rows_ood)
    E = world.cfg.n_entities
    b_id = torch.from_numpy(rows_id[:, 2])
    sums = torch.zeros(E, s_id.shape[1]).index_add_(0, b_id, s_id)
    counts = torch.bincount(b_id, minlength=E).float()

    def same_other(s, b, exclude_self):
        tot = sums[b] - (s if exclude_self else 0)
        n = counts[b] - (1 if exclude_self else 0)
        ok = n > 0
        same = torch.nn.functional.cosine_similarity(s[ok], tot[ok], dim=-1).mean()
        other_c = torch.nn.functional.normalize(sums[counts > 0], dim=-1)
        other = (s @ other_c.T).mean()
        return round(float(same), 3), round(float(other), 3)

    id_same, id_other = same_other(s_id, b_id, True)
    ood_same, ood_other = same_other(s_ood, torch.from_numpy(rows_ood[:, 2]), False)
    return {"id_same": id_same, "id_other": id_other, "ood_same": ood_same, "ood_other": ood_other}


def probe_bridge(model, world: World, layer: int, eval_queries: dict[str, np.ndarray], steps: int = 300,
                 seed: int = 0) -> dict[str, float]:
    """Linear probe for the bridge e2 from the r1-position state at ``layer``. Trained on the
    atomic triples whose (e1, r1) is not the first hop of any evaluation query; returns the
    probe's accuracy on each evaluation set (queries [n, 5])."""
    import torch

    from .world import World as _  # noqa: F401  (type reference only)

    held = {(int(q[0]), int(q[1])) for qs in eval_queries.values() for q in qs}
    rows = np.array([r for r in world.atomic if (int(r[0]), int(r[1])) not in held])
    def states(tok3):
        return residual_states(model, torch.tensor(tok3, dtype=torch.long), R1)[layer]
    x = states(np.c_[rows[:, :2], np.full(len(rows), world.cfg.pad)])
    y = torch.from_numpy(rows[:, 2])
    torch.manual_seed(seed)
    probe = torch.nn.Linear(x.shape[1], world.cfg.n_entities)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    with torch.enable_grad():
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(probe((x - mu) / sd), y)
            opt.zero_grad(); loss.backward(); opt.step()
    out = {"train": round(float((probe((x - mu) / sd).argmax(-1) == y).float().mean()), 3)}
    with torch.no_grad():
        for name, q in eval_queries.items():
            if len(q) == 0:
                out[name] = float("nan"); continue
            pred = probe((states(q[:, :3]) - mu) / sd).argmax(-1)
            out[name] = round(float((pred == torch.from_numpy(q[:, 3])).float().mean()), 3)
    return out


def edit_metrics(atomic_pred, new_bridge, two_hop_pred, new_answer) -> dict[str, float]:
    """MQuAKE-style rates over a batch of edits (all tensors [n_edits]): ``edit`` = the edited
    fact now gives the new bridge; ``multi_hop`` = the 2-hop answer follows the edit, i.e. is
    tail(new bridge, r2)."""
    return {"edit": float((atomic_pred == new_bridge).float().mean()),
            "multi_hop": float((two_hop_pred == new_answer).float().mean())}


def edit_first_hop(model, world: World, query: np.ndarray, new_bridge: int, steps: int = 30, lr: float = 1e-2):
    """Fine-tune a copy of ``model`` on the single new atomic fact (e1, r1) -> new_bridge
    (all parameters, Adam) until it is predicted, at most ``steps`` steps. Returns the copy."""
    import copy

    import torch

    from .training import answer_only_loss

    edited = copy.deepcopy(model)
    tok = torch.tensor([[int(query[0]), int(query[1]), world.cfg.pad]])
    ans, pos = torch.tensor([new_bridge]), torch.tensor([R1])
    opt = torch.optim.Adam(edited.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            logits = edited(tok)
            if int(logits[0, R1].argmax()) == new_bridge:
                break
            loss = answer_only_loss(logits, ans, pos)
            opt.zero_grad(); loss.backward(); opt.step()
    return edited.eval()


def run_edits(model, world: World, queries: np.ndarray, n_edits: int = 50, seed: int = 0, **kw) -> dict:
    """Edit the first hop of ``n_edits`` 2-hop queries the model answers correctly; returns the
    edit-success and multi-hop rates (``edit_metrics``) plus ``unchanged``: the 2-hop answer is
    still the old one."""
    import torch

    from .training import predict

    rng = np.random.default_rng(seed)
    toks = torch.from_numpy(queries[:, :3].copy())
    ok = (predict(model, toks, torch.full((len(toks),), R2)) == torch.from_numpy(queries[:, 4])).numpy()
    chosen = queries[ok][rng.permutation(int(ok.sum()))[:n_edits]]
    atomic_pred, new_bridge, two_hop_pred, new_answer, old_answer = [], [], [], [], []
    for q in chosen:
        while True:
            b = int(rng.integers(world.cfg.n_entities))
            na = world.tail.get((b, int(q[2])))
            if b != q[3] and na is not None and na != q[4]:
                break
        edited = edit_first_hop(model, world, q, b, **kw)
        with torch.no_grad():
            logits = edited(torch.tensor([[int(q[0]), int(q[1]), world.cfg.pad], [int(q[0]), int(q[1]), int(q[2])]]))
        atomic_pred.append(int(logits[0, R1].argmax())); two_hop_pred.append(int(logits[1, R2].argmax()))
        new_bridge.append(b); new_answer.append(na); old_answer.append(int(q[4]))
    t = lambda a: torch.tensor(a)
    out = edit_metrics(t(atomic_pred), t(new_bridge), t(two_hop_pred), t(new_answer))
    out["unchanged"] = float((t(two_hop_pred) == t(old_answer)).float().mean())
    out["n_edits"] = len(chosen)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
