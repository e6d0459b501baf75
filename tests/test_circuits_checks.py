"""Notebook 05's exercise checks meet the contract (tests/check_contract.py): references and correct
alternatives pass, plausible wrong implementations get their hint, junk never crashes a check."""
import numpy as np
import torch
from check_contract import Contract, contract_tests

from course_lib.circuits import attribution as at
from course_lib.circuits import checks as ch
from course_lib.circuits import interventions as iv
from course_lib.circuits import transcoders as tc


# ----------------------------------------------------------------------------- transcoder_forward
def _tc_relu_after_topk(x, W_enc, b_enc, W_dec, b_dec, k):  # the same map: TopK first, then ReLU
    pre = x @ W_enc + b_enc
    top = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return acts, acts @ W_dec + b_dec


def _tc_mask(x, W_enc, b_enc, W_dec, b_dec, k):
    acts = torch.relu(torch.einsum("...d,df->...f", x, W_enc) + b_enc)
    kth = acts.topk(k, dim=-1).values[..., -1:]
    acts = acts * (acts >= kth)
    return acts, torch.einsum("...f,fd->...d", acts, W_dec) + b_dec


def _tc_detached(x, W_enc, b_enc, W_dec, b_dec, k):
    acts, _ = tc.transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)
    return acts, acts.detach() @ W_dec + b_dec


def _tc_data_decode(x, W_enc, b_enc, W_dec, b_dec, k):
    acts, _ = tc.transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)
    return acts, acts.data @ W_dec + b_dec


@torch.no_grad()
def _tc_no_grad(x, W_enc, b_enc, W_dec, b_dec, k):
    return tc.transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)


def _tc_kthvalue_alt(x, W_enc, b_enc, W_dec, b_dec, k):
    acts = torch.relu(x @ W_enc + b_enc)
    below = acts.kthvalue(acts.shape[-1] - k, dim=-1, keepdim=True).values
    acts = acts * (acts > below)
    return acts, acts @ W_dec + b_dec


def _tc_hardcoded_k(x, W_enc, b_enc, W_dec, b_dec, k):
    return tc.transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, 3)


def _tc_abs_topk(x, W_enc, b_enc, W_dec, b_dec, k):
    pre = x @ W_enc + b_enc
    idx = pre.abs().topk(k, dim=-1).indices
    acts = torch.zeros_like(pre).scatter(-1, idx, torch.relu(pre.gather(-1, idx)))
    return acts, acts @ W_dec + b_dec


def _tc_swapped_outputs(x, W_enc, b_enc, W_dec, b_dec, k):
    acts, out = tc.transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k)
    return out, acts


def _tc_k_plus_one(x, W_enc, b_enc, W_dec, b_dec, k):
    return tc.transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k + 1)


# ----------------------------------------------------------------------------- clt_decode
def _clt_alt_by_source(acts_by_layer, W_dec, b_dec):
    n = len(W_dec)
    out = b_dec.reshape(n, *[1] * (acts_by_layer[0].ndim - 1), -1).expand(n, *acts_by_layer[0].shape[:-1], -1)
    for l in range(n):  # what layer l's features write, to layers l, l + 1, ...
        written = torch.einsum("...f,fjd->j...d", acts_by_layer[l], W_dec[l])
        out = out + torch.cat([torch.zeros_like(out[:l]), written])
    return out


def _clt_alt_padded(acts_by_layer, W_dec, b_dec):
    n = len(W_dec)
    outs = []
    for j in range(n):
        terms = [acts_by_layer[l] @ W_dec[l][:, j - l] for l in range(j + 1)]
        outs.append(torch.stack(terms).sum(0) + b_dec[j])
    return torch.stack(outs)


def _clt_absolute_slot(acts_by_layer, W_dec, b_dec):
    outs = []
    for j in range(len(W_dec)):
        out = b_dec[j]
        for l in range(j + 1):
            out = out + acts_by_layer[l] @ W_dec[l][:, j, :]
        outs.append(out)
    return torch.stack(outs)


def _clt_list(acts_by_layer, W_dec, b_dec):
    return list(tc.clt_decode(acts_by_layer, W_dec, b_dec))


def _clt_detached(acts_by_layer, W_dec, b_dec):
    return tc.clt_decode([a.detach() for a in acts_by_layer], W_dec, b_dec)


