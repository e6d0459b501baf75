"""The controlled knowledge world of Wang et al. (2024) and Ye et al. (2025).

Entities and relations are single tokens. Every entity has ``relations_per_entity`` outgoing
relations with random tails, giving atomic triples ``(e1, r1) -> e2``. Atomic triples are split
ID (95 %) / OOD (5 %). A 2-hop query ``(e1, r1, r2) -> e3`` chains ``(e1, r1) -> e2`` and
``(e2, r2) -> e3``; its split (II, IO, OI, OO) names the origin of the first and second hop.
Training = all atomic triples + ``phi * |ID atomic|`` sampled II queries; held-out II = ID test.

Token layout: entities ``0 .. E-1``, relations ``E .. E+R-1``, then one PAD token. An atomic query
is ``[e1, r1, PAD]`` answered at position 1; a 2-hop query is ``[e1, r1, r2]`` answered at 2.
"""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np

SPLITS = ("II", "IO", "OI", "OO")
E1, R1, R2 = 0, 1, 2  # positions in a query


def plain_numbers(cfg) -> None:
    """Make a config dataclass's numbers plain Python numbers: numpy integers (a seed from
    ``np.arange``) are accepted where an int is expected, an int where a float is; anything else
    in an int field is an error that names the field."""
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if isinstance(value, np.generic):
            value = value.item()
        if field.type == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{field.name} must be an int, got {value!r}")
            value = int(value)
        elif field.type == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{field.name} must be a number, got {value!r}")
            value = float(value)
        object.__setattr__(cfg, field.name, value)


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    n_entities: int = 200
    n_relations: int = 20
    relations_per_entity: int = 20
    ood_fraction: float = 0.05
    phi: float = 12.0               # |II training queries| / |ID atomic triples|
    n_test: int = 1000              # queries per test split (at most what exists)
    no_id_atomic: bool = False      # Ye et al. ablation: train without the ID atomic triples
    blocked_second_hop: float = 0.0  # fraction of ID triples never used as a training second hop
    seed: int = 0

    def __post_init__(self):
        plain_numbers(self)
        if self.n_entities < 2 or self.n_relations < 1:
            raise ValueError(f"need n_entities >= 2 and n_relations >= 1, got {self.n_entities}, {self.n_relations}")
        if not 1 <= self.relations_per_entity <= self.n_relations:
            raise ValueError(f"relations_per_entity must be in 1..n_relations={self.n_relations}, "
                             f"got {self.relations_per_entity}")
        if not 0 < self.ood_fraction < 1:
            raise ValueError(f"ood_fraction must be in (0, 1), got {self.ood_fraction}")
        if self.phi < 0:
            raise ValueError(f"phi must be >= 0, got {self.phi}")
        if not 0 <= self.blocked_second_hop < 1:
            raise ValueError(f"blocked_second_hop must be in [0, 1), got {self.blocked_second_hop}")

    @property
    def d_vocab(self) -> int:
        return self.n_entities + self.n_relations + 1

    @property
    def pad(self) -> int:
        return self.n_entities + self.n_relations


def build_splits(atomic, is_ood):
    """All 2-hop queries of a knowledge graph, by the origin of their two hops.

    ``atomic``: int array [N, 3] of (head, relation, tail); ``is_ood``: bool [N].
    Returns {"II", "IO", "OI", "OO"} -> int array [n, 5] of (e1, r1, r2, e2, e3), sorted by
    (e1, r1, r2). The first letter is the first hop's origin (I = ID, O = OOD)."""
    by_head = {}
    for j, h in enumerate(atomic[:, 0]):
        by_head.setdefault(int(h), []).append(j)
    rows = {s: [] for s in SPLITS}
    for i, (e1, r1, e2) in enumerate(atomic):
        for j in by_head.get(int(e2), []):
            split = ("O" if is_ood[i] else "I") + ("O" if is_ood[j] else "I")
            rows[split].append((e1, r1, atomic[j, 1], e2, atomic[j, 2]))
    out = {}
    for s, r in rows.items():
        a = np.array(r, dtype=np.int64).reshape(-1, 5)
        out[s] = a[np.lexsort((a[:, 2], a[:, 1], a[:, 0]))]  # sorted by (e1, r1, r2)
    return out


