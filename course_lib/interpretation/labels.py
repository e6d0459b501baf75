"""Labelled activations: held-out world text, its activations at a hook, and the grammar's
ground-truth label of every token (and of the token that follows it), as one flat table.

A *predicate* is a yes/no statement about a token — ``pos = NOUN``, ``topic = food``,
``next entity_type = state_capital``, ``pos = ADJ & sentiment = negative`` — and the predicate
matrix ``[n_tokens, n_predicates]`` (bool) is the vocabulary in which explanations are written.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

# Fields of the current token used as predicates (grammar.LABEL_FIELDS plus the token itself).
TOKEN_FIELDS = ("token", "entity", "entity_type", "relation", "pos", "number", "in_quote", "topic", "sentiment",
                "position")
NEXT_FIELDS = ("token", "entity_type", "pos")  # labels of the *next* token ("output" explanations)
CONJUNCTIONS = (("pos", "topic"), ("entity_type", "relation"), ("pos", "in_quote"), ("pos", "sentiment"))
SPECIAL_POS = ("BOS", "EOS", "PAD")


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """Which held-out text to read (seeds ≥ 1000 are never used to train the world LM) and where."""

    n_docs: int = 800
    seed: int = 2000
    layer: int = 2  # the residual stream entering block ``layer`` (the shipped SAE's hook)
    other_layers: tuple = (3,)  # also kept (``resid_at``), for SAEs at other layers
    batch_size: int = 16


@dataclasses.dataclass
class LabelledTokens:
    """Every text token of the held-out documents (``<bos>``, ``<eos>``, padding dropped).

    ``resid``: the residual stream at ``blocks.{layer}.hook_resid_pre``; ``mlp``: the MLP neurons
    of the block before (``blocks.{layer-1}.mlp.hook_post``), whose output the stream contains;
    ``labels[field]`` the label of each token, ``labels["next " + field]`` that of the next token;
    ``train`` marks the explainer's split (even documents), the rest is held out for scoring.
    """

    str_tokens: np.ndarray  # [N] str
    labels: dict  # field -> [N] object array
    doc: np.ndarray  # [N] document (row) index
    col: np.ndarray  # [N] position in the row
    train: np.ndarray  # [N] bool
    resid: torch.Tensor  # [N, d_model]
    resid_at: dict  # layer -> [N, d_model], for config.other_layers too
    mlp: torch.Tensor  # [N, d_mlp]
    rows: np.ndarray  # [n_rows, width] str: the documents, for showing contexts
    bos_resid: torch.Tensor  # [1, d_model]: the <bos> activation (identical in every document)
    hook: str

    def __len__(self) -> int:
        return len(self.str_tokens)

    def context(self, i: int, before: int = 8, after: int = 2) -> tuple[list[str], int]:
        """The words around token ``i`` (no specials) and the index of token ``i`` in that list."""
        row, col = self.rows[self.doc[i]], int(self.col[i])
        start = col
        while start > 0 and col - start < before and row[start - 1] not in ("<bos>", "<eos>"):
            start -= 1
        stop = col + 1
        while stop < len(row) and stop - col <= after and row[stop] not in ("<eos>", "<pad>", "<bos>"):
            stop += 1
        return list(row[start:stop]), col - start


def collect(model, config: CollectConfig = CollectConfig()) -> LabelledTokens:
    """Run the world LM on ``config.n_docs`` held-out documents and keep the text tokens' residual
    stream, MLP neurons and labels."""
    from transformer_lens.utilities import get_act_name

    from ..world.data import world_tokens

    if not isinstance(config, CollectConfig):
        raise TypeError(f"config must be a CollectConfig, got {type(config).__name__}")
    if not 1 <= config.layer < model.cfg.n_layers:
        raise ValueError(f"layer must be in 1..{model.cfg.n_layers - 1} (an MLP block precedes it), got {config.layer}")
    if not all(0 <= layer < model.cfg.n_layers for layer in config.other_layers):
        raise ValueError(f"other_layers must be in 0..{model.cfg.n_layers - 1}, got {config.other_layers}")
    data = world_tokens(config.n_docs, config.seed, n_ctx=model.cfg.n_ctx, vocab=model.tokenizer.get_vocab())
    layers = sorted({config.layer, *config.other_layers})
    hooks = {layer: get_act_name("resid_pre", layer) for layer in layers}
    hook, mlp_hook = hooks[config.layer], get_act_name("post", config.layer - 1)
    keep = ~np.isin(data.labels["pos"].astype(str), SPECIAL_POS)
    resid, mlp = {layer: [] for layer in layers}, []
    stop = max(layers) + 1 if max(layers) + 1 < model.cfg.n_layers else None
    with torch.no_grad():
        for i in range(0, len(data.tokens), config.batch_size):
            batch = data.tokens[i:i + config.batch_size]
            _, cache = model.run_with_cache(batch.to(model.cfg.device), names_filter=[*hooks.values(), mlp_hook],
                                            stop_at_layer=stop)
            mask = torch.from_numpy(keep[i:i + config.batch_size, :batch.shape[1]])
            for layer in layers:
                resid[layer].append(cache[hooks[layer]].cpu()[mask])
            mlp.append(cache[mlp_hook].cpu()[mask])
            if i == 0:
                bos_resid = cache[hook][0, :1].cpu()
    rows_idx, cols = np.nonzero(keep)
    width = data.tokens.shape[1]
    rows = np.array(model.tokenizer.convert_ids_to_tokens(data.tokens.flatten().tolist()), dtype=object)
    rows = rows.reshape(-1, width)
    labels = {"token": rows[rows_idx, cols]}
    for field in TOKEN_FIELDS[1:]:
        labels[field] = data.labels[field][rows_idx, cols]
    labels["next token"] = rows[rows_idx, cols + 1]
    for field in NEXT_FIELDS[1:]:
        labels[f"next {field}"] = data.labels[field][rows_idx, cols + 1]
    resid_at = {layer: torch.cat(r) for layer, r in resid.items()}
    return LabelledTokens(rows[rows_idx, cols], labels, rows_idx, cols, rows_idx % 2 == 0, resid_at[config.layer],
                          resid_at, torch.cat(mlp), rows, bos_resid, hook)


@dataclasses.dataclass
class Predicates:
    """Yes/no statements about tokens: ``names[j]`` is true at token ``n`` iff ``matrix[n, j]``."""

    names: list
    fields: list  # the field (or "a & b" for a conjunction) each predicate is about
    matrix: torch.Tensor  # [N, P] bool

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            close = [n for n in self.names if name.split(" = ")[-1] in n][:5]
            raise KeyError(f"no predicate {name!r}; similar ones: {close}") from None

    def of_field(self, field: str) -> list:
        return [j for j, f in enumerate(self.fields) if f == field]


def _values(column: np.ndarray) -> list:
    vals = {v for v in column.tolist() if v is not None and v is not False}
    return sorted(vals, key=str)


def build_predicates(data: LabelledTokens, min_support: int = 8) -> Predicates:
    """Every (field = value) predicate — current token, next token, and the pairwise conjunctions
    in :data:`CONJUNCTIONS` — that holds on at least ``min_support`` tokens of the train split."""
    names, fields, columns = [], [], []
    train = data.train

    def add(name, field, col):
        if col[train].sum() >= min_support:
            names.append(name), fields.append(field), columns.append(col)

    all_fields = list(TOKEN_FIELDS) + [f"next {f}" for f in NEXT_FIELDS]
    for field in all_fields:
        column = data.labels[field]
        for value in _values(column):
            add(f"{field} = {value}", field, column == value)
    for a, b in CONJUNCTIONS:
        ca, cb = data.labels[a], data.labels[b]
        for va in _values(ca):
            for vb in _values(cb):
                add(f"{a} = {va} & {b} = {vb}", f"{a} & {b}", (ca == va) & (cb == vb))
    matrix = torch.from_numpy(np.stack(columns, axis=1).astype(bool))
    return Predicates(names, fields, matrix)
