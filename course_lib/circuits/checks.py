"""Notebook 05's exercise checks (see :mod:`course_lib.checking`): the ``Exercise`` objects, their
seeded inputs and the mistakes whose hints they give. The references live with the science:
:mod:`.transcoders` (``transcoder_forward``, ``clt_decode``), :mod:`.training` (``normalized_mse``),
:mod:`.attribution` (``direct_edge``,
``edge_sum_error``, ``prune_by_influence``), :mod:`.interventions` (``swap_features``,
``swap_success_rate``)."""
from __future__ import annotations

import torch

from ..checking import Case, Exercise, Mistake, gradient_case, seeded_generator
from .attribution import direct_edge, edge_sum_error, prune_by_influence
from .interventions import swap_features, swap_success_rate
from .training import normalized_mse
from .transcoders import clt_decode, transcoder_forward


def _unchanged(before: dict) -> bool:
    return all(torch.equal(t, c) for t, c in before.values())


# ----------------------------------------------------------------------------- transcoder_forward
def _tc_case(seed, lead, d_model, d_sae, k, dead=0):
    """Leading dims ``lead``; ``dead`` features per token get a very negative bias so that some
    tokens have fewer than ``k`` positive pre-activations."""
    def run(impl):
        g = seeded_generator(seed)
        x = torch.randn(*lead, d_model, generator=g)
        W_enc = (torch.randn(d_model, d_sae, generator=g) / d_model ** 0.5).requires_grad_()
        b_enc = (torch.randn(d_sae, generator=g) * 0.3 - torch.linspace(0, 3.0 * dead, d_sae)).requires_grad_()
        W_dec = (torch.randn(d_sae, d_model, generator=g) / d_sae ** 0.5).requires_grad_()
        b_dec = torch.randn(d_model, generator=g).requires_grad_()
        before = x.clone()
        out = impl(x, W_enc, b_enc, W_dec, b_dec, k)
        return {"(acts, out)": out, "x unchanged": torch.equal(x, before)}, \
            {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
    return run


def _tc_no_relu(x, W_enc, b_enc, W_dec, b_dec, k):
    pre = x @ W_enc + b_enc
    top = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
    return acts, acts @ W_dec + b_dec


def _tc_wrong_axis(x, W_enc, b_enc, W_dec, b_dec, k):
    acts = torch.relu(x @ W_enc + b_enc)
    top = acts.topk(k, dim=0)
    acts = torch.zeros_like(acts).scatter(0, top.indices, top.values)
    return acts, acts @ W_dec + b_dec


def _tc_no_b_dec(x, W_enc, b_enc, W_dec, b_dec, k):
    acts, out = transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)
    return acts, out - b_dec


def _tc_no_b_enc(x, W_enc, b_enc, W_dec, b_dec, k):
    return transcoder_forward(x, W_enc, torch.zeros_like(b_enc), W_dec, b_dec, k)


def _tc_no_topk(x, W_enc, b_enc, W_dec, b_dec, k):
    acts = torch.relu(x @ W_enc + b_enc)
    return acts, acts @ W_dec + b_dec


def _tc_dense_decode(x, W_enc, b_enc, W_dec, b_dec, k):
    dense = torch.relu(x @ W_enc + b_enc)
    return transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)[0], dense @ W_dec + b_dec


def _tc_sae_centring(x, W_enc, b_enc, W_dec, b_dec, k):
    return transcoder_forward(x - b_dec, W_enc, b_enc, W_dec, b_dec, k)


def _tc_detached_decode(x, W_enc, b_enc, W_dec, b_dec, k):
    acts, _ = transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)
    return acts, acts.detach() @ W_dec + b_dec


