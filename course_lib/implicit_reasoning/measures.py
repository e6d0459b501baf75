"""Measurements: answer accuracy (overall and per split), the first step at which a logged
accuracy passes a threshold, and the knowledge-editing rates."""
from __future__ import annotations

from .world import R2, World


def answer_accuracy(logits, answers, answer_pos):
    """Fraction of queries whose argmax at their answer position is the answer (a float)."""
    import torch

    rows = torch.arange(logits.shape[0])
    return float((logits[rows, answer_pos].argmax(-1) == answers).float().mean())


def predict(model, tokens, answer_pos, batch_size: int = 4096):
    """Greedy answer (argmax over the vocabulary) at each query's answer position."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(tokens), batch_size):
            logits = model(tokens[i:i + batch_size])
            rows = torch.arange(logits.shape[0])
            out.append(logits[rows, answer_pos[i:i + batch_size]].argmax(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(model, tokens, answers, answer_pos) -> float:
    """Accuracy of ``model`` on tokenised queries (NaN for an empty set)."""
    if len(tokens) == 0:
        return float("nan")
    return float((predict(model, tokens, answer_pos) == answers).float().mean())


def answered_correctly(model, queries):
    """Bool numpy mask: the model's 2-hop answer to each query (rows (e1, r1, r2, e2, e3)) is e3."""
    import torch

    tokens = torch.from_numpy(queries[:, :3].copy())
    pred = predict(model, tokens, torch.full((len(queries),), R2))
    return (pred == torch.from_numpy(queries[:, 4].copy())).numpy()


def eval_sets(world: World, n_train_eval: int, seed: int = 0) -> dict:
    """name -> (tokens, answers, answer positions): a fixed sample of the training set
    ("train") and every test split."""
    import torch

    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(world.train_tokens), generator=g)[:n_train_eval]
    empty = world.atomic[:0]
    sets = {"train": (world.train_tokens[idx], world.train_answers[idx], world.train_pos[idx])}
    for name, q in world.test.items():
        sets[name] = world.encode(empty, q)
    return sets


def evaluate(model, sets: dict) -> dict[str, float]:
    """Accuracy (rounded to 4 digits) on every evaluation set, in eval mode."""
    was = model.training
    model.eval()
    out = {name: round(accuracy(model, *s), 4) for name, s in sets.items()}
    model.train(was)
    return out


def first_step_at(log: dict, split: str, threshold: float) -> int | None:
    """First logged step at which ``split`` accuracy is >= ``threshold`` (a fraction in [0, 1];
    None if never)."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold is a fraction in [0, 1] (0.5 for 50 %), got {threshold!r}")
    if split not in log:
        raise KeyError(f"no split {split!r} in this log; it has {[k for k in log if k not in ('step', 'loss')]}")
    for step, acc in zip(log["step"], log[split]):
        if acc >= threshold:
            return step
    return None


def edit_metrics(atomic_pred, new_bridge, two_hop_pred, new_answer):
    """MQuAKE-style rates over a batch of edits (all tensors [n_edits]): ``edit`` = the edited
    fact now gives the new bridge; ``multi_hop`` = the 2-hop answer follows the edit, i.e. is
    tail(new bridge, r2)."""
    return {"edit": float((atomic_pred == new_bridge).float().mean()),
            "multi_hop": float((two_hop_pred == new_answer).float().mean())}