def _clt_first_bias(acts_by_layer, W_dec, b_dec):
    return tc.clt_decode(acts_by_layer, W_dec, b_dec[:1].expand_as(b_dec))


def _clt_later_layers(acts_by_layer, W_dec, b_dec):  # features write to earlier layers: the direction reversed
    n = len(W_dec)
    outs = []
    for j in range(n):
        out = b_dec[j]
        for l in range(j, n):
            out = out + acts_by_layer[l] @ W_dec[l][:, min(l - j, W_dec[l].shape[1] - 1)]
        outs.append(out)
    return torch.stack(outs)


# ----------------------------------------------------------------------------- direct_edge
def _de_alt_matrix(activation, w_dec, w_enc, ln_scale, path=None):
    d = w_dec.shape[0]
    centring = torch.eye(d) - torch.full((d, d), 1.0 / d)
    M = torch.eye(d) if path is None else path
    return torch.dot(activation * w_dec @ M @ centring, w_enc) / ln_scale


def _de_alt_read_side(activation, w_dec, w_enc, ln_scale, path=None):
    read = w_enc - w_enc.mean()  # centring is symmetric: move it to the read side
    if path is not None:
        read = path @ read
    return activation * torch.einsum("d,d->", w_dec, read) / ln_scale


def _de_centre_before_path(activation, w_dec, w_enc, ln_scale, path=None):
    write = activation * w_dec
    write = write - write.mean()
    if path is not None:
        write = write @ path
    return (write / ln_scale) @ w_enc


def _de_w_dec_read(activation, w_dec, w_enc, ln_scale, path=None):
    return at.direct_edge(activation, w_dec, w_dec, ln_scale, path)


def _de_sqrt_scale(activation, w_dec, w_enc, ln_scale, path=None):
    return at.direct_edge(activation, w_dec, w_enc, ln_scale ** 0.5, path)


def _de_in_place(activation, w_dec, w_enc, ln_scale, path=None):
    w_dec.mul_(activation)
    return at.direct_edge(1.0, w_dec, w_enc, ln_scale, path)


def _de_no_default(activation, w_dec, w_enc, ln_scale, path):  # path=None is the documented default
    return at.direct_edge(activation, w_dec, w_enc, ln_scale, path)


def _de_read_side_after_path_alt(activation, w_dec, w_enc, ln_scale, path=None):
    write = activation * w_dec if path is None else (activation * w_dec) @ path
    return torch.dot(write, w_enc - w_enc.mean()) / ln_scale


# ----------------------------------------------------------------------------- edge_sum_error
def _es_alt_loop(adjacency, bias, preactivation):
    return torch.stack([(row.sum() + b - p).abs() for row, b, p in zip(adjacency, bias, preactivation)])


def _es_alt_matmul(adjacency, bias, preactivation):
    return torch.abs(adjacency @ torch.ones(adjacency.shape[1]) - (preactivation - bias))


def _es_relative(adjacency, bias, preactivation):
    return (adjacency.sum(1) + bias - preactivation).abs() / preactivation.abs().clamp(min=1e-6)


def _es_max(adjacency, bias, preactivation):
    return (adjacency.sum(1) + bias - preactivation).abs().max()


def _es_squared(adjacency, bias, preactivation):
    return (adjacency.sum(1) + bias - preactivation) ** 2


def _es_in_place(adjacency, bias, preactivation):
    preactivation -= bias
    return (adjacency.sum(1) - preactivation).abs()


# ----------------------------------------------------------------------------- prune_by_influence
def _pr_alt_power_series(adjacency, logit_weights, threshold):
    A = adjacency.abs()
    A = A / A.sum(dim=1, keepdim=True).clamp(min=1e-10)
    influence, current = torch.zeros_like(logit_weights), logit_weights @ A
    while current.abs().sum() > 0:  # a DAG: A is nilpotent, the series ends
        influence, current = influence + current, current @ A
    order = influence.argsort(descending=True)
    cumulative = influence[order].cumsum(0) / influence.sum()
    n_keep = int((cumulative < threshold).sum()) + 1
    keep = torch.zeros(len(influence), dtype=torch.bool)
    keep[order[:n_keep]] = True
    return keep | (logit_weights > 0)


