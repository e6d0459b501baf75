"""Units to interpret: an SAE's latents, and the baselines they must beat at the same firing
density — MLP neurons, top-k-sparsified MLP neurons, random directions in the residual stream,
and a randomly initialised TopK encoder.

Every unit is stored the same way: a sparse ``[n_tokens, n_units]`` matrix of its activation
where it *fires* (value > 0). A dense unit (a neuron, a direction) fires where it exceeds a
threshold chosen on the train split so that its firing density equals that of an SAE latent;
its stored activation is the excess over the threshold (a ReLU at the threshold).
"""
from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class Units:
    name: str
    acts: torch.Tensor  # sparse COO [N, L] float, coalesced; stored entries are > 0

    @property
    def n_units(self) -> int:
        return self.acts.shape[1]

    def dense(self, rows=None, cols=None) -> torch.Tensor:
        """Dense activations [rows, cols] (all rows / all units by default)."""
        a = self.acts
        if cols is not None:
            a = a.index_select(1, torch.as_tensor(cols, dtype=torch.long))
        if rows is not None:
            a = a.index_select(0, torch.as_tensor(rows, dtype=torch.long))
        return a.to_dense()

    def fires(self, rows) -> torch.Tensor:
        """Bool [len(rows), L]: where each unit fires (no dense float matrix on the way)."""
        a = self.acts.index_select(0, torch.as_tensor(rows, dtype=torch.long)).coalesce()
        out = torch.zeros(a.shape, dtype=torch.bool)
        out[a.indices()[0], a.indices()[1]] = True
        return out

    def column(self, unit: int) -> torch.Tensor:
        """Dense activations of one unit over all tokens: [N]."""
        return self.dense(cols=[unit])[:, 0]

    def density(self, rows=None) -> torch.Tensor:
        """Fraction of tokens (of ``rows``) on which each unit fires: [L]."""
        a = self.acts if rows is None else self.acts.index_select(0, torch.as_tensor(rows, dtype=torch.long)).coalesce()
        counts = torch.zeros(self.n_units).index_add_(0, a.indices()[1], torch.ones(a.indices().shape[1]))
        return counts / a.shape[0]


def _sparse(values: torch.Tensor, name: str, offset=None, chunk: int = 2048) -> Units:
    """Units firing where ``values - offset`` > 0, stored as that excess (row chunks bound the memory)."""
    parts = []
    for i in range(0, len(values), chunk):
        v = values[i:i + chunk] if offset is None else values[i:i + chunk] - offset
        parts.append(v.clamp(min=0).to_sparse())
    return Units(name, torch.cat(parts).coalesce())


def sae_units(sae, resid: torch.Tensor, name: str = "SAE latents", chunk: int = 256) -> Units:
    """The latents of an sae-lens SAE on activations ``resid`` [N, d_in]."""
    parts = []
    with torch.no_grad():
        for i in range(0, len(resid), chunk):
            parts.append(sae.encode(resid[i:i + chunk].to(sae.W_enc.device)).cpu().to_sparse())
    return Units(name, torch.cat(parts).coalesce())


def matched_thresholds(values: torch.Tensor, densities: torch.Tensor, train: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Per column, the threshold above which a fraction ``densities[j]`` of the train rows lie."""
    n_train = int(train.sum())
    k = (densities * n_train).round().long().clamp(1, n_train - 1)
    return torch.cat([values[:, i:i + chunk][train].sort(dim=0, descending=True).values.gather(0, k[None, i:i + chunk])[0]
                      for i in range(0, values.shape[1], chunk)])


def thresholded_units(values: torch.Tensor, densities: torch.Tensor, train, name: str) -> Units:
    """Dense unit values fired at thresholds that match ``densities`` on the train split."""
    train = torch.as_tensor(train)
    return _sparse(values, name, offset=matched_thresholds(values, densities, train))


def sae_densities(units: Units, n: int, train, generator: torch.Generator, min_density: float = 1e-4) -> torch.Tensor:
    """``n`` firing densities drawn (seeded) from the live latents of ``units`` on the train split."""
    d = units.density(torch.nonzero(torch.as_tensor(train))[:, 0])
    d = d[d >= min_density]
    return d[torch.randint(len(d), (n,), generator=generator)]


def topk_units(values: torch.Tensor, k: int, name: str) -> Units:
    """Keep the ``k`` largest (positive) values of each row: a TopK code of dense units."""
    top = values.topk(k, dim=-1)
    rows = torch.arange(len(values)).repeat_interleave(k)
    acts = torch.sparse_coo_tensor(torch.stack([rows, top.indices.flatten()]), top.values.flatten(), values.shape,
                                   check_invariants=False).coalesce()
    keep = acts.values() > 0
    return Units(name, torch.sparse_coo_tensor(acts.indices()[:, keep], acts.values()[keep], values.shape,
                                               check_invariants=False).coalesce())


def random_directions(d_model: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random unit vectors [n, d_model]."""
    r = torch.randn(n, d_model, generator=generator)
    return r / r.norm(dim=-1, keepdim=True)


def direction_units(resid: torch.Tensor, directions: torch.Tensor, densities: torch.Tensor, train, name: str,
                    chunk: int = 2048) -> Units:
    """Projections of the centred residual stream on ``directions`` [L, d_model], fired at thresholds
    that match ``densities`` on the train split (computed chunk by chunk: no dense [N, L] matrix)."""
    train = torch.as_tensor(train)
    centred = resid - resid[train].mean(0)
    everything = torch.ones(int(train.sum()), dtype=torch.bool)
    thresholds = torch.cat([matched_thresholds(centred[train] @ directions[i:i + 128].T, densities[i:i + 128], everything)
                            for i in range(0, len(directions), 128)])
    parts = [_sparse(centred[i:i + chunk] @ directions.T, name, thresholds).acts for i in range(0, len(resid), chunk)]
    return Units(name, torch.cat(parts).coalesce())


def random_encoder_units(resid: torch.Tensor, d_sae: int, k: int, generator: torch.Generator,
                         chunk: int = 2048) -> Units:
    """A TopK SAE encoder with random unit encoder directions (never trained): TopK(ReLU((x − mean) W))."""
    W, mean = random_directions(resid.shape[1], d_sae, generator).T, resid.mean(0)
    parts = [topk_units((resid[i:i + chunk] - mean) @ W, k, "random encoder").acts for i in range(0, len(resid), chunk)]
    return Units("random encoder", torch.cat(parts).coalesce())


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    seed: int = 0
    n_directions: int = 1024


def baselines(data, sae_latents: Units, k: int, config: BaselineConfig = BaselineConfig()) -> dict:
    """The four baselines of ``sae_latents`` on the same tokens, at the same firing density:
    MLP neurons and random residual directions thresholded at densities drawn from the SAE's
    latents; top-k neurons with the SAE's L0 scaled to the neuron count; a random TopK encoder
    with the SAE's width and k."""
    g = torch.Generator().manual_seed(config.seed)
    d_mlp, d_sae = data.mlp.shape[1], sae_latents.n_units
    train = torch.from_numpy(data.train)
    out = {
        "MLP neurons": thresholded_units(data.mlp, sae_densities(sae_latents, d_mlp, train, g), train, "MLP neurons"),
        "top-k neurons": topk_units(data.mlp, max(1, round(k * d_mlp / d_sae)), "top-k neurons"),
        "random directions": direction_units(data.resid, random_directions(data.resid.shape[1], config.n_directions, g),
                                             sae_densities(sae_latents, config.n_directions, train, g), train,
                                             "random directions"),
        "random encoder": random_encoder_units(data.resid, d_sae, k, g),
    }
    return out
