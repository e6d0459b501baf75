"""Scores against ground truth (SAEBench's and Karvonen et al.'s definitions).

* **coverage** (Karvonen et al. 2024): for each label value, the F1 of the latent that matches it
  best — chosen on the train split, measured on the held-out split; a field's coverage is the mean
  over its values;
* **sparse probing** (Gao et al. 2024; SAEBench): for a binary label, keep the k latents with the
  largest difference of class means (train split), fit a logistic probe on them, report held-out
  accuracy on balanced classes; compared with a probe on the whole residual stream;
* **output features**: units whose best explanation is about the *next* token.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch


def best_latent_f1(scores, units, preds, train: np.ndarray, chunk: int = 128):
    """For every predicate, the unit with the best train F1 and that unit's held-out F1: ([P], [P])."""
    best = scores.f1_train.argmax(0)
    test = torch.from_numpy(np.nonzero(~np.asarray(train))[0])
    acts, labels = units.acts.index_select(0, test), preds.matrix[test]
    f1 = torch.zeros(len(best))
    for i in range(0, len(best), chunk):  # column chunks: no dense [N_test, P] matrix
        fires = acts.index_select(1, best[i:i + chunk]).to_dense() > 0
        both = (fires & labels[:, i:i + chunk]).sum(0).float()
        f1[i:i + chunk] = 2 * both / (fires.sum(0) + labels[:, i:i + chunk].sum(0)).clamp(min=1).float()
    return best, f1


def coverage(test_f1: torch.Tensor, preds, fields) -> dict:
    """Mean over each field's values of the best unit's held-out F1."""
    return {f: float(test_f1[preds.of_field(f)].mean()) for f in fields if preds.of_field(f)}


def output_share(scores, preds) -> float:
    """Share of the scored units whose best explanation (train F1) is about the next token."""
    is_next = np.array([f.startswith("next ") for f in preds.fields])[scores.best]
    return float(is_next[scores.alive].mean())


def concept_family(scores, units, preds, train: np.ndarray, concept: str, min_precision: float = 0.9) -> dict:
    """The scored units that fire (almost) only on ``concept`` (train precision ≥ ``min_precision``),
    each with its own best explanation: {unit: explanation}."""
    rows = torch.from_numpy(np.nonzero(train)[0])
    fires, label = units.fires(rows), preds.matrix[rows, preds.index(concept)]
    precision = (fires & label[:, None]).sum(0) / fires.sum(0).clamp(min=1)
    family = np.nonzero(scores.alive & (precision.numpy() >= min_precision))[0]
    return {int(u): preds.names[scores.best[u]] for u in family}


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    ks: tuple = (1, 5, 20)
    n_per_class: int = 1000  # balanced classes, per split (fewer if a class is smaller)
    l2: float = 1e-3
    max_iter: int = 100
    seed: int = 0
    decodable: float = 0.96  # a task is used if a residual probe reaches this in cross-validation on the train split


def logistic_probe(x_train, y_train, x_test, y_test, config: ProbeConfig = ProbeConfig()) -> float:
    """Held-out accuracy of an L2-regularised logistic regression (torch, L-BFGS) on standardised
    features."""
    mean, std = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    xs, xt = (x_train - mean) / std, (x_test - mean) / std
    w = torch.zeros(x_train.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=config.max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, y_train.float()) + config.l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((xt @ w + b > 0) == y_test.bool()).float().mean())


def _balanced(rows: np.ndarray, positive: np.ndarray, n: int, g: np.random.Generator) -> tuple:
    pos, neg = rows[positive[rows]], rows[~positive[rows]]
    n = min(n, len(pos), len(neg))
    chosen = np.concatenate([g.choice(pos, n, replace=False), g.choice(neg, n, replace=False)])
    return chosen, torch.from_numpy(np.r_[np.ones(n), np.zeros(n)])


def decodable_tasks(data, preds, candidates, config: ProbeConfig = ProbeConfig()) -> dict:
    """{task: accuracy} of a probe on the whole residual stream in 2-fold cross-validation *within the
    train split* (folds of whole documents) — the held-out split is not looked at."""
    g = np.random.default_rng(config.seed)
    train_rows = np.nonzero(data.train)[0]
    fold = (data.doc[train_rows] // 2) % 2 == 0
    out = {}
    for task in candidates:
        positive = preds.matrix[:, preds.index(task)].numpy()
        a, ya = _balanced(train_rows[fold], positive, config.n_per_class, g)
        b, yb = _balanced(train_rows[~fold], positive, config.n_per_class, g)
        out[task] = (logistic_probe(data.resid[a], ya, data.resid[b], yb, config)
                     + logistic_probe(data.resid[b], yb, data.resid[a], ya, config)) / 2
    return out


def sparse_probing(units, data, preds, tasks, config: ProbeConfig = ProbeConfig()) -> dict:
    """{task: {"k=1": acc, "k=5": acc, …, "residual": acc}} on balanced held-out classes."""
    g = np.random.default_rng(config.seed)
    train_rows, test_rows = np.nonzero(data.train)[0], np.nonzero(~data.train)[0]
    out = {}
    for task in tasks:
        positive = preds.matrix[:, preds.index(task)].numpy()
        tr, ytr = _balanced(train_rows, positive, config.n_per_class, g)
        te, yte = _balanced(test_rows, positive, config.n_per_class, g)
        acts_tr, acts_te = units.dense(rows=tr), units.dense(rows=te)
        gap = (acts_tr[ytr == 1].mean(0) - acts_tr[ytr == 0].mean(0)).abs()
        row = {}
        for k in config.ks:
            top = gap.topk(k).indices
            row[f"k={k}"] = logistic_probe(acts_tr[:, top], ytr, acts_te[:, top], yte, config)
        row["residual"] = logistic_probe(data.resid[tr], ytr, data.resid[te], yte, config)
        out[task] = row
    return out