check_transcoder_forward = Exercise(
    "transcoder_forward", transcoder_forward,
    cases=lambda: [gradient_case("12 tokens, d_model 6, 10 features, k = 3", _tc_case(1, (12,), 6, 10, 3)),
                   gradient_case("a batch [2, 5] of tokens, k = 2", _tc_case(2, (2, 5), 5, 9, 2), seed=1),
                   gradient_case("fewer than k positive pre-activations on some tokens (edge case), k = 4",
                                 _tc_case(3, (10,), 6, 8, 4, dead=1), seed=2),
                   gradient_case("k = 1", _tc_case(4, (7,), 4, 6, 1), seed=3)],
    mistakes=[
        Mistake("Apply the ReLU: where fewer than k pre-activations are positive, TopK alone keeps negative ones "
                "(a feature is either silent, 0, or firing, > 0).", _tc_no_relu),
        Mistake("TopK is per token: keep the k largest of each row (topk(k, dim=-1) and scatter along dim=-1), "
                "not the k tokens where each feature is largest.", _tc_wrong_axis),
        Mistake("Add the decoder bias b_dec to the output: the MLP output has a constant part the features do "
                "not write.", _tc_no_b_dec),
        Mistake("Add the encoder bias b_enc before the ReLU and TopK.", _tc_no_b_enc),
        Mistake("Keep only the k largest activations of each token (topk, then scatter into zeros): ReLU alone "
                "keeps every positive one, and the transcoder is no longer sparse.", _tc_no_topk),
        Mistake("Decode the sparse activations (after TopK), not the dense ReLU output: acts is right, out is "
                "not.", _tc_dense_decode),
        Mistake("Do not subtract b_dec from x: that is an SAE's habit (input and output in one space). A "
                "transcoder reads the MLP input and writes the MLP output, two different spaces.", _tc_sae_centring),
        Mistake("Decode acts itself, not a detached copy (no .detach(), .data or torch.no_grad() on the way to "
                "out): the values are right, but the encoder (W_enc, b_enc) learns only through out = acts @ W_dec "
                "+ b_dec, and a detached decoder input cuts it off.", _tc_detached_decode),
    ],
    hint="acts = ReLU(x @ W_enc + b_enc); keep the k largest of each row: top = acts.topk(k, dim=-1), "
         "acts = zeros_like(acts).scatter(-1, top.indices, top.values); out = acts @ W_dec + b_dec; "
         "return (acts, out).")


# ----------------------------------------------------------------------------- clt_decode
def _clt_case(seed, n_layers, lead, d_sae, d_model):
    def run(impl):
        g = seeded_generator(seed)
        acts = [(torch.relu(torch.randn(*lead, d_sae, generator=g)) * (torch.rand(*lead, d_sae, generator=g) < 0.5))
                .requires_grad_() for _ in range(n_layers)]
        W_dec = [torch.randn(d_sae, n_layers - l, d_model, generator=g).requires_grad_() for l in range(n_layers)]
        b_dec = torch.randn(n_layers, d_model, generator=g).requires_grad_()
        before = {f"acts[{l}]": (a, a.clone()) for l, a in enumerate(acts)}
        out = impl(acts, W_dec, b_dec)
        leaves = {f"acts[{l}]": a for l, a in enumerate(acts)}
        leaves.update({f"W_dec[{l}]": w for l, w in enumerate(W_dec)}, b_dec=b_dec)
        return {"outputs by layer": out, "inputs unchanged": _unchanged(before)}, leaves
    return run


def _clt_same_layer_only(acts_by_layer, W_dec, b_dec):
    return torch.stack([b_dec[j] + acts_by_layer[j] @ W_dec[j][:, 0, :] for j in range(len(W_dec))])


def _clt_earlier_only(acts_by_layer, W_dec, b_dec):
    outs = []
    for j in range(len(W_dec)):
        out = b_dec[j] + torch.zeros(*acts_by_layer[0].shape[:-1], b_dec.shape[-1])
        for l in range(j):
            out = out + acts_by_layer[l] @ W_dec[l][:, j - l, :]
        outs.append(out)
    return torch.stack(outs)


def _clt_no_bias(acts_by_layer, W_dec, b_dec):
    return clt_decode(acts_by_layer, W_dec, b_dec) - b_dec.reshape(len(W_dec), *[1] * (acts_by_layer[0].ndim - 1), -1)