class World:
    """Knowledge graph, splits and tokenised train/test sets for one :class:`WorldConfig`."""

    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        E, R, k = cfg.n_entities, cfg.n_relations, cfg.relations_per_entity
        heads = np.repeat(np.arange(E), k)
        rels = np.concatenate([rng.choice(R, size=k, replace=False) for _ in range(E)]) + E
        tails = rng.integers(0, E, size=E * k)
        self.atomic = np.stack([heads, rels, tails], 1)
        self.is_ood = np.zeros(len(self.atomic), bool)
        self.is_ood[rng.choice(len(self.atomic), size=max(1, round(cfg.ood_fraction * len(self.atomic))),
                               replace=False)] = True
        self.tail = {(int(h), int(r)): int(t) for h, r, t in self.atomic}
        self.all_queries = build_splits(self.atomic, self.is_ood)

        ii = self.all_queries["II"][rng.permutation(len(self.all_queries["II"]))]
        n_id = int((~self.is_ood).sum())
        n_train = min(int(round(cfg.phi * n_id)), len(ii) - min(cfg.n_test, len(ii) // 10))
        self.blocked_pairs: set[tuple[int, int]] = set()  # (e2, r2) never a training second hop
        if cfg.blocked_second_hop > 0:
            id_rows = np.flatnonzero(~self.is_ood)
            chosen = rng.choice(id_rows, size=int(round(cfg.blocked_second_hop * len(id_rows))), replace=False)
            self.blocked_pairs = {(int(h), int(r)) for h, r, _ in self.atomic[chosen]}
        blocked = self.second_hop_blocked(ii)
        self.train_2hop = ii[~blocked][:n_train]
        used = {tuple(q[:3]) for q in self.train_2hop}
        held_out = ii[np.array([tuple(q[:3]) not in used for q in ii], bool)]
        held_blocked = self.second_hop_blocked(held_out)
        self.test = {"ID": held_out[~held_blocked][: cfg.n_test]}
        if cfg.blocked_second_hop > 0:
            self.test["ID_blocked"] = held_out[held_blocked][: cfg.n_test]
        for s in SPLITS[1:]:
            q = self.all_queries[s]
            self.test[s] = q[rng.permutation(len(q))[: cfg.n_test]]
        atomic_train = self.atomic[self.is_ood] if cfg.no_id_atomic else self.atomic
        self.train_atomic = atomic_train
        self.train_tokens, self.train_answers, self.train_pos = self.encode(atomic_train, self.train_2hop)

    def second_hop_blocked(self, queries: np.ndarray) -> np.ndarray:
        """Bool mask: the query's second hop (e2, r2) is a blocked ID triple."""
        return np.array([(int(q[3]), int(q[2])) in self.blocked_pairs for q in queries], bool).reshape(-1)

    def encode(self, atomic: np.ndarray, two_hop: np.ndarray):
        """Token tensors [n, 3], answer ids [n] and answer positions [n] (atomic first)."""
        import torch

        pad = np.full((len(atomic), 1), self.cfg.pad)
        toks = np.concatenate([np.concatenate([atomic[:, :2], pad], 1), two_hop[:, :3]]).astype(np.int64)
        ans = np.concatenate([atomic[:, 2], two_hop[:, 4]]).astype(np.int64)
        pos = np.concatenate([np.full(len(atomic), R1), np.full(len(two_hop), R2)]).astype(np.int64)
        return torch.from_numpy(toks), torch.from_numpy(ans), torch.from_numpy(pos)

    def summary(self) -> dict:
        c = self.cfg
        return {"entities": c.n_entities, "relations": c.n_relations, "atomic": len(self.atomic),
                "ID atomic": int((~self.is_ood).sum()), "OOD atomic": int(self.is_ood.sum()),
                "train atomic": len(self.train_atomic), "train 2-hop (II)": len(self.train_2hop),
                **{f"test {k}": len(v) for k, v in self.test.items()}}
