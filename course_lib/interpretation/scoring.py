"""Automatic interpretation against ground truth, vectorised over every unit and every predicate.

* **explain** (train split): each unit's explanation is the label predicate with the best F1
  against its firing (among predicates with enough support) — the whole vocabulary is scored at
  once from one sparse co-occurrence matrix;
* **top-example explainer**: what an explainer that only reads a unit's top activating examples
  would say — the predicate true on most of them (ties: the rarer one);
* **scorers** (held-out split): the explanation's F1; delphi's *detection* balanced accuracy
  (Paulo et al. 2024) with activating examples weighted equally across activation deciles
  (the exact expectation of sampling the same number from each decile); delphi's *fuzzing*, here
  the same with the non-activating tokens taken from the documents where the unit fires (is it
  the marked token, or another one of the same text?); Bills et al.'s
  (2023) *simulation* correlation (a simulator that predicts the unit's mean activation where the
  explanation holds and elsewhere; Pearson correlation is blind to that affine map, so it is the
  correlation of the explanation's indicator with the true activation).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .units import Units


# ----------------------------------------------------------------------------- exercise references
def precision_recall_f1(fires, labels):
    """``fires`` [N, L] bool (unit l fires on token n), ``labels`` [N, P] bool (predicate p holds):
    precision, recall and F1 of every unit against every predicate, each [L, P]; 0 where undefined."""
    both = fires.float().T @ labels.float()
    precision = both / fires.sum(0).float()[:, None].clamp(min=1)
    recall = both / labels.sum(0).float()[None, :].clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return precision, recall, f1


def explain(f1, support, min_support):
    """The explainer: for each unit (row of ``f1`` [L, P], measured on the train split) the index of
    the best predicate among those holding on at least ``min_support`` train tokens (``support``
    [P]), and that F1: ``(best [L] long, best_f1 [L] float)``."""
    eligible = support >= min_support
    masked = torch.where(eligible[None, :], f1, torch.full_like(f1, -1.0))
    best_f1, best = masked.max(dim=1)
    return best, best_f1.clamp(min=0)


def balanced_accuracy(pred, truth, weight):
    """Detection score per unit: (TPR + TNR) / 2 of ``pred`` [N, L] bool (the explanation says the
    unit fires) against ``truth`` [N, L] bool (it does), each token counted with ``weight`` [N, L]
    (an empty class counts 0, never NaN): a [L] float tensor."""
    w, pred, truth = weight.float(), pred.bool(), truth.bool()
    tpr = (w * (pred & truth)).sum(0) / (w * truth).sum(0).clamp(min=1e-12)
    tnr = (w * (~pred & ~truth)).sum(0) / (w * ~truth).sum(0).clamp(min=1e-12)
    return (tpr + tnr) / 2


def decile_weights(acts: torch.Tensor, n_bins: int = 10) -> torch.Tensor:
    """[N, L] weights for :func:`balanced_accuracy`: 1 on the tokens where a unit is silent; on its
    firing tokens, 1 / (tokens in its activation decile), so that each decile (strongest tenth,
    next tenth, …) has the same total say — the expectation of delphi's sampling of the same number
    of examples from every decile."""
    fires = acts > 0
    n_fire = fires.sum(0).clamp(min=1)
    rank = (-acts).argsort(dim=0, stable=True).argsort(dim=0, stable=True)  # 0 = the strongest token
    decile = (rank * n_bins // n_fire).clamp(max=n_bins - 1)
    per_bin = torch.zeros(n_bins, acts.shape[1]).scatter_add_(0, torch.where(fires, decile, 0), fires.float())
    return torch.where(fires, 1 / per_bin.gather(0, decile).clamp(min=1), torch.ones_like(acts))


# ----------------------------------------------------------------------------- the pipeline
# The same measures as the exercises, computed from the sparse firing entries (no dense [N, L] matrix).
def _entries(units: Units, rows: torch.Tensor):
    """(token, unit, value) of every firing entry on ``rows`` (tokens renumbered 0..len(rows)-1)."""
    acts = units.acts.index_select(0, rows).coalesce()
    return acts.indices()[0], acts.indices()[1], acts.values()


def cooccurrence(tok, unit, n_units: int, labels: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """[L, P]: Σ over the entries (tok, unit) of the predicate row ``labels[tok]`` (sparse × dense)."""
    ones = torch.sparse_coo_tensor(torch.stack([unit, tok]), torch.ones(len(tok)), (n_units, len(labels)),
                                   check_invariants=False).coalesce()
    return torch.cat([torch.sparse.mm(ones, labels[:, i:i + chunk].float()) for i in range(0, labels.shape[1], chunk)],
                     dim=1)


def f1_from_counts(both, n_fires, n_labels):
    """F1 = 2 |fires ∧ label| / (|fires| + |label|) (0 where both are empty)."""
    return 2 * both / (n_fires.float() + n_labels.float()).clamp(min=1)


def _per_unit(unit, values, n_units: int) -> torch.Tensor:
    return torch.zeros(n_units, dtype=torch.float64).index_add_(0, unit, values.double())


def _strongest_first(unit, val):
    """Order of the entries by unit, strongest first; and each entry's rank within its unit."""
    order = torch.from_numpy(np.lexsort((-val.numpy(), unit.numpy())))
    unit = unit[order]
    rank = torch.arange(len(unit)) - torch.searchsorted(unit, unit)
    return order, rank