def _clt_bias_per_source(acts_by_layer, W_dec, b_dec):
    outs = []
    for j in range(len(W_dec)):
        out = 0
        for l in range(j + 1):
            out = out + acts_by_layer[l] @ W_dec[l][:, j - l, :] + b_dec[j]
        outs.append(out)
    return torch.stack(outs)


def _clt_summed_slots(acts_by_layer, W_dec, b_dec):
    outs = []
    for j in range(len(W_dec)):
        out = b_dec[j]
        for l in range(j + 1):
            out = out + acts_by_layer[l] @ W_dec[l].sum(1)
        outs.append(out)
    return torch.stack(outs)


check_clt_decode = Exercise(
    "clt_decode", clt_decode,
    cases=lambda: [gradient_case("3 layers, 5 tokens, 4 features, d_model 3", _clt_case(1, 3, (5,), 4, 3)),
                   gradient_case("4 layers, a batch [2, 3] of tokens", _clt_case(2, 4, (2, 3), 5, 4), seed=1),
                   gradient_case("one layer (edge case)", _clt_case(3, 1, (4,), 3, 2), seed=2)],
    mistakes=[
        Mistake("A cross-layer transcoder's features write to their own layer *and every later one*: layer j's "
                "output sums the features of every layer l <= j, through slot j - l of W_dec[l].",
                _clt_same_layer_only),
        Mistake("Include l = j: a layer's own features write to its MLP output too (slot 0 of W_dec[j]); "
                "sum over range(j + 1).", _clt_earlier_only),
        Mistake("Add b_dec[j] to layer j's output.", _clt_no_bias),
        Mistake("Add the bias b_dec[j] once per output layer, not once per source layer.", _clt_bias_per_source),
        Mistake("Feature of layer l writes a *different* vector to each later layer j: W_dec[l][:, j - l, :], "
                "one slot per target layer, not their sum.", _clt_summed_slots),
    ],
    hint="For each output layer j: out_j = b_dec[j] + Σ_{l <= j} acts_by_layer[l] @ W_dec[l][:, j - l, :]; "
         "return torch.stack of the n_layers outputs.")


# ----------------------------------------------------------------------------- direct_edge
def _edge_case(seed, d, with_path, scale, as_float=False):
    def run(impl):
        g = seeded_generator(seed)
        activation = torch.rand((), generator=g) * 2 + 0.5
        w_dec = torch.randn(d, generator=g) + 0.7  # a non-zero mean: LayerNorm's centring matters
        w_enc = torch.randn(d, generator=g)
        ln_scale = torch.tensor(scale)
        path = torch.eye(d) + 0.6 * torch.randn(d, d, generator=g) if with_path else None
        tensors = {"w_dec": w_dec, "w_enc": w_enc, "ln_scale": ln_scale} | ({"path": path} if with_path else {})
        before = {k: (t, t.clone()) for k, t in tensors.items()}
        args = (float(activation) if as_float else activation, w_dec, w_enc, ln_scale)
        out = impl(*args, path) if with_path else impl(*args)  # path=None is the default
        return {"output": out, "inputs unchanged": _unchanged(before)}
    return run


def _de_no_scale(activation, w_dec, w_enc, ln_scale, path=None):
    return direct_edge(activation, w_dec, w_enc, 1.0, path)


def _de_times_scale(activation, w_dec, w_enc, ln_scale, path=None):
    return direct_edge(activation, w_dec, w_enc, 1 / ln_scale, path)


def _de_no_centring(activation, w_dec, w_enc, ln_scale, path=None):
    write = activation * w_dec
    if path is not None:
        write = write @ path
    return (write / ln_scale) @ w_enc


def _de_own_norm(activation, w_dec, w_enc, ln_scale, path=None):
    write = activation * w_dec
    if path is not None:
        write = write @ path
    return torch.nn.functional.layer_norm(write, write.shape) @ w_enc


def _de_path_transposed(activation, w_dec, w_enc, ln_scale, path=None):
    return direct_edge(activation, w_dec, w_enc, ln_scale, None if path is None else path.T)


