"""Activation patching on the residual stream: the patch itself (exercise), Ye et al.'s
cross-query semantic patching and causal tracing."""
from __future__ import annotations

import numpy as np

from .lens import resid_hook_name
from .measures import predict
from .world import E1, R1, R2, World


def patched_logits(model, target_tokens, source_tokens, layer, pos, src_pos):
    """Run ``target_tokens`` with the residual state at (``layer``, ``pos``) replaced by the
    source run's state at (``layer``, ``src_pos``). Returns the target's logits."""
    name = resid_hook_name(model, layer)
    _, cache = model.run_with_cache(source_tokens, names_filter=lambda n: n == name)

    def hook(resid, hook):
        resid = resid.clone()
        resid[:, pos] = cache[name][:, src_pos]
        return resid

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
                targets.append(q[:3])
                sources.append([s[0], s[1], world.cfg.pad])
                expected.append(new)
                break
    as_t = lambda a: torch.tensor(np.array(a), dtype=torch.long)
    return as_t(targets), as_t(sources), as_t(expected)


def cross_query_patching(model, world: World, queries: np.ndarray, seed: int = 0,
                         patch=patched_logits) -> dict[str, list[float]]:
    """Ye et al.'s cross-query semantic patching with ``patch`` (``patched_logits``). Success =
    the 2-hop output becomes tail(e2', r2). Per position of the target (e1, r1, r2) and per layer.
    The source state is taken at the same position for e1 and r1, and at the source's last
    position (r1') for r2."""
    import torch

    target, source, expected = cross_query_pairs(world, queries, seed)
    out = {}
    with torch.inference_mode():
        for name, pos, src_pos in (("e1", E1, E1), ("r1", R1, R1), ("r2", R2, R1)):
            out[name] = [round(float((patch(model, target, source, layer, pos, src_pos)[:, R2].argmax(-1) == expected)
                                     .float().mean()), 3) for layer in range(model.cfg.n_layers + 1)]
    return out


def causal_tracing(model, world: World, queries: np.ndarray, seed: int = 0, patch=patched_logits) -> np.ndarray:
    """Restore clean states into a run whose e1 is replaced by another entity.
    Returns [n_layers + 1, 3]: fraction of queries whose clean answer is restored when the
    clean state at (layer, position) is patched in (only queries the model gets right, whose
    corrupted answer differs)."""
    import torch

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
    with torch.inference_mode():
        for layer in range(model.cfg.n_layers + 1):
            for pos in range(3):
                pred = patch(model, corrupt, clean, layer, pos, pos)[:, R2].argmax(-1)
                grid[layer, pos] = round(float((pred == answer).float().mean()), 3)
    return grid
