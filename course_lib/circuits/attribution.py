"""Attribution graphs on the local replacement model (Ameisen et al. 2025, "Circuit Tracing: Revealing
Computational Graphs in Language Models"; following circuit-tracer's implementation,
github.com/safety-research/circuit-tracer: ``circuit_tracer/attribution.py``, ``replacement_model.py``
and ``graph.py``).

On one prompt:

* run the real model, then **freeze** its attention patterns and every LayerNorm scale at their
  values on this prompt (they become constants);
* **replace** each MLP's output by its transcoder's output (per-layer transcoders, or a cross-layer
  transcoder) plus an **error node** per (layer, position): the true MLP output minus the
  transcoder's. With the feature activations held fixed, the residual stream is now an *affine*
  function of the token embeddings, the features' decoder vectors and the error vectors;
* **nodes**: token embeddings (one per position), features active at (layer, position), error nodes,
  and logits (the most likely next tokens covering ``logit_probability`` of the probability, or the
  given targets);
* **direct edges** ``adjacency[t, s]``: the contribution of source ``s`` to target ``t``'s
  pre-activation (feature targets: the encoder pre-activation; logit targets: the logit minus the mean
  logit) through the frozen residual stream. One backward pass per target row, batched;
* the **bias** of a target collects what no node owns (positional embeddings, LayerNorm and attention
  biases, the transcoders' ``b_dec``, ``b_enc``, and with ``zero_bos`` everything the MLPs write at the
  ``<bos>`` position, which no prompt changes). Measured independently (the frozen model run with every
  node set to zero), it makes the **edge-sum identity** checkable: each node's incoming edges plus its
  bias equal its pre-activation.

Influence (``(I − A)⁻¹ − I`` of the row-normalised ``|A|``, weighted by the logits' probabilities),
pruning by cumulative influence, and the replacement / completeness scores are circuit-tracer's
(``circuit_tracer/graph.py``: ``prune_graph``, ``compute_graph_scores``). A pruned graph folds each
removed feature into the error node of its (layer, position), as circuit-tracer's subgraph scores do
(pull request #42, ``compute_subgraph_scores``): the identity still holds and the pruned graph's scores
count what pruning dropped as unexplained.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

KINDS = ("feature", "error", "token", "logit")


# ----------------------------------------------------------------------------- exercise references
def direct_edge(activation, w_dec, w_enc, ln_scale, path=None):
    """The direct edge from a source feature to a target feature in the local replacement model:
    the source writes ``activation * w_dec`` [d_model] into the residual stream; ``path`` [d_model,
    d_model] (row-vector convention, ``write @ path``) is the frozen linear map from there to the
    residual stream the target reads (``None``: the residual connection alone); the target's
    transcoder reads it through LayerNorm with its scale frozen at ``ln_scale`` (centre, divide)
    and dots it with its encoder row ``w_enc`` [d_model]. Returns a 0-d tensor."""
    write = activation * w_dec
    if path is not None:
        write = write @ path
    centred = write - write.mean(-1, keepdim=True)
    return (centred / ln_scale) @ w_enc


def edge_sum_error(adjacency, bias, preactivation):
    """How far each node's incoming edges (row ``t`` of ``adjacency`` [n, n]: sources are columns)
    plus its bias [n] are from its pre-activation [n]: ``|Σ_s A[t, s] + bias[t] − pre[t]|``, [n]."""
    return (adjacency.sum(dim=1) + bias - preactivation).abs()


def prune_by_influence(adjacency, logit_weights, threshold):
    """The nodes to keep, [n] bool: those with the largest influence on the logits that together
    hold a fraction ``threshold`` of the total influence (up to and including the node that reaches
    it), and the logit nodes (``logit_weights`` [n] > 0, their probabilities; 0 elsewhere).
    Influence: rows of ``|adjacency|`` normalised to sum to 1, ``B = (I − A)⁻¹ − I`` (every path,
    of every length), ``influence = logit_weights @ B``."""
    A = adjacency.abs()
    A = A / A.sum(dim=1, keepdim=True).clamp(min=1e-10)
    eye = torch.eye(len(A), dtype=A.dtype)
    influence = logit_weights @ (torch.linalg.inv(eye - A) - eye)
    ranked = influence.sort(descending=True).values
    cumulative = ranked.cumsum(0) / ranked.sum()
    cutoff = ranked[min(int(torch.searchsorted(cumulative, threshold)), len(ranked) - 1)]
    return (influence >= cutoff) | (logit_weights > 0)


# ----------------------------------------------------------------------------- the graph
@dataclasses.dataclass(frozen=True)
class Node:
    kind: str  # "feature", "error", "token" or "logit"
    layer: int  # tokens: -1 (the embedding), logits: n_layers (the unembedding)
    position: int
    feature: int | None = None  # features only
    token: int | None = None  # token and logit nodes: the token id
    activation: float | None = None  # features: activation; logits: probability


@dataclasses.dataclass
class Graph:
    """An attribution graph. Nodes are ordered ``[features, errors (layer-major), tokens, logits]``
    (circuit-tracer's order); ``adjacency[t, s]`` is the direct effect of source ``s`` on target
    ``t`` (rows: targets; only feature and logit rows are non-zero)."""

    tokens: torch.Tensor  # [n_pos] token ids
    str_tokens: list
    n_layers: int
    features: torch.Tensor  # [n_features, 3] long: (layer, position, feature index)
    activations: torch.Tensor  # [n_features]
    logit_tokens: torch.Tensor  # [n_logits] token ids
    logit_probabilities: torch.Tensor  # [n_logits]
    adjacency: torch.Tensor  # [n_nodes, n_nodes]
    bias: torch.Tensor  # [n_nodes]: what no node owns (0 for token and error nodes)
    preactivation: torch.Tensor  # [n_nodes]: features: encoder pre-activation; logits: logit − mean logit
    ln_scales: torch.Tensor  # [n_layers, n_pos]: the frozen scale of each MLP's input LayerNorm (ln2)
    keep: torch.Tensor | None = None  # [n_nodes] bool after pruning: the nodes to show
    edge_mask: torch.Tensor | None = None  # [n_nodes, n_nodes] bool after pruning: the edges to show

    def __repr__(self) -> str:
        logits = f"{self.n_logits} logit" + ("s" if self.n_logits != 1 else "")
        return (f"Graph({self.n_features} features, {self.n_layers * self.n_pos} error nodes, {self.n_pos} tokens, "
                f"{logits}{', pruned' if self.keep is not None else ''}: {' '.join(self.str_tokens)!r})")

    @property
    def n_pos(self) -> int:
        return len(self.tokens)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_logits(self) -> int:
        return len(self.logit_tokens)

    @property
    def n_nodes(self) -> int:
        return len(self.adjacency)

    def slice(self, kind: str) -> slice:
        """The indices of one kind of node."""
        sizes = {"feature": self.n_features, "error": self.n_layers * self.n_pos, "token": self.n_pos,
                 "logit": self.n_logits}
        if kind not in sizes:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        start = sum(sizes[k] for k in KINDS[:KINDS.index(kind)])
        return slice(start, start + sizes[kind])

    def error_index(self, layer: int, position: int) -> int:
        return self.slice("error").start + int(layer) * self.n_pos + int(position)

    def token_index(self, position: int) -> int:
        return self.slice("token").start + int(position)

    def feature_index(self, layer: int, position: int, feature: int) -> int:
        hit = ((self.features == torch.tensor([layer, position, feature])).all(1)).nonzero()
        if not len(hit):
            raise KeyError(f"feature {feature} is not active at layer {layer}, position {position}")
        return int(hit[0, 0])

    @property
    def logit_weights(self) -> torch.Tensor:
        """[n_nodes]: the logits' probabilities on the logit nodes, 0 elsewhere."""
        w = torch.zeros(self.n_nodes, dtype=self.adjacency.dtype)
        w[self.slice("logit")] = self.logit_probabilities.to(w.dtype)
        return w

    def node(self, i: int) -> Node:
        i = int(i)
        if not 0 <= i < self.n_nodes:
            raise IndexError(f"node index {i} out of range (the graph has {self.n_nodes} nodes)")
        if i < self.n_features:
            l, p, f = (int(v) for v in self.features[i])
            return Node("feature", l, p, feature=f, activation=float(self.activations[i]))
        for kind in KINDS[1:]:
            s = self.slice(kind)
            if i < s.stop:
                j = i - s.start
                if kind == "error":
                    return Node("error", j // self.n_pos, j % self.n_pos)
                if kind == "token":
                    return Node("token", -1, j, token=int(self.tokens[j]))
                return Node("logit", self.n_layers, self.n_pos - 1, token=int(self.logit_tokens[j]),
                            activation=float(self.logit_probabilities[j]))
        raise AssertionError("unreachable")

    def nodes(self) -> list:
        return [self.node(i) for i in range(self.n_nodes)]


@dataclasses.dataclass(frozen=True)
class AttributionConfig:
    max_logits: int = 10  # at most this many logit nodes ...
    logit_probability: float = 0.95  # ... the fewest covering this much probability (circuit-tracer's defaults)
    zero_bos: bool = True  # what the MLPs write at <bos> goes to the bias (no prompt changes it)
    batch_size: int = 128  # target rows per backward pass


# ----------------------------------------------------------------------------- the replacement
class _Replacement:
    """Per-layer transcoders (a :class:`TranscoderSet`) or a :class:`CrossLayerTranscoder` seen the same
    way: ``decoders[l]`` [d_sae, n_layers - l, d_model], what layer ``l``'s features write to layers
    ``l, l + 1, …`` (a per-layer transcoder's only to slot 0)."""

    def __init__(self, transcoders, model):
        from .transcoders import CrossLayerTranscoder, check_transcoders

        check_transcoders(transcoders)
        n_layers, d_model = model.cfg.n_layers, model.cfg.d_model
        if transcoders.n_layers != n_layers:
            raise ValueError(f"the model has {n_layers} MLP layers, the transcoders replace {transcoders.n_layers}")
        if isinstance(transcoders, CrossLayerTranscoder):
            self.W_enc, self.b_enc = list(transcoders.W_enc.detach()), list(transcoders.b_enc.detach())
            self.decoders, self.b_dec = [w.detach() for w in transcoders.W_dec], transcoders.b_dec.detach()
        else:
            self.W_enc, self.b_enc = [t.W_enc.detach() for t in transcoders], [t.b_enc.detach() for t in transcoders]
            self.decoders = [t.W_dec.detach()[:, None, :] for t in transcoders]
            self.b_dec = torch.stack([t.b_dec.detach() for t in transcoders])
        shapes = {tuple(w.shape[:1]) for w in self.W_enc} | {tuple(self.b_dec.shape[1:])}
        if shapes != {(d_model,)}:
            raise ValueError(f"the transcoders read and write vectors of size {sorted(shapes)}, the model's d_model is "
                             f"{d_model}: transcoders trained on another model?")
        if self.b_dec.device.type != torch.device(model.cfg.device).type:
            raise ValueError(f"the transcoders are on {self.b_dec.device}, the model on {model.cfg.device}: move them "
                             "to the model's device first (transcoders.to(model.cfg.device))")
        self.transcoders = transcoders

    def encode(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return self.transcoders.encode_layer(x, layer)

    def decode(self, acts: list) -> torch.Tensor:
        """[n_layers, pos, d_model]: every layer's predicted MLP output, by the transcoders' own decoders."""
        return self.transcoders.decode(acts)


def _tokens(model, tokens) -> torch.Tensor:
    if isinstance(tokens, str):
        tokens = model.to_tokens(tokens)
    if isinstance(tokens, (list, tuple, np.ndarray)):
        tokens = torch.as_tensor(np.asarray(tokens))
    if not isinstance(tokens, torch.Tensor) or tokens.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"tokens must be a prompt (str), a list of token ids or an integer tensor, got {tokens!r}")
    if tokens.ndim == 2 and tokens.shape[0] == 1:
        tokens = tokens[0]
    if tokens.ndim != 1 or not len(tokens):
        raise ValueError(f"attribute takes one prompt: tokens of shape [n_pos] or [1, n_pos], got {tuple(tokens.shape)}")
    return tokens.long().cpu()


def _frozen_names(name: str) -> bool:
    return name.endswith(("hook_scale", "hook_pattern"))


def _frozen_forward(model, tokens, frozen: dict, embed, mlp_out, capture=("ln2.hook_normalized",)):
    """The local replacement model: ``model`` on ``tokens`` with the attention patterns and LayerNorm
    scales replaced by the constants ``frozen``, the token embeddings by ``embed`` [B, pos, d] and
    each MLP's output by ``mlp_out[l]`` [B, pos, d]. Returns ``(captured, logits)``:
    ``captured[(l, name)]`` the activations at ``blocks.{l}.{name}``, ``logits`` [B, d_vocab] at the
    last position."""
    B = embed.shape[0]
    captured = {}

    def constant(x, hook):
        return frozen[hook.name].expand_as(x)

    def keep(x, hook):
        l, name = hook.name.split(".", 2)[1:]
        captured[(int(l), name)] = x
        return x

    hooks = [("hook_embed", lambda x, hook: embed)] + [(name, constant) for name in frozen]
    hooks += [(f"blocks.{l}.hook_mlp_out", lambda x, hook, l=l: mlp_out[l]) for l in range(model.cfg.n_layers)]
    hooks += [(f"blocks.{l}.{name}", keep) for l in range(model.cfg.n_layers) for name in capture]
    logits = model.run_with_hooks(tokens[None].expand(B, -1).to(model.cfg.device), fwd_hooks=hooks)
    return captured, logits[:, -1]


def _single_token(model, word: str) -> int:
    ids = model.to_tokens(word, prepend_bos=False)[0].tolist()
    if len(ids) != 1:
        words = [model.tokenizer.convert_ids_to_tokens(i) for i in ids]
        raise ValueError(f"target {word!r} is {len(ids)} tokens {words}: give one word (the first, "
                         f"{words[0]!r}, is what the model predicts next) or token ids")
    return ids[0]


def _logit_nodes(model, logits, config: AttributionConfig, target):
    probs = logits.softmax(-1)
    if target is not None:
        words = [target] if isinstance(target, str) else target
        if isinstance(words, (list, tuple)) and all(isinstance(w, str) for w in words):
            target = [_single_token(model, w) for w in words]
        ids = torch.as_tensor(np.asarray(target), dtype=torch.long).reshape(-1).cpu()
        if not len(ids) or ids.min() < 0 or ids.max() >= len(probs):
            raise ValueError(f"target must be token ids in 0..{len(probs) - 1}, got {target!r}")
        return ids, probs[ids]
    top_p, top = probs.topk(min(config.max_logits, len(probs)))
    n = min(int(torch.searchsorted(top_p.cumsum(0), config.logit_probability)) + 1, len(top))
    return top[:n], top_p[:n]


def attribute(model, transcoders, tokens, config: AttributionConfig = AttributionConfig(), target=None) -> Graph:
    """The attribution graph of ``model`` (a TransformerLens model with LayerNorm) on one prompt
    ``tokens`` (a string, token ids), with ``transcoders`` (one per layer, or a cross-layer
    transcoder) replacing the MLPs; logit nodes for ``target`` (token ids, or words such as "Austin") if
    given, else the most likely next tokens (see :class:`AttributionConfig`)."""
    if not isinstance(config, AttributionConfig):
        raise TypeError(f"config must be an AttributionConfig, got {type(config).__name__}")
    if model.cfg.normalization_type != "LN":
        raise ValueError(f"attribute needs a model with LayerNorm (normalization_type 'LN'), "
                         f"got {model.cfg.normalization_type!r}")
    tokens = _tokens(model, tokens)
    n_layers, n_pos = model.cfg.n_layers, len(tokens)
    rep = _Replacement(transcoders, model)
    keep_names = ("hook_embed",) + tuple(f"blocks.{l}.{h}" for l in range(n_layers)
                                         for h in ("ln2.hook_normalized", "hook_mlp_out"))
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens[None].to(model.cfg.device),
                                             names_filter=lambda n: n in keep_names or _frozen_names(n))
        frozen = {n: v.detach() for n, v in cache.items() if _frozen_names(n)}
        x_in = [cache[f"blocks.{l}.ln2.hook_normalized"][0] for l in range(n_layers)]
        mlp_true = torch.stack([cache[f"blocks.{l}.hook_mlp_out"][0] for l in range(n_layers)])
        embed = cache["hook_embed"][0]
        acts = [rep.encode(l, x_in[l]) for l in range(n_layers)]
        pre = [x_in[l] @ rep.W_enc[l] + rep.b_enc[l] for l in range(n_layers)]
        error = mlp_true - rep.decode(acts)
        bos = config.zero_bos and int(tokens[0]) == getattr(model.tokenizer, "bos_token_id", None)
        active = torch.stack(acts) > 0
        if bos:
            active[:, 0] = False
            error[:, 0] = 0
        features = active.nonzero()  # (layer, position, feature), sorted
        fl, fp, ff = features.unbind(1)
        activations = torch.stack(acts)[fl, fp, ff]
        decoders = embed.new_zeros(len(features), n_layers, model.cfg.d_model)  # what each feature writes to each layer
        for l in range(n_layers):
            here = fl == l
            decoders[here, l:l + rep.decoders[l].shape[1]] = rep.decoders[l][ff[here]].to(decoders.dtype)
        logit_tokens, logit_probs = _logit_nodes(model, logits[0, -1].cpu(), config, target)

    n_f, n_e, n_l = len(features), n_layers * n_pos, len(logit_tokens)
    n = n_f + n_e + n_pos + n_l
    targets = [("feature", int(fl[i]), int(fp[i]), int(ff[i])) for i in range(n_f)]
    targets += [("logit", n_layers, n_pos - 1, int(v)) for v in logit_tokens]
    rows = torch.arange(n_f).tolist() + list(range(n - n_l, n))

    def target_values(captured, last_logits, batch):
        out = []
        for b, (kind, l, p, f) in enumerate(batch):
            if kind == "feature":
                out.append(captured[(l, "ln2.hook_normalized")][b, p] @ rep.W_enc[l][:, f] + rep.b_enc[l][f])
            else:
                out.append(last_logits[b, f] - last_logits[b].mean())
        return torch.stack(out)

    adjacency = torch.zeros(n, n)
    with torch.enable_grad():
        for start in range(0, len(targets), config.batch_size):
            batch = targets[start:start + config.batch_size]
            B = len(batch)
            embed_leaf = embed.expand(B, -1, -1).clone().requires_grad_()
            mlp_leaf = mlp_true[:, None].expand(-1, B, -1, -1).clone().requires_grad_()
            captured, last = _frozen_forward(model, tokens, frozen, embed_leaf, mlp_leaf)
            grads = torch.autograd.grad(target_values(captured, last, batch).sum(), [embed_leaf, mlp_leaf],
                                        allow_unused=True)  # layer-0 targets read no MLP output
            g_embed, g_mlp = (torch.zeros_like(x) if d is None else d for x, d in zip([embed_leaf, mlp_leaf], grads))
            block = embed.new_zeros(B, n)
            for p in range(n_pos):
                at = (fp == p).nonzero()[:, 0]
                block[:, at] = torch.einsum("jbd,sjd->bs", g_mlp[:, :, p], decoders[at]) * activations[at]
            block[:, n_f:n_f + n_e] = torch.einsum("jbpd,jpd->bjp", g_mlp, error).reshape(B, n_e)
            block[:, n_f + n_e:n - n_l] = torch.einsum("bpd,pd->bp", g_embed, embed)
            adjacency[rows[start:start + B]] = block.detach().cpu()

    with torch.no_grad():  # the bias: the frozen model with every node set to zero
        mlp_bias = rep.b_dec[:, None, None, :].expand(-1, 1, n_pos, -1).clone()
        if bos:
            mlp_bias[:, 0, 0] = mlp_true[:, 0]
        captured, last = _frozen_forward(model, tokens, frozen, torch.zeros_like(embed)[None], mlp_bias)
        bias, preactivation = torch.zeros(n), torch.zeros(n)
        for i, t in zip(rows, targets):
            bias[i] = float(target_values(captured, last, [t])[0])
        preactivation[:n_f] = torch.stack(pre)[fl, fp, ff].cpu()
        preactivation[n - n_l:] = (logits[0, -1, logit_tokens.to(logits.device)] - logits[0, -1].mean()).cpu()
        scales = torch.stack([frozen[f"blocks.{l}.ln2.hook_scale"][0, :, 0] for l in range(n_layers)])
    str_tokens = model.to_str_tokens(tokens[None]) if model.tokenizer is not None else [str(t) for t in tokens.tolist()]
    return Graph(tokens, list(str_tokens), n_layers, features.cpu(), activations.cpu(),
                 logit_tokens.cpu(), logit_probs.cpu(), adjacency, bias, preactivation, scales.cpu())


def frozen_path(model, tokens, source: tuple, target: tuple) -> torch.Tensor:
    """[d_model, d_model]: the linear map, in the local replacement model of ``model`` on ``tokens``,
    from a vector written into the MLP output at ``source`` = (layer, position) to the residual
    stream that the MLP of ``target`` = (layer, position) reads (``blocks.L.hook_resid_mid``): the
    residual connection plus every attention path, patterns and LayerNorm scales frozen. Row-vector
    convention: ``write @ path``; pass it to :func:`direct_edge`."""
    tokens = _tokens(model, tokens)
    (ls, ps), (lt, pt) = (tuple(int(v) for v in source), tuple(int(v) for v in target))
    if not (0 <= ls < lt < model.cfg.n_layers and 0 <= ps <= pt < len(tokens)):
        raise ValueError(f"the source must come before the target: a lower layer and a position <= the target's, "
                         f"got source {source}, target {target}")
    d = model.cfg.d_model
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens[None].to(model.cfg.device),
                                        names_filter=lambda n: n == "hook_embed" or n.endswith("hook_mlp_out")
                                        or _frozen_names(n))
    frozen = {n: v for n, v in cache.items() if _frozen_names(n)}
    mlp = torch.stack([cache[f"blocks.{l}.hook_mlp_out"] for l in range(model.cfg.n_layers)]).expand(-1, d, -1, -1)
    with torch.enable_grad():
        mlp_leaf = mlp.clone().requires_grad_()
        captured, _ = _frozen_forward(model, tokens, frozen, cache["hook_embed"].expand(d, -1, -1), mlp_leaf,
                                      capture=("hook_resid_mid",))
        resid = captured[(lt, "hook_resid_mid")][:, pt]  # [d (batch), d]
        (grad,) = torch.autograd.grad(resid.diagonal().sum(), [mlp_leaf])
    return grad[ls, :, ps].T.detach()  # grad[b] = d resid[b] / d write: row b of the Jacobian