def _de_no_activation(activation, w_dec, w_enc, ln_scale, path=None):
    return direct_edge(1.0, w_dec, w_enc, ln_scale, path)


def _de_no_path(activation, w_dec, w_enc, ln_scale, path=None):
    return direct_edge(activation, w_dec, w_enc, ln_scale, None)


check_direct_edge = Exercise(
    "direct_edge", direct_edge,
    cases=lambda: [Case("the residual connection alone (path None), d_model 8", _edge_case(1, 8, False, 2.5)),
                   Case("through a frozen attention path, d_model 6", _edge_case(2, 6, True, 0.4)),
                   Case("a path and a LayerNorm scale of 1.7, d_model 10", _edge_case(3, 10, True, 1.7)),
                   Case("the activation as a Python float (edge case)", _edge_case(4, 5, True, 3.0, as_float=True))],
    mistakes=[
        Mistake("Divide by the frozen LayerNorm scale ln_scale: the target's transcoder reads the *normalised* "
                "residual stream.", _de_no_scale),
        Mistake("LayerNorm *divides* by its scale (x − mean) / scale; it does not multiply.", _de_times_scale),
        Mistake("LayerNorm centres first: subtract the mean of the vector (over d_model) before dividing by the "
                "scale.", _de_no_centring),
        Mistake("Do not run a LayerNorm on the contribution itself: it divides by the contribution's own norm. In "
                "the local replacement model the scale is frozen at the full residual stream's, ln_scale — that "
                "is what makes the edges linear.", _de_own_norm),
        Mistake("Row-vector convention: the write goes through the path as write @ path, not path @ write.",
                _de_path_transposed),
        Mistake("The source writes activation × w_dec: scale the decoder vector by the source's activation.",
                _de_no_activation),
        Mistake("When a path is given, send the write through it (write @ path) before the LayerNorm.", _de_no_path),
    ],
    hint="write = activation * w_dec; if path is not None: write = write @ path; centre it (write − write.mean()), "
         "divide by ln_scale, and dot with w_enc: a 0-d tensor.")


# ----------------------------------------------------------------------------- edge_sum_error
def _sum_case(seed, n, n_sources, off):
    """A graph whose first ``n_sources`` nodes have no incoming edges; the rest have pre-activations
    off from their edge sums by ``off`` (some positive, some negative)."""
    def run(impl):
        g = seeded_generator(seed)
        adjacency = torch.randn(n, n, generator=g).tril(-1) * (torch.rand(n, n, generator=g) < 0.6)
        adjacency[:n_sources] = 0
        bias = torch.randn(n, generator=g)
        bias[:n_sources] = 0
        noise = off * torch.randn(n, generator=g)
        preactivation = adjacency.sum(1) + bias + noise
        preactivation[:n_sources] = 0
        before = {"adjacency": (adjacency, adjacency.clone()), "bias": (bias, bias.clone()),
                  "preactivation": (preactivation, preactivation.clone())}
        out = impl(adjacency, bias, preactivation)
        return {"output": out, "inputs unchanged": _unchanged(before)}
    return run


check_edge_sum_error = Exercise(
    "edge_sum_error", edge_sum_error,
    cases=lambda: [Case("7 nodes, 2 without incoming edges, errors of both signs", _sum_case(1, 7, 2, 0.5)),
                   Case("12 nodes, an exact graph (edge case: every error is 0)", _sum_case(2, 12, 3, 0.0)),
                   Case("5 nodes, large errors", _sum_case(3, 5, 1, 3.0))],
    mistakes=[
        Mistake("A node's *incoming* edges are its row: adjacency[t, :] (sum over dim=1; sources are columns), "
                "not its column (what it sends out).",
                lambda adjacency, bias, preactivation: (adjacency.sum(0) + bias - preactivation).abs()),
        Mistake("Add each node's bias: the edges alone leave out what no node owns (biases, positional "
                "embeddings).", lambda adjacency, bias, preactivation: (adjacency.sum(1) - preactivation).abs()),
        Mistake("The bias is part of the pre-activation: add it to the edge sum, do not subtract it.",
                lambda adjacency, bias, preactivation: (adjacency.sum(1) - bias - preactivation).abs()),
        Mistake("Sum the signed edges: a negative edge lowers the pre-activation (no abs inside the sum).",
                lambda adjacency, bias, preactivation: (adjacency.abs().sum(1) + bias - preactivation).abs()),
        Mistake("Return the absolute error: an error of −0.3 is as far off as +0.3.",
                lambda adjacency, bias, preactivation: adjacency.sum(1) + bias - preactivation),
    ],
    hint="(adjacency.sum(dim=1) + bias − preactivation).abs(): one error per node, [n].")


