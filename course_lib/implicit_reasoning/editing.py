"""Knowledge editing: fine-tune one first-hop fact and ask whether the 2-hop answer follows."""
from __future__ import annotations

import numpy as np

from .measures import answered_correctly, edit_metrics
from .training import answer_only_loss
from .world import R1, R2, World


def edit_first_hop(model, world: World, query: np.ndarray, new_bridge: int, steps: int = 30, lr: float = 1e-2):
    """Fine-tune a copy of ``model`` on the single new atomic fact (e1, r1) -> new_bridge
    (all parameters, Adam) until it is predicted, at most ``steps`` steps. Returns the copy."""
    import copy

    import torch

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
            opt.zero_grad()
            loss.backward()
            opt.step()
    return edited.eval()


def run_edits(model, world: World, queries: np.ndarray, n_edits: int = 50, seed: int = 0, metrics=edit_metrics,
              **kw) -> dict:
    """Edit the first hop of ``n_edits`` 2-hop queries the model answers correctly; returns the
    edit-success and multi-hop rates (``metrics``: ``edit_metrics``) plus ``unchanged``: the 2-hop
    answer is still the old one."""
    import torch

    rng = np.random.default_rng(seed)
    ok = answered_correctly(model, queries)
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
        atomic_pred.append(int(logits[0, R1].argmax()))
        two_hop_pred.append(int(logits[1, R2].argmax()))
        new_bridge.append(b)
        new_answer.append(na)
        old_answer.append(int(q[4]))
    t = lambda a: torch.tensor(a)
    out = dict(metrics(t(atomic_pred), t(new_bridge), t(two_hop_pred), t(new_answer)))
    out["unchanged"] = float((t(two_hop_pred) == t(old_answer)).float().mean())
    out["n_edits"] = len(chosen)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