def _pr_alt_numpy(adjacency, logit_weights, threshold):
    A = np.abs(adjacency.numpy().astype(np.float64))
    A = A / np.maximum(A.sum(1, keepdims=True), 1e-10)
    n = len(A)
    influence = np.linalg.solve((np.eye(n) - A).T, logit_weights.numpy()) - logit_weights.numpy()
    ranked = np.sort(influence)[::-1]
    cumulative = np.cumsum(ranked) / ranked.sum()
    cutoff = ranked[min(int(np.searchsorted(cumulative, threshold)), n - 1)]
    return torch.from_numpy((influence >= cutoff - 1e-12) | (logit_weights.numpy() > 0))


def _pr_unclamped_rows(adjacency, logit_weights, threshold):
    A = adjacency.abs()
    A = A / A.sum(dim=1, keepdim=True)  # rows of zeros: 0 / 0
    eye = torch.eye(len(A))
    return ch._keep_top(logit_weights @ (torch.linalg.inv(eye - A) - eye), logit_weights, threshold)


def _pr_ascending(adjacency, logit_weights, threshold):
    influence = ch._influence_rows(ch._normalise(adjacency.abs()), logit_weights)
    ranked = influence.sort().values
    cumulative = ranked.cumsum(0) / ranked.sum()
    cutoff = ranked[min(int(torch.searchsorted(cumulative, threshold)), len(ranked) - 1)]
    return (influence >= cutoff) | (logit_weights > 0)


def _pr_alt_matrix_powers(adjacency, logit_weights, threshold):
    A = ch._normalise(adjacency.abs())
    B = sum(torch.linalg.matrix_power(A, i) for i in range(1, len(A) + 1))  # a DAG: the series ends
    return ch._keep_top(logit_weights @ B, logit_weights, threshold)


def _pr_transposed(adjacency, logit_weights, threshold):
    A = ch._normalise(adjacency.abs())
    eye = torch.eye(len(A))
    influence = (torch.linalg.inv(eye - A) - eye) @ logit_weights
    return ch._keep_top(influence, logit_weights, threshold)


def _pr_uniform_logits(adjacency, logit_weights, threshold):
    ones = (logit_weights > 0).float()
    return ch._keep_top(ch._influence_rows(ch._normalise(adjacency.abs()), ones), logit_weights, threshold)


def _pr_hardcoded(adjacency, logit_weights, threshold):
    return at.prune_by_influence(adjacency, logit_weights, 0.8)


def _pr_returns_influence(adjacency, logit_weights, threshold):
    return ch._influence_rows(ch._normalise(adjacency.abs()), logit_weights)


def _pr_top_fraction_of_nodes(adjacency, logit_weights, threshold):  # keeps 80 % of the nodes, not of the influence
    influence = ch._influence_rows(ch._normalise(adjacency.abs()), logit_weights)
    keep = torch.zeros(len(influence), dtype=torch.bool)
    keep[influence.argsort(descending=True)[:int(threshold * len(influence))]] = True
    return keep | (logit_weights > 0)


# ----------------------------------------------------------------------------- swap_features
def _swap_alt_index_tensors(acts, remove, add, values, positions):
    out = acts.clone()
    pos = torch.as_tensor(positions) % acts.shape[-2]
    mask = torch.zeros(acts.shape[-2], acts.shape[-1], dtype=torch.bool)
    mask[pos[:, None], torch.as_tensor(remove)[None, :]] = True
    out = out.masked_fill(mask, 0.0)
    new = torch.zeros(acts.shape[-1])
    new[torch.as_tensor(add)] = values
    chosen = torch.zeros(acts.shape[-2], acts.shape[-1], dtype=torch.bool)
    chosen[pos[:, None], torch.as_tensor(add)[None, :]] = True
    return torch.where(chosen, new, out)


def _swap_alt_transpose(acts, remove, add, values, positions):
    out = acts.clone().transpose(-2, -1)  # [..., d_sae, pos]
    for p in positions:
        out[..., remove, p] = 0.0
        out[..., add, p] = values
    return out.transpose(-2, -1)


def _swap_first_axis(acts, remove, add, values, positions):  # crashes on a batch: the general hint names the axis
    out = acts.clone()
    for p in positions:
        out[p, remove] = 0
        out[p, add] = values
    return out