# ----------------------------------------------------------------------------- prune_by_influence
def _prune_case(seed, n, n_logits, threshold, scale=1.0):
    """A random DAG (sources before targets); the last ``n_logits`` nodes are the logits."""
    def run(impl):
        g = seeded_generator(seed)
        adjacency = scale * torch.randn(n, n, generator=g).tril(-1) * (torch.rand(n, n, generator=g) < 0.5)
        adjacency[:, n - n_logits:] = 0  # a logit is nobody's source
        adjacency[n - n_logits:, :n - n_logits] += 0.05 * (torch.rand(n_logits, n - n_logits, generator=g) < 0.3)
        weights = torch.zeros(n)
        p = torch.rand(n_logits, generator=g) + 0.2
        weights[n - n_logits:] = p / p.sum() * 0.9
        before = {"adjacency": (adjacency, adjacency.clone()), "logit_weights": (weights, weights.clone())}
        out = impl(adjacency, weights, threshold)
        return {"output": out, "inputs unchanged": _unchanged(before)}
    return run


def _influence_rows(A, w):
    eye = torch.eye(len(A), dtype=A.dtype)
    return w @ (torch.linalg.inv(eye - A) - eye)


def _keep_top(influence, logit_weights, threshold):
    ranked = influence.sort(descending=True).values
    cumulative = ranked.cumsum(0) / ranked.sum()
    cutoff = ranked[min(int(torch.searchsorted(cumulative, threshold)), len(ranked) - 1)]
    return (influence >= cutoff) | (logit_weights > 0)


def _normalise(A):
    return A / A.sum(dim=1, keepdim=True).clamp(min=1e-10)


def _pr_unnormalised(adjacency, logit_weights, threshold):
    return _keep_top(_influence_rows(adjacency.abs(), logit_weights), logit_weights, threshold)


def _pr_signed(adjacency, logit_weights, threshold):
    A = adjacency / adjacency.sum(dim=1, keepdim=True).abs().clamp(min=1e-10)
    return _keep_top(_influence_rows(A, logit_weights), logit_weights, threshold)


def _pr_keeps_identity(adjacency, logit_weights, threshold):
    A = _normalise(adjacency.abs())
    influence = logit_weights @ torch.linalg.inv(torch.eye(len(A)) - A)
    return _keep_top(influence, logit_weights, threshold)


def _pr_columns(adjacency, logit_weights, threshold):
    A = adjacency.abs()
    A = A / A.sum(dim=0, keepdim=True).clamp(min=1e-10)
    return _keep_top(_influence_rows(A, logit_weights), logit_weights, threshold)


def _pr_direct_only(adjacency, logit_weights, threshold):
    return _keep_top(logit_weights @ _normalise(adjacency.abs()), logit_weights, threshold)


def _pr_below_threshold(adjacency, logit_weights, threshold):
    influence = _influence_rows(_normalise(adjacency.abs()), logit_weights)
    order = influence.argsort(descending=True)
    cumulative = influence[order].cumsum(0) / influence.sum()
    keep = torch.zeros(len(influence), dtype=torch.bool)
    keep[order[cumulative < threshold]] = True
    return keep | (logit_weights > 0)


def _pr_drops_logits(adjacency, logit_weights, threshold):
    influence = _influence_rows(_normalise(adjacency.abs()), logit_weights)
    return _keep_top(influence, torch.zeros_like(logit_weights), threshold)