@dataclasses.dataclass
class UnitScores:
    """Per-unit results (every array [L]; ``alive`` marks the units scored)."""

    name: str
    alive: np.ndarray  # fires on ≥ min_fires train tokens
    best: np.ndarray  # index of the explanation (predicate) chosen on the train split
    train_f1: np.ndarray
    test_f1: np.ndarray  # the explanation's F1 on the held-out split
    detection: np.ndarray  # decile-weighted detection balanced accuracy, held out
    fuzzing: np.ndarray  # the same, with the silent tokens taken from the documents where the unit fires
    simulation: np.ndarray  # simulation correlation, held out
    top_best: np.ndarray  # the top-example explainer's choice
    top_test_f1: np.ndarray
    f1_train: torch.Tensor  # [L, P] every unit against every predicate (train split)

    def summary(self) -> dict:
        a = self.alive
        return {"units": int(a.size), "scored": int(a.sum()), "median F1": float(np.median(self.test_f1[a])),
                "F1 > 0.5": float((self.test_f1[a] > 0.5).mean()),
                "median detection": float(np.median(self.detection[a])),
                "median fuzzing": float(np.median(self.fuzzing[a])),
                "median simulation": float(np.median(self.simulation[a])),
                "top examples agree": float((self.top_best[a] == self.best[a]).mean())}


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    min_support: int = 5  # a predicate must hold on this many train tokens to be an explanation
    min_fires: int = 10  # a unit must fire on this many train tokens to be scored
    n_top: int = 20  # examples the top-example explainer reads
    n_bins: int = 10  # activation deciles of the detection scorer