def _swap_first_position_only(acts, remove, add, values, positions):
    return iv.swap_features(acts, remove, add, values, positions[:1])


def _swap_zero_all(acts, remove, add, values, positions):  # zeroes every feature at the position
    out = acts.clone()
    for p in positions:
        out[..., p, :] = 0
        out[..., p, add] = values
    return out


def _swap_values_reversed(acts, remove, add, values, positions):
    return iv.swap_features(acts, remove, add, values.flip(0), positions)


# ----------------------------------------------------------------------------- swap_success_rate
def _rate_alt_numpy(logits, target_tokens):
    return float(np.mean(np.argmax(logits.numpy(), axis=1) == target_tokens.numpy()))


def _rate_alt_max(logits, target_tokens):
    best = logits.max(dim=-1).values
    return (logits[torch.arange(len(logits)), target_tokens] >= best).float().mean()


def _rate_per_prompt(logits, target_tokens):
    return (logits.argmax(-1) == target_tokens).float()


def _rate_argmin(logits, target_tokens):
    return (logits.argmin(-1) == target_tokens).float().mean().item()


def _rate_first_prompt(logits, target_tokens):
    return float(logits[0].argmax() == target_tokens[0])


CASES = {
    "transcoder_forward": Contract(ch.check_transcoder_forward, tc.transcoder_forward, wrongs=[
        (ch._tc_no_relu, "Apply the ReLU"),
        (ch._tc_wrong_axis, "per token"),
        (ch._tc_no_b_dec, "decoder bias b_dec"),
        (ch._tc_no_b_enc, "encoder bias b_enc"),
        (ch._tc_no_topk, "Keep only the k largest"),
        (ch._tc_dense_decode, "Decode the sparse activations"),
        (ch._tc_sae_centring, "SAE's habit"),
        (_tc_detached, "not a detached copy"),
        (_tc_data_decode, "not a detached copy"),
        (_tc_no_grad, None),
        (_tc_hardcoded_k, None),
        (_tc_abs_topk, None),
        (_tc_swapped_outputs, None),
        (_tc_k_plus_one, None),
    ], alternatives=[_tc_relu_after_topk, _tc_mask, _tc_kthvalue_alt]),
    "clt_decode": Contract(ch.check_clt_decode, tc.clt_decode, wrongs=[
        (ch._clt_same_layer_only, "every later one"),
        (ch._clt_earlier_only, "Include l = j"),
        (ch._clt_no_bias, "Add b_dec[j]"),
        (ch._clt_bias_per_source, "once per output layer"),
        (ch._clt_summed_slots, "not their sum"),
        (_clt_absolute_slot, None),
        (_clt_list, None),
        (_clt_detached, None),
        (_clt_first_bias, None),
        (_clt_later_layers, None),
    ], alternatives=[_clt_alt_by_source, _clt_alt_padded]),
    "direct_edge": Contract(ch.check_direct_edge, at.direct_edge, wrongs=[
        (ch._de_no_scale, "Divide by the frozen LayerNorm scale"),
        (ch._de_times_scale, "does not multiply"),
        (ch._de_no_centring, "centres first"),
        (ch._de_own_norm, "contribution's own norm"),
        (ch._de_path_transposed, "Row-vector convention"),
        (ch._de_no_activation, "scale the decoder vector"),
        (ch._de_no_path, "send the write through it"),
        (_de_centre_before_path, None),
        (_de_w_dec_read, None),
        (_de_sqrt_scale, None),
        (_de_in_place, None),
        (_de_no_default, None),
    ], alternatives=[_de_alt_matrix, _de_alt_read_side, _de_read_side_after_path_alt]),
    "edge_sum_error": Contract(ch.check_edge_sum_error, at.edge_sum_error, wrongs=[
        (lambda a, b, p: (a.sum(0) + b - p).abs(), "*incoming* edges are its row"),
        (lambda a, b, p: (a.sum(1) - p).abs(), "Add each node's bias"),
        (lambda a, b, p: (a.sum(1) - b - p).abs(), "do not subtract it"),
        (lambda a, b, p: (a.abs().sum(1) + b - p).abs(), "Sum the signed edges"),
        (lambda a, b, p: a.sum(1) + b - p, "Return the absolute error"),
        (_es_relative, None),
        (_es_max, None),
        (_es_squared, None),
        (_es_in_place, None),
    ], alternatives=[_es_alt_loop, _es_alt_matmul]),
    "prune_by_influence": Contract(ch.check_prune_by_influence, at.prune_by_influence, wrongs=[
        (ch._pr_unnormalised, "Normalise first"),
        (ch._pr_signed, "*absolute* values"),
        (ch._pr_keeps_identity, "Subtract the identity"),
        (ch._pr_columns, "not the columns"),
        (ch._pr_direct_only, "paths of *every* length"),
        (ch._pr_below_threshold, "up to and including"),
        (ch._pr_drops_logits, "Always keep the logit nodes"),
        (ch._pr_by_size, "not by the size"),
        (_pr_transposed, None),
        (_pr_uniform_logits, None),
        (_pr_hardcoded, None),
        (_pr_returns_influence, None),
        (_pr_top_fraction_of_nodes, None),
        (_pr_unclamped_rows, "Clamp the row sums"),
        (_pr_ascending, None),
    ], alternatives=[_pr_alt_power_series, _pr_alt_numpy, _pr_alt_matrix_powers]),
    "swap_features": Contract(ch.check_swap_features, iv.swap_features, wrongs=[
        (ch._swap_everywhere, "Swap only at the given positions"),
        (ch._swap_no_zeroing, "Zero the source state's features"),
        (ch._swap_in_place, "Work on a copy"),
        (ch._swap_adds, "do not add values"),
        (ch._swap_order, "Zero first, then set"),
        (_swap_first_axis, "second-to-last axis"),
        (_swap_first_position_only, None),
        (_swap_zero_all, None),
        (_swap_values_reversed, None),
    ], alternatives=[_swap_alt_index_tensors, _swap_alt_transpose]),
    "swap_success_rate": Contract(ch.check_swap_success_rate, iv.swap_success_rate, wrongs=[
        (ch._rate_count, "not the count"),
        (ch._rate_probability, "average probability"),
        (ch._rate_top3, "among the top few"),
        (ch._rate_failures, "*do* predict"),
        (ch._rate_positive_logit, "a positive logit"),
        (_rate_per_prompt, None),
        (_rate_argmin, None),
        (_rate_first_prompt, None),
    ], alternatives=[_rate_alt_numpy, _rate_alt_max]),
}
globals().update(contract_tests(CASES))