def _pr_no_clamp(adjacency, logit_weights, threshold):
    A = adjacency.abs()
    return _keep_top(_influence_rows(A / A.sum(dim=1, keepdim=True), logit_weights), logit_weights, threshold)


def _pr_by_size(adjacency, logit_weights, threshold):
    return _keep_top(adjacency.abs().sum(0), logit_weights, threshold)


check_prune_by_influence = Exercise(
    "prune_by_influence", prune_by_influence,
    cases=lambda: [Case("14 nodes, 2 logits, threshold 0.8", _prune_case(1, 14, 2, 0.8)),
                   Case("20 nodes, 3 logits, threshold 0.5", _prune_case(2, 20, 3, 0.5, scale=3.0)),
                   Case("10 nodes, 1 logit, threshold 0.95", _prune_case(3, 10, 1, 0.95, scale=0.2)),
                   Case("16 nodes, 2 logits, threshold 0.65", _prune_case(5, 16, 2, 0.65, scale=2.0))],
    mistakes=[
        Mistake("Normalise first: divide each row of |A| by its sum, so that each node splits its own "
                "(unit) pre-activation among its sources. Unnormalised, influence depends on the edges' units.",
                _pr_unnormalised),
        Mistake("Normalise the *absolute* values: |A| / |A|.sum(dim=1). A negative edge influences a node as "
                "much as a positive one.", _pr_signed),
        Mistake("Subtract the identity: (I − A)⁻¹ = I + A + A² + … counts each node's path to itself (the "
                "logits would count their own weight); B = (I − A)⁻¹ − I.", _pr_keeps_identity),
        Mistake("Normalise the rows (a target's incoming edges, dim=1), not the columns.", _pr_columns),
        Mistake("Influence sums paths of *every* length: (I − A)⁻¹ − I = A + A² + A³ + …, not just the direct "
                "edges A.", _pr_direct_only),
        Mistake("Keep the nodes *up to and including* the one that reaches the threshold (searchsorted gives "
                "its index), not only those strictly below it.", _pr_below_threshold),
        Mistake("Always keep the logit nodes (logit_weights > 0): nothing lies downstream of them, so their "
                "influence is 0, but they are what the graph explains.", _pr_drops_logits),
        Mistake("Rank nodes by their influence on the logits (through every path), not by the size of their "
                "outgoing edges.", _pr_by_size),
        Mistake("Clamp the row sums before dividing (A.sum(dim=1, keepdim=True).clamp(min=1e-10)): a node with no "
                "incoming edges (a token, the first layer's features) has a row of zeros, 0 / 0 = NaN, and the NaN "
                "spreads through the inverse to every influence (then only the logits are kept).", _pr_no_clamp),
    ],
    hint="A = |adjacency| with rows normalised to sum 1; influence = logit_weights @ (inv(I − A) − I); sort it "
         "descending, cumulative = cumsum / sum, cutoff = the value at searchsorted(cumulative, threshold); "
         "keep influence >= cutoff, and the logits (logit_weights > 0).")


# ----------------------------------------------------------------------------- swap_features
def _swap_case(seed, shape, remove, add, positions):
    def run(impl):
        g = seeded_generator(seed)
        acts = torch.relu(torch.randn(*shape, generator=g)) + 0.1 * (torch.rand(*shape, generator=g) < 0.5)
        values = torch.rand(len(add), generator=g) * 3 + 1
        before = {"acts": (acts, acts.clone()), "values": (values, values.clone())}
        out = impl(acts, list(remove), list(add), values, list(positions))
        return {"output": out, "acts and values unchanged": _unchanged(before)}
    return run


def _swap_everywhere(acts, remove, add, values, positions):
    out = acts.clone()
    out[..., remove] = 0
    out[..., add] = values
    return out


def _swap_no_zeroing(acts, remove, add, values, positions):
    out = acts.clone()
    for p in positions:
        out[..., p, add] = values
    return out