# ----------------------------------------------------------------------------- influence, pruning, scores
def normalized(adjacency: torch.Tensor) -> torch.Tensor:
    """``|adjacency|`` with every row scaled to sum to 1 (rows of zeros stay zero)."""
    A = adjacency.abs()
    return A / A.sum(dim=1, keepdim=True).clamp(min=1e-10)


def node_influence(adjacency: torch.Tensor, logit_weights: torch.Tensor) -> torch.Tensor:
    """[n]: ``logit_weights @ ((I − A)⁻¹ − I)`` for the row-normalised ``A`` (a linear solve)."""
    A = normalized(adjacency).double()
    w = logit_weights.double()
    through = torch.linalg.solve((torch.eye(len(A), dtype=A.dtype) - A).T, w)
    return (through - w).to(adjacency.dtype)


def _threshold(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    ranked = scores.sort(descending=True).values
    cumulative = ranked.cumsum(0) / ranked.sum()
    return ranked[min(int(torch.searchsorted(cumulative, fraction)), len(ranked) - 1)]


def prune(graph: Graph, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Graph:
    """The nodes holding ``node_threshold`` of the influence on the logits (and every token and logit
    node) and the edges holding ``edge_threshold`` of the edge influence among them, as circuit-tracer's
    ``prune_graph``. Returns a new graph whose features are the kept ones; each removed feature is
    folded into the error node of its (layer, position) (its outgoing edges added to that node's), so
    that the edge-sum identity still holds and the scores count what was pruned as unexplained.
    ``keep`` and ``edge_mask`` say which nodes and edges to draw."""
    if not isinstance(graph, Graph):
        raise TypeError(f"prune takes a Graph (from attribute), got {type(graph).__name__}")
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    A, w = graph.adjacency, graph.logit_weights
    n_f, always = graph.n_features, graph.slice("token").start
    node_mask = prune_by_influence(A, w, node_threshold)
    node_mask[always:] = True
    pruned = A * node_mask[:, None] * node_mask[None, :]
    edge_scores = normalized(pruned) * (node_influence(pruned, w) + w)[:, None]
    edge_mask = edge_scores >= _threshold(edge_scores.flatten(), edge_threshold)
    while True:  # features and errors need an outgoing edge, features an incoming one
        before = node_mask.clone()
        edge_mask &= node_mask[:, None] & node_mask[None, :]
        node_mask[:always] &= edge_mask[:, :always].any(0)
        node_mask[:n_f] &= edge_mask[:n_f].any(1)
        if torch.equal(before, node_mask):
            break
    kept = node_mask[:n_f]
    old = torch.cat([kept.nonzero()[:, 0], torch.arange(n_f, graph.n_nodes)])  # old index of each new node
    folded = A.clone()
    for i in (~kept).nonzero()[:, 0].tolist():
        l, p, _ = graph.features[i].tolist()
        folded[:, graph.error_index(l, p)] += folded[:, i]
    adjacency = folded[old][:, old]
    return dataclasses.replace(graph, features=graph.features[kept], activations=graph.activations[kept],
                               adjacency=adjacency, bias=graph.bias[old], preactivation=graph.preactivation[old],
                               keep=node_mask[old], edge_mask=edge_mask[old][:, old])


def replacement_score(graph: Graph) -> float:
    """circuit-tracer's replacement score: of the end-to-end influence on the logits that starts at
    token or error nodes, the fraction that starts at tokens (flows through features alone)."""
    influence = node_influence(graph.adjacency, graph.logit_weights)
    token, error = influence[graph.slice("token")].sum(), influence[graph.slice("error")].sum()
    return float(token / (token + error)) if token + error > 0 else 0.0


def completeness_score(graph: Graph) -> float:
    """circuit-tracer's completeness score: the fraction of each node's (normalised) incoming edges
    that come from feature or token nodes rather than error nodes, averaged with weights = the node's
    influence on the logits (the logits included, with their probabilities)."""
    w = graph.logit_weights
    non_error = 1 - normalized(graph.adjacency)[:, graph.slice("error")].sum(1)
    weight = node_influence(graph.adjacency, w) + w
    return float((non_error * weight).sum() / weight.sum())
