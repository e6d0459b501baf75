"""Feature absorption (Chanin et al. 2024): when a child feature only ever fires together with its
parent, a sparse code saves a latent by letting the child's latent carry the parent's direction
too; the parent latent then goes silent exactly where a child is active.

* :func:`toy_absorption` — with known ground truth, from sae-lens's synthetic data
  (``FeatureDictionary`` + ``ActivationGenerator`` with a ``HierarchyNode``);
* :func:`world_absorption` — on the world SAE: a parent label (e.g. ``entity_type = state``), its
  children (``entity = Texas``, …) and the rate at which the parent latent is silent on a parent
  token while a child-specific latent fires there.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class ToyAbsorptionConfig:
    """Feature 0 is the parent, feature 1 its child (active only with it, on 40 % of the parent's
    inputs); features 2.. are independent. Orthogonal unit features in ``d_in`` dimensions."""

    n_features: int = 5
    d_in: int = 16
    p_parent: float = 0.3
    p_child: float = 0.4  # given the parent
    p_other: float = 0.15
    d_sae: int = 8
    l1_coefficient: float = 0.3
    steps: int = 1000
    batch_size: int = 512
    lr: float = 3e-3
    seed: int = 0
    n_eval: int = 20_000


def toy_absorption(config: ToyAbsorptionConfig = ToyAbsorptionConfig()) -> dict:
    """Train a ReLU + L1 SAE (sae-lens ``SAETrainer``) on the hierarchy and measure absorption."""
    from sae_lens.synthetic import (
        ActivationGenerator,
        FeatureDictionary,
        HierarchyNode,
        SyntheticActivationIterator,
        hierarchy_modifier,
    )

    from ..sae.library import toy_sae_config, train_saelens

    c = config
    torch.manual_seed(c.seed)
    features = FeatureDictionary(c.n_features, c.d_in, seed=c.seed)
    p = torch.tensor([c.p_parent, c.p_child] + [c.p_other] * (c.n_features - 2))
    hierarchy = hierarchy_modifier(HierarchyNode(0, [HierarchyNode(1)]))  # feature 1 only fires with feature 0
    generator = ActivationGenerator(c.n_features, p, modify_activations=hierarchy)
    sae = train_saelens(SyntheticActivationIterator(features, generator, c.batch_size),
                        toy_sae_config("standard", c.d_in, c.d_sae, l1_coefficient=c.l1_coefficient),
                        c.steps, c.batch_size, lr=c.lr, seed=c.seed, progress=False)
    with torch.no_grad():
        torch.manual_seed(c.seed + 1)
        f = generator(c.n_eval)
        z = sae.encode(features(f))
        true = features.feature_vectors / features.feature_vectors.norm(dim=1, keepdim=True)
        dec = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
        cos = true @ dec.T  # [features, latents]
    parent, child = int(cos[0].argmax()), int(cos[1].argmax())
    parent_only, with_child = (f[:, 0] > 0) & (f[:, 1] == 0), (f[:, 0] > 0) & (f[:, 1] > 0)
    return {"cosines": cos, "parent_latent": parent, "child_latent": child,
            "parent fires, parent only": float((z[parent_only, parent] > 0).float().mean()),
            "parent fires, child active": float((z[with_child, parent] > 0).float().mean()),
            "child fires, child active": float((z[with_child, child] > 0).float().mean()),
            "child latent · parent feature": float(cos[0, child]),
            "child latent · child feature": float(cos[1, child])}


def world_absorption(scores, preds, data, units, parent: str) -> dict:
    """Absorption of the label ``parent`` (e.g. ``"entity_type = state"``) on the held-out tokens.

    The parent latent is the unit with the best train F1 for ``parent``. A *child* predicate is a
    narrower one: it holds only where the parent does (on the train split) — one state
    (``entity = Texas``), or the parent in one context (``entity_type = state & relation =
    city_state``). A *child latent* is a scored unit whose explanation is a child predicate. A
    parent token is **absorbed** when the parent latent is silent there while a child latent fires.
    """
    j = preds.index(parent)
    parent_latent = int(scores.f1_train[:, j].argmax())
    train, test = torch.from_numpy(data.train), np.nonzero(~data.train)[0]
    labels = preds.matrix
    inside = (labels[train] & labels[train, j:j + 1]).sum(0) == labels[train].sum(0)
    inside[j] = False
    child_latents = torch.nonzero(torch.from_numpy(scores.alive) & inside[torch.from_numpy(scores.best)])[:, 0]
    pos_rows = test[labels[test, j].numpy()]
    dense = units.dense(rows=pos_rows) > 0
    parent_fires = dense[:, parent_latent].numpy()
    absorbed = ~parent_fires & dense[:, child_latents].any(1).numpy()
    entity = data.labels["entity"][pos_rows]
    per_child = {e: {"tokens": int((entity == e).sum()), "parent latent fires": float(parent_fires[entity == e].mean()),
                     "absorbed": float(absorbed[entity == e].mean())}
                 for e in sorted({e for e in entity if e is not None})}
    names = np.array(preds.names)
    return {"parent": parent, "parent_latent": parent_latent, "parent F1 (train)": float(scores.f1_train[parent_latent, j]),
            "tokens": len(pos_rows), "parent recall": float(parent_fires.mean()),
            "absorption rate": float(absorbed.mean()),
            "child latents": {int(l): str(names[scores.best[l]]) for l in child_latents},
            "per_child": per_child}