def _swap_in_place(acts, remove, add, values, positions):
    for p in positions:
        acts[..., p, remove] = 0
        acts[..., p, add] = values
    return acts


def _swap_adds(acts, remove, add, values, positions):
    out = acts.clone()
    for p in positions:
        out[..., p, remove] = 0
        out[..., p, add] += values
    return out


def _swap_order(acts, remove, add, values, positions):
    out = acts.clone()
    for p in positions:
        out[..., p, add] = values
        out[..., p, remove] = 0
    return out


check_swap_features = Exercise(
    "swap_features", swap_features,
    cases=lambda: [Case("8 positions, 12 features, swap at position 5", _swap_case(1, (8, 12), [1, 4], [2, 7], [5])),
                   Case("a batch [2, 6, 10], positions 0 and 1", _swap_case(2, (2, 6, 10), [0, 3, 4], [5, 6], [0, 1])),
                   Case("a feature both removed and added (edge case: it ends at its new value)",
                        _swap_case(3, (5, 9), [0, 3], [3, 6], [2, 4])),
                   Case("the last position, as -1", _swap_case(4, (3, 7, 8), [2], [1, 4, 5], [-1]))],
    mistakes=[
        Mistake("Swap only at the given positions (out[..., p, features] for p in positions): swapping at every "
                "position is another intervention.", _swap_everywhere),
        Mistake("Zero the source state's features (remove) first: adding the target's alone leaves both states "
                "in the residual stream.", _swap_no_zeroing),
        Mistake("Work on a copy (out = acts.clone()): the caller's activations must not change.", _swap_in_place),
        Mistake("Set the added features to values (=), do not add values to what they had (+=).", _swap_adds),
        Mistake("Zero first, then set: a feature in both remove and add must end at its new value.", _swap_order),
    ],
    hint="out = acts.clone(); for p in positions: out[..., p, remove] = 0, then out[..., p, add] = values "
         "(positions index the second-to-last axis, after any batch axes); return out.")


# ----------------------------------------------------------------------------- swap_success_rate
def _rate_case(seed, n, d_vocab, hits):
    """``hits`` of the ``n`` prompts predict their target (the target's logit is the largest)."""
    def run(impl):
        g = seeded_generator(seed)
        logits = torch.randn(n, d_vocab, generator=g)
        target = torch.randint(d_vocab, (n,), generator=g)
        for i in range(n):
            top = int(logits[i].argmax())
            if i < hits:
                target[i] = top
            elif target[i] == top:
                target[i] = int(logits[i].argsort()[-2])  # second place: a near miss, not a hit
        before = {"logits": (logits, logits.clone()), "target_tokens": (target, target.clone())}
        out = impl(logits, target)
        return {"output": out, "inputs unchanged": _unchanged(before)}
    return run


def _rate_count(logits, target_tokens):
    return float((logits.argmax(-1) == target_tokens).sum())


def _rate_probability(logits, target_tokens):
    return logits.softmax(-1).gather(-1, target_tokens[:, None]).mean().item()


def _rate_top3(logits, target_tokens):
    return (logits.topk(3, dim=-1).indices == target_tokens[:, None]).any(-1).float().mean().item()


def _rate_failures(logits, target_tokens):
    return 1 - swap_success_rate(logits, target_tokens)


def _rate_positive_logit(logits, target_tokens):
    return (logits.gather(-1, target_tokens[:, None])[:, 0] > 0).float().mean().item()