def score_units(units: Units, preds, data, config: ScoreConfig = ScoreConfig()) -> UnitScores:
    """Explain every unit on the train split and score the explanations on the held-out split
    (``data``: the :class:`~.labels.LabelledTokens`, for its ``train`` split and ``doc`` ids)."""
    L, train = units.n_units, np.asarray(data.train)
    train_rows = torch.from_numpy(np.nonzero(train)[0])
    test_rows = torch.from_numpy(np.nonzero(~np.asarray(train))[0])
    train_labels, test_labels = preds.matrix[train_rows], preds.matrix[test_rows]
    support = train_labels.sum(0)

    # explain on the train split
    tok, unit, val = _entries(units, train_rows)
    n_fires = _per_unit(unit, torch.ones(len(unit)), L)
    f1_train = f1_from_counts(cooccurrence(tok, unit, L, train_labels), n_fires[:, None].float(), support[None, :])
    best, best_f1 = explain(f1_train, support, config.min_support)
    order, rank = _strongest_first(unit, val)
    top = rank < config.n_top
    top_counts = cooccurrence(tok[order][top], unit[order][top], L, train_labels)
    top_counts.sub_(support[None, :] / (support.max() + 1))  # ties: the rarer predicate
    top_best = top_counts.masked_fill_(support[None, :] < config.min_support, -1).argmax(1)
    del top_counts

    # score on the held-out split
    tok, unit, val = _entries(units, test_rows)
    n, n_test = len(test_rows), _per_unit(unit, torch.ones(len(unit)), L)
    test_support = test_labels.sum(0).double()
    scores = {}
    for name, choice in (("best", best), ("top", top_best)):
        hit = test_labels[tok, choice[unit]].double()  # the explanation holds at a firing token
        scores[name] = f1_from_counts(_per_unit(unit, hit, L), n_test, test_support[choice])
    hit = test_labels[tok, best[unit]].double()
    order, rank = _strongest_first(unit, val)
    inv = torch.empty_like(order)
    inv[order] = torch.arange(len(order))
    decile = (rank[inv] * config.n_bins // n_test[unit].long().clamp(min=1)).clamp(max=config.n_bins - 1)
    per_bin = torch.zeros(L * config.n_bins, dtype=torch.float64).index_add_(0, unit * config.n_bins + decile,
                                                                             torch.ones(len(unit), dtype=torch.float64))
    w = 1 / per_bin[unit * config.n_bins + decile]
    tpr = _per_unit(unit, w * hit, L) / _per_unit(unit, w, L).clamp(min=1e-12)
    n_pred = test_support[best]
    tnr = (n - n_test - (n_pred - _per_unit(unit, hit, L))) / (n - n_test).clamp(min=1)
    tnr_context = _silent_in_context(unit, tok, hit, best, torch.from_numpy(np.asarray(data.doc)[test_rows.numpy()]),
                                     test_labels, L)
    sum_a, sum_a2, sum_ap = _per_unit(unit, val, L), _per_unit(unit, val.double() ** 2, L), _per_unit(unit, val * hit, L)
    cov = sum_ap / n - (sum_a / n) * (n_pred / n)
    sd = ((sum_a2 / n - (sum_a / n) ** 2).clamp(min=0) * (n_pred / n) * (1 - n_pred / n)).sqrt()
    return UnitScores(units.name, (n_fires >= config.min_fires).numpy(), best.numpy(), best_f1.numpy(),
                      scores["best"].float().numpy(), ((tpr + tnr) / 2).float().numpy(),
                      ((tpr + tnr_context) / 2).float().numpy(), (cov / sd.clamp(min=1e-12)).float().numpy(),
                      top_best.numpy(), scores["top"].float().numpy(), f1_train)


def _silent_in_context(unit, tok, hit, best, doc, labels, L: int, chunk: int = 256) -> torch.Tensor:
    """Fuzzing's true-negative rate: among the silent tokens of the documents where a unit fires,
    the fraction where its explanation does not hold either."""
    n_docs = int(doc.max()) + 1
    ones = torch.ones(len(doc), dtype=torch.float64)
    doc_len = torch.zeros(n_docs, dtype=torch.float64).index_add_(0, doc, ones)
    doc_pred = torch.cat([torch.zeros(n_docs, part.shape[1]).index_add_(0, doc, part.float())
                          for part in labels.split(chunk, dim=1)], dim=1)  # [docs, P]: where each predicate holds
    pairs, inverse = torch.unique(unit * n_docs + doc[tok], return_inverse=True)  # (unit, document) with firing
    pair_unit, pair_doc = pairs // n_docs, pairs % n_docs
    fired = torch.zeros(len(pairs), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(hit))
    fired_hit = torch.zeros(len(pairs), dtype=torch.float64).index_add_(0, inverse, hit)
    silent = doc_len[pair_doc] - fired
    silent_hit = doc_pred[pair_doc, best[pair_unit]].double() - fired_hit
    return _per_unit(pair_unit, silent - silent_hit, L) / _per_unit(pair_unit, silent, L).clamp(min=1)