# ----------------------------------------------------------------------------- normalized_mse (the transcoder's loss)
def _nmse_mse_loss(out, target, variance):  # torch's own MSE, unreduced
    return torch.nn.functional.mse_loss(out, target, reduction="none").sum(-1).mean(-1) / variance


def _nmse_einsum(out, target, variance):
    error = out - target
    return torch.einsum("...pd,...pd->...", error, error) / error.shape[-2] / variance


def _nmse_item(out, target, variance):
    return torch.tensor(((out - target) ** 2).sum(-1).mean(-1).tolist()) / variance


def _nmse_abs(out, target, variance):
    return (out - target).abs().sum(-1).mean(-1) / variance


def _nmse_in_place(out, target, variance):
    target -= out.detach()
    return (target ** 2).sum(-1).mean(-1) / variance


def _nmse_wrong_axis(out, target, variance):
    return ((out - target) ** 2).sum(-1).mean(0) / variance


LOSS_CASES = {
    "normalized_mse": Contract(ch.check_normalized_mse, ch.normalized_mse, wrongs=[
        (ch._nmse_mean_d, "Sum the squared error over d_model"),
        (ch._nmse_no_variance, "Divide by the layer's output variance"),
        (ch._nmse_batch_variance, "the variance you are given"),
        (ch._nmse_one_number, "one loss per layer"),
        (ch._nmse_sum_positions, "Average over positions"),
        (ch._nmse_root, "No square root"),
        (ch._nmse_detached, "differentiable"),
        (_nmse_item, "differentiable"),
        (_nmse_abs, None),
        (_nmse_in_place, None),
        (_nmse_wrong_axis, None),
    ], alternatives=[_nmse_mse_loss, _nmse_einsum]),
}
CASES.update(LOSS_CASES)
globals().update(contract_tests(CASES))  # again, now with the loss