check_swap_success_rate = Exercise(
    "swap_success_rate", swap_success_rate,
    cases=lambda: [Case("10 prompts, 7 succeed", _rate_case(1, 10, 15, 7)),
                   Case("6 prompts, none succeed (edge case: near misses)", _rate_case(2, 6, 9, 0)),
                   Case("13 prompts, all succeed", _rate_case(3, 13, 20, 13)),
                   Case("4 prompts, 1 succeeds", _rate_case(4, 4, 11, 1))],
    mistakes=[
        Mistake("A rate is a fraction in [0, 1]: the mean over prompts, not the count.", _rate_count),
        Mistake("Success is the model's *top-1* prediction being the target (argmax), not the target's average "
                "probability.", _rate_probability),
        Mistake("Only the top-1 prediction counts (argmax), not the target being among the top few.", _rate_top3),
        Mistake("The success rate is the fraction of prompts that *do* predict the target.", _rate_failures),
        Mistake("Compare the target with the top prediction (logits.argmax(-1)): a positive logit is not a "
                "prediction.", _rate_positive_logit),
    ],
    hint="(logits.argmax(dim=-1) == target_tokens).float().mean().item(): the fraction of prompts whose top-1 next "
         "token is the target.")


# ----------------------------------------------------------------------------- normalized_mse
def _nmse_case(seed, lead, n_positions, d_model):
    """``variance`` is the training set's (not this batch's): a positive value per layer."""
    def run(impl):
        g = seeded_generator(seed)
        target = torch.randn(*lead, n_positions, d_model, generator=g) * 2 + 1
        out = (target + torch.randn(*lead, n_positions, d_model, generator=g)).requires_grad_()
        variance = torch.rand(lead, generator=g) * 3 + 2
        before = {"target": (target, target.clone()), "variance": (variance, variance.clone())}
        loss = impl(out, target, variance)
        return {"loss": loss, "inputs unchanged": _unchanged(before)}, {"out": out}
    return run


def _nmse_mean_d(out, target, variance):
    return ((out - target) ** 2).mean(-1).mean(-1) / variance


def _nmse_no_variance(out, target, variance):
    return ((out - target) ** 2).sum(-1).mean(-1)


def _nmse_batch_variance(out, target, variance):
    return ((out - target) ** 2).sum(-1).mean(-1) / target.var(-2).sum(-1)


def _nmse_one_number(out, target, variance):
    return (((out - target) ** 2).sum(-1).mean(-1) / variance).sum()


def _nmse_sum_positions(out, target, variance):
    return ((out - target) ** 2).sum(-1).sum(-1) / variance


def _nmse_root(out, target, variance):
    return (((out - target) ** 2).sum(-1).mean(-1) / variance).sqrt()


def _nmse_detached(out, target, variance):
    return ((out.detach() - target) ** 2).sum(-1).mean(-1) / variance


check_normalized_mse = Exercise(
    "normalized_mse", normalized_mse,
    cases=lambda: [gradient_case("one layer: 6 positions, d_model 5", _nmse_case(1, (), 6, 5)),
                   gradient_case("4 layers at once: [4, 7, 3]", _nmse_case(2, (4,), 7, 3), seed=1),
                   gradient_case("one position (edge case), 2 layers", _nmse_case(3, (2,), 1, 4), seed=2)],
    mistakes=[
        Mistake("Sum the squared error over d_model (the squared distance between two vectors), then average "
                "over positions: .mean() over d_model divides by d_model once more.", _nmse_mean_d),
        Mistake("Divide by the layer's output variance: the normalized MSE is a share of the variance (0 is "
                "perfect, 1 is no better than predicting the mean output).", _nmse_no_variance),
        Mistake("Divide by the variance you are given (measured on all the training positions), not this "
                "batch's: a batch's variance is noisy, and zero for a single position.", _nmse_batch_variance),
        Mistake("Return one loss per layer (shape [n_layers], or a number for one layer): the training sums "
                "them, and the notebook prints each layer's.", _nmse_one_number),
        Mistake("Average over positions (.mean), do not sum: the loss must not grow with the batch size.",
                _nmse_sum_positions),
        Mistake("No square root: the normalized MSE is squared error over variance (an R² style share), not "
                "a root-mean-square.", _nmse_root),
        Mistake("Keep the loss differentiable: no .detach(), .item(), .data or torch.no_grad() — the notebook "
                "trains the transcoders through this function.", _nmse_detached),
    ],
    hint="((out - target) ** 2).sum(-1) is each position's squared error; .mean(-1) averages over positions; "
         "divide by variance. One value per layer, differentiable.")
