# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 — Transcoders, a replacement model, and the two-hop circuit Dallas → Texas → Austin
#
# *Understanding the Mechanism of LLMs*, lecture part 1: a **cross-layer transcoder** builds an
# interpretable **replacement model**; its features reveal multi-step reasoning — *Dallas → Texas →
# Austin* —; and the limits: the reconstruction errors are large, and "an approximate explanation
# is not a true explanation".
#
# Anthropic showed this on one prompt of a model nobody outside can run (Ameisen et al. 2025,
# *Circuit Tracing*; Lindsey et al. 2025, *On the Biology of a Large Language Model*). Here we do it
# on a laptop, on the world LM, for **every** city and state of its world, and check each step
# against the world's ground truth.
#
# | part | what | measured by |
# |---|---|---|
# | 1 | why transcoders; one trained live | exercises 1–2 (TopK transcoder forward, its loss), normalized MSE |
# | 2 | a cross-layer transcoder (CLT) next to per-layer transcoders | exercise 3 (cross-layer decode); normalized MSE, L0, dead fraction, top-1 agreement and CE with every MLP replaced, error share |
# | 3 | the local replacement model and attribution graphs | exercises 4–6 (a direct edge, the edge-sum check, pruning by influence); replacement and completeness scores |
# | 4 | Dallas → Texas → Austin: state features, suppression, swaps for every (city, other state) | exercises 7–8 (the swap, its success rate) |
# | 5 | composition or shortcut? held-out vs trained cities; CLT vs per-layer graphs | path lengths, state-feature influence |
# | 6 | limitations, measured | error share, graph-predicted vs real intervention effects |
#
# circuit-tracer (the published implementation) needs a GPU-sized model from the hub and cannot be
# installed with this course's pins (it requires transformers ≤ 4.57; TransformerLens 3 needs ≥ 5),
# so `course_lib.circuits` builds the same computations, following its code, small enough to read.

# %%
import matplotlib.pyplot as plt
import torch

from course_lib import set_seed
from course_lib.circuits import (TrainConfig, attribute, check_clt_decode, check_direct_edge, check_edge_sum_error,
                                 check_normalized_mse, check_prune_by_influence, check_swap_features,
                                 check_swap_success_rate, check_transcoder_forward, completeness_score, draw,
                                 eval_tokens, fidelity,
                                 frozen_path, input_hook, kinds_table, label_features, load_clt, load_transcoders,
                                 mean_path_length, node_influence, output_hook, path_lengths, predicted_ablation_effects,
                                 probe_labels, prune, real_ablation_effects, replacement_hooks, replacement_score,
                                 run_swapped,
                                 shipped_metrics, state_features, summarize, swap_table, train_transcoders,
                                 training_activations, two_hop_prompts)
from course_lib.world import load_world_model

torch.set_num_threads(1)
set_seed(0)

model = load_world_model()
DALLAS = "The capital of the state containing Dallas is"
print(model.to_str_tokens(DALLAS))
with torch.no_grad():
    probs = model(DALLAS)[0, -1].softmax(-1)
top = probs.topk(3)
print("next token:", ", ".join(f"{model.tokenizer.convert_ids_to_tokens(int(i))} {p:.3f}"
                               for p, i in zip(top.values, top.indices)))

# %% [markdown]
# ## 1. Why transcoders
#
# An SAE explains a **state**: it rewrites one activation vector as a sparse sum of features. A
# circuit is about **computation**: which features, at which layer, *cause* which others. Through an
# MLP that question has no linear answer — a GELU of 512 neurons sits between any two features.
#
# A **transcoder** replaces the computation itself: it reads the MLP's input and predicts the MLP's
# **output** through sparse features, `out = TopK(ReLU(x W_enc + b_enc)) W_dec + b_dec`. Put one in
# place of every MLP and the only nonlinearities left are the features' own activations (and
# attention and LayerNorm, which we will freeze on a prompt in part 3): paths from feature to feature
# become **linear**, so every edge gets a number.
#
# Where it reads and writes: the input is `blocks.L.ln2.hook_normalized` (the residual stream after
# LayerNorm's centring and scaling, before its own weight and bias: those are folded into `W_enc`),
# the output is `blocks.L.hook_mlp_out`. TopK keeps exactly the `k` largest ReLU pre-activations
# per position (Gao et al. 2024), so L0 = k by construction.
#
# ### Exercise 1 — a TopK transcoder's forward pass
# `x` is `[..., d_in]`. Return `(acts, out)`: `acts` = ReLU(`x @ W_enc + b_enc`) with only the `k`
# largest entries of each row kept (every other entry 0), `out = acts @ W_dec + b_dec`. The
# notebook trains through your function below, so keep it differentiable (no in-place edits of
# tensors that need gradients).

# %%
def transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k):
    # BEGIN SOLUTION: ReLU(x @ W_enc + b_enc), keep the top k of each row (scatter into zeros), decode
    acts = torch.relu(x @ W_enc + b_enc)
    top = acts.topk(k, dim=-1)
    acts = torch.zeros_like(acts).scatter(-1, top.indices, top.values)
    return acts, acts @ W_dec + b_dec
    # END SOLUTION


transcoder_forward = check_transcoder_forward(transcoder_forward)

# %% [markdown]
# ### Exercise 2 — the transcoder's loss
# A transcoder is trained to predict the MLP's output, so its loss is the **normalized MSE**: the
# squared error of each position (summed over `d_model`), averaged over positions, divided by the
# variance of that layer's MLP output (summed over `d_model`, measured once on all the training
# positions). 0 is perfect; 1 is no better than always predicting the mean output. Dividing by the
# variance makes every layer count alike, although later MLPs write larger outputs. `out` and
# `target` are `[..., n_positions, d_model]` (all four layers at once: `[4, n_positions, d_model]`),
# `variance` is `[...]`; return one loss per layer. The live training below runs through your
# function, so keep it differentiable.

# %%
def normalized_mse(out, target, variance):
    # BEGIN SOLUTION: squared error summed over d_model, mean over positions, divided by the variance
    return ((out - target) ** 2).sum(-1).mean(-1) / variance
    # END SOLUTION


normalized_mse = check_normalized_mse(normalized_mse)

# %% [markdown]
# **One trained live.** Small transcoders (256 features, k = 8) on all four MLPs, 300 Adam steps on the
# MLP inputs and outputs of 800 world documents, each step minimising *your* `normalized_mse`, summed
# over layers. The shipped ones (part 2) are the same recipe at 1024 features, k = 16 and 1500 steps,
# trained by `python -m course_lib.circuits train`. We then run *your* `transcoder_forward` with the
# live weights on the Dallas prompt.

# %% tags=["trained"] tolerance={"rtol": 0.25, "atol": 0.02}
live_config = TrainConfig(d_sae=256, k=8, steps=300, batch_size=512, train_docs=800, seed=0)
xs, ys, _ = training_activations(model, live_config)
live, _ = train_transcoders(xs, ys, live_config, progress=False, loss=normalized_mse)  # about 10 s on one core
print(f"trained on {xs.shape[1]} positions")
del xs, ys
with torch.no_grad():
    _, cache = model.run_with_cache(DALLAS, names_filter=lambda n: n.endswith(("ln2.hook_normalized", "hook_mlp_out")))
live_nmse = []
for l, tc in enumerate(live):
    x, y = cache[input_hook(l)][0, 1:], cache[output_hook(l)][0, 1:]  # text positions (not <bos>)
    with torch.no_grad():
        acts, out = transcoder_forward(x, tc.W_enc, tc.b_enc, tc.W_dec, tc.b_dec, tc.k)
    live_nmse.append(float(((out - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()))
    print(f"layer {l}: {int((acts > 0).sum(-1).max())} active features per position, "
          f"normalized MSE on the Dallas prompt {live_nmse[-1]:.3f}")
assert max(live_nmse) < 0.5, live_nmse

# %% [markdown]
# ## 2. A cross-layer transcoder
#
# In a per-layer transcoder a feature lives in one MLP. But a model can compute one thing with
# several MLPs in a row, and then a per-layer dictionary must copy the same feature into every
# layer. A **cross-layer transcoder** (CLT; Ameisen et al. 2025) lets a feature read the stream at
# its layer `l` once and **write to the outputs of MLP `l` and every later MLP**: `W_dec[l]` has shape
# `[d_sae, n_layers − l, d_model]`, slot `j − l` being what layer-`l` features write into MLP `j`.
# The paper trains with JumpReLU and the loss "reconstruction + λ Σ tanh(c·‖W_dec‖·a)"; the shipped CLT
# is TopK at the same k per layer as the per-layer transcoders (matched L0), which needs no
# sparsity coefficient.
#
# ### Exercise 3 — the CLT's cross-layer decode
# `acts_by_layer[l]` is `[..., d_sae]`, `W_dec[l]` is `[d_sae, n_layers − l, d_model]`, `b_dec` is
# `[n_layers, d_model]`. Return `[n_layers, ..., d_model]`: for every layer `j`,
# `b_dec[j] + Σ_{l ≤ j} acts_by_layer[l] @ W_dec[l][:, j − l, :]`.

# %%
def clt_decode(acts_by_layer, W_dec, b_dec):
    # BEGIN SOLUTION: for each output layer j: b_dec[j] plus, for l <= j, acts_by_layer[l] @ W_dec[l][:, j - l, :]
    n_layers = len(W_dec)
    outs = []
    for j in range(n_layers):
        out = b_dec[j]
        for l in range(j + 1):
            out = out + acts_by_layer[l] @ W_dec[l][:, j - l, :]
        outs.append(out)
    return torch.stack(outs)
    # END SOLUTION


clt_decode = check_clt_decode(clt_decode)

# %% [markdown]
# **Fidelity, per layer and whole.** Both shipped replacements on held-out documents (BOS and padding
# excluded from every figure). Per layer, each transcoder on the real model's MLP input: normalized
# MSE, L0, dead fraction (features that never fire here) and the **error share** (the squared norm of
# what it misses over that of the MLP output). Whole: the **replacement model**, every MLP replaced at
# once, each transcoder reading the replacement's own stream so errors compound: top-1 agreement with
# the real model's next-token prediction, the CE increase and the KL divergence (nats per token).

# %% tags=["trained"] tolerance={"rtol": 0.05, "atol": 0.002}
transcoders, clt = load_transcoders(), load_clt()
tokens = eval_tokens(model, n_docs=300)
with torch.no_grad():
    acts, decoded = clt([cache[input_hook(l)][0, 1:] for l in range(clt.n_layers)])
    mine = clt_decode(acts, list(clt.W_dec), clt.b_dec)
print(f"your clt_decode = the CLT's output on the Dallas prompt: {torch.allclose(mine, decoded, atol=1e-5)}")
fid = {"per-layer": fidelity(model, transcoders, tokens), "cross-layer": fidelity(model, clt, tokens)}
print(f"{fid['per-layer']['positions']} text positions, {fid['per-layer']['predictions']} predictions; "
      f"the real model's CE {fid['per-layer']['CE_clean']:.3f}")
print(f"{'':12s} {'normalized MSE by layer':>26s} {'L0':>5s} {'dead':>19s} {'error share':>21s} "
      f"{'top-1':>6s} {'CE +':>7s} {'KL':>6s}")
for name, f in fid.items():
    row = lambda key, fmt: " ".join(format(layer[key], fmt) for layer in f["layers"])
    print(f"{name:12s} {row('nmse', '.3f'):>26s} {sum(x['L0'] for x in f['layers']) / 4:5.1f} {row('dead', '.2f'):>19s} "
          f"{row('error_share', '.3f'):>21s} {f['top1_agreement']:6.3f} {f['CE_increase']:7.4f} {f['KL']:6.4f}")

# %% [markdown]
# The training script measured the same on 600 documents, for two seeds (seed 0 is shipped; seed 1
# gives the spread, which sets the tolerances of the asserts below):

# %%
shipped = shipped_metrics()
for kind in ("per_layer", "clt"):
    for seed, m in shipped[kind]["seeds"].items():
        print(f"{kind:9s} seed {seed}: normalized MSE " + " ".join(f"{x['nmse']:.4f}" for x in m["layers"])
              + f", top-1 {m['top1_agreement']:.4f}, CE increase {m['CE_increase']:.4f}, {m['seconds']:.0f} s")

# %% tags=["trained"] tolerance={"rtol": 0.05, "atol": 0.002}
pl, cl = fid["per-layer"], fid["cross-layer"]
mean_nmse = {name: sum(x["nmse"] for x in f["layers"]) / 4 for name, f in fid.items()}
print(f"mean normalized MSE: per-layer {mean_nmse['per-layer']:.4f}, CLT {mean_nmse['cross-layer']:.4f}")
assert all(x["nmse"] < 0.06 for x in pl["layers"] + cl["layers"]), "every layer reconstructed to < 6 % (seeds: < 4 %)"
assert pl["top1_agreement"] > 0.92 and cl["top1_agreement"] > 0.92
assert pl["CE_increase"] < 0.01 and cl["CE_increase"] < 0.01

# %% [markdown]
# Both replacements predict the MLP outputs to a few percent of their variance, and the model with
# all four MLPs replaced keeps the real model's next token at about 19 of 20 positions. At the same
# L0 the CLT has the lower error at layers 1–3 (its earlier features also write there) but the higher
# error at layer 0, more dead features, and a larger CE increase with every MLP replaced (0.0026 vs
# 0.0016 nats; the two seeds agree to 0.0001): better per layer is not better as a whole. Compare
# Ameisen et al.'s largest CLT, 11.5 % normalized MSE at L0 88 on an 18-layer model: a 4-layer model
# of a small world is much easier to replace.
#
# ## 3. The local replacement model and attribution graphs
#
# On one prompt we build the **local replacement model** (Ameisen et al. 2025; circuit-tracer):
# run the real model, **freeze** its attention patterns and every LayerNorm scale at their values on
# this prompt, replace each MLP by its transcoder, and add an **error node** per (layer, position)
# holding what the transcoder misses (so the local replacement reproduces the real model exactly on
# this prompt). With the feature activations held fixed, everything between two features is linear:
# the **direct edge** from a source feature to a target feature is the source's decoded output,
# carried by the frozen residual stream and attention to where the target reads, through the frozen
# LayerNorm, dotted with the target's encoder row.
#
# ### Exercise 4 — one direct edge
# The source writes `activation * w_dec` into the residual stream; `path` (`[d_model, d_model]`,
# row-vector convention `write @ path`; `None` for the residual connection alone) carries it to the
# target's input; the target reads it through LayerNorm with its scale frozen at `ln_scale` (centre,
# then divide: the mean is not frozen away, centring is linear) and dots it with `w_enc`. Return a
# 0-d tensor.

# %%
def direct_edge(activation, w_dec, w_enc, ln_scale, path=None):
    # BEGIN SOLUTION: write = activation * w_dec (through path if given); centre it, divide by ln_scale, dot with w_enc
    write = activation * w_dec
    if path is not None:
        write = write @ path
    centred = write - write.mean(-1, keepdim=True)
    return (centred / ln_scale) @ w_enc
    # END SOLUTION


direct_edge = check_direct_edge(direct_edge)

# %% [markdown]
# `attribute` builds the whole graph of the Dallas prompt: nodes are the active features at every
# (layer, position), the error nodes, the token embeddings and the logit of "Austin"; `adjacency[t, s]`
# is the direct effect of source `s` on target `t`'s pre-activation, one backward pass per target row.
# Your `direct_edge`, through the frozen path, reproduces the graph's strongest feature → feature edge:

# %% tags=["trained"] tolerance={"rtol": 0.02, "atol": 0.001}
graph = attribute(model, transcoders, DALLAS, target="Austin")
print(graph)
n_f = graph.n_features
A = graph.adjacency[:n_f, :n_f]
t, s = divmod(int(A.abs().argmax()), n_f)
(ls, ps, fs), (lt, pt, ft) = graph.features[s].tolist(), graph.features[t].tolist()
path = frozen_path(model, graph.tokens, (ls, ps), (lt, pt))
edge = direct_edge(graph.activations[s], transcoders[ls].W_dec[fs], transcoders[lt].W_enc[:, ft],
                   graph.ln_scales[lt, pt], path)
print(f"L{ls}/{fs} at '{graph.str_tokens[ps]}' -> L{lt}/{ft} at '{graph.str_tokens[pt]}': "
      f"your edge {float(edge):.4f}, the graph's {float(A[t, s]):.4f}")
assert abs(float(edge) - float(A[t, s])) < 1e-4 + 1e-4 * abs(float(edge))

# %% [markdown]
# ### Exercise 5 — the edge-sum check
# Everything no node owns (positional embeddings, biases, what the MLPs write at `<bos>`) is each
# node's **bias**, measured independently with every node set to zero. Then each node's incoming
# edges plus its bias must equal its pre-activation. Return `|Σ_s A[t, s] + bias[t] − pre[t]|` for every
# node `t` (`[n]`).

# %%
def edge_sum_error(adjacency, bias, preactivation):
    # BEGIN SOLUTION: sum each row (a target's incoming edges), add its bias, subtract its pre-activation, abs
    return (adjacency.sum(dim=1) + bias - preactivation).abs()
    # END SOLUTION


edge_sum_error = check_edge_sum_error(edge_sum_error)

# %% tags=["trained"] tolerance={"rtol": 1.0, "atol": 0.0001}
err = edge_sum_error(graph.adjacency, graph.bias, graph.preactivation)  # rounding: 4e-6 to 6e-6 by CPU kernel
print(f"largest edge-sum error over {graph.n_nodes} nodes: {float(err.max()):.1e}")
assert err.max() < 1e-4

# %% [markdown]
# ### Exercise 6 — pruning by influence
# A graph of hundreds of nodes explains nothing by eye. circuit-tracer keeps the nodes that matter
# for the output: normalise the rows of `|A|` to sum to 1; `B = (I − A)⁻¹ − I` sums the effects over
# **every path of every length**; a node's influence is `logit_weights @ B` (the logits weighted by their
# probability). Keep the most influential nodes until they hold a fraction `threshold` of the total
# influence (including the node that reaches it), and the logit nodes (`logit_weights > 0`). Return
# `[n]` bool.

# %%
def prune_by_influence(adjacency, logit_weights, threshold):
    # BEGIN SOLUTION: normalise rows of |A|; influence = w @ ((I - A)^-1 - I); keep the top nodes up to threshold of the total, and the logits
    A = adjacency.abs()
    A = A / A.sum(dim=1, keepdim=True).clamp(min=1e-10)
    eye = torch.eye(len(A), dtype=A.dtype)
    influence = logit_weights @ (torch.linalg.inv(eye - A) - eye)
    ranked = influence.sort(descending=True).values
    cumulative = ranked.cumsum(0) / ranked.sum()
    cutoff = ranked[min(int(torch.searchsorted(cumulative, threshold)), len(ranked) - 1)]
    return (influence >= cutoff) | (logit_weights > 0)
    # END SOLUTION


prune_by_influence = check_prune_by_influence(prune_by_influence)

# %% [markdown]
# **Replacement and completeness scores** (circuit-tracer's): the *replacement score* is the share of
# the end-to-end influence on the logit that starts at tokens rather than error nodes (flows through
# features alone); the *completeness score* the influence-weighted share of every node's inputs that
# come from features or tokens. `prune` keeps 80 % of the node influence and 98 % of the edge
# influence, and folds each removed feature into its error node, so the pruned graph's scores count
# what pruning dropped as unexplained. Per-layer transcoders vs the CLT on the same prompt:

# %% tags=["trained"] tolerance={"rtol": 0.05, "atol": 0.02}
graphs = {"per-layer": graph, "cross-layer": attribute(model, clt, DALLAS, target="Austin")}
pruned = {name: prune(g) for name, g in graphs.items()}
print(f"{'':12s} {'features':>8s} {'replacement':>12s} {'completeness':>13s} {'kept':>5s} {'replacement':>12s} "
      f"{'completeness':>13s}  (full graph | pruned)")
scores = {}
for name, g in graphs.items():
    p = pruned[name]
    scores[name] = (replacement_score(g), completeness_score(g), replacement_score(p), completeness_score(p))
    print(f"{name:12s} {g.n_features:8d} {scores[name][0]:12.3f} {scores[name][1]:13.3f} {p.n_features:5d} "
          f"{scores[name][2]:12.3f} {scores[name][3]:13.3f}")
assert scores["per-layer"][3] >= 0.8 and scores["cross-layer"][3] >= 0.8, "completeness >= 0.8 after pruning"
print(f"pruning keeps the edge-sum identity: {float(edge_sum_error(pruned['per-layer'].adjacency, pruned['per-layer'].bias, pruned['per-layer'].preactivation).max()):.1e}")
mine = prune_by_influence(graph.adjacency, graph.logit_weights, 0.8)
print(f"your prune_by_influence keeps {int(mine[:graph.n_features].sum())} of {graph.n_features} features "
      "at the node threshold (before prune's edge pass)")

# %% [markdown]
# Ameisen et al. report completeness / replacement 0.80 / 0.61 for their CLT and 0.78 / 0.37 for
# per-layer transcoders (averaged over many prompts of an 18-layer model). Here both scores are
# higher for both kinds (a 4-layer model, a prompt it has memorised). The CLT's graph is smaller
# (fewer features survive pruning) and has the higher replacement score, as in the paper, though by
# a much smaller margin; part 5 measures the same on 32 prompts.
#
# **The graph, drawn.** Each feature is labelled with its best ground-truth label: on held-out world
# text (notebook 03's explainer: the predicate with the best F1 among the grammar's token labels, and
# its held-out F1) — or, where it fits better (F1 ≥ 0.5), on the **probe prompts** of part 4, whose
# truth says which state a prompt is about even where no state is written.

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.05}
p = pruned["per-layer"]
probe = probe_labels(model, transcoders)
labels = label_features(model, transcoders, [(l, f) for l, _, f in p.features.tolist()])
for (l, f), (_, f1) in list(labels.items()):
    if probe.f1[l, f] >= max(0.5, f1):
        labels[(l, f)] = (probe.names[l][f] + " [probe]", float(probe.f1[l, f]))
fig, ax = plt.subplots(figsize=(13, 6.5))
draw(p, labels=labels, ax=ax, tokenizer=model.tokenizer)
plt.show()
for (l, f), (name, f1) in sorted(labels.items()):
    print(f"L{l}/{f}: {name} (F1 {f1:.2f})")

# %% [markdown]
# Every feature that survives pruning sits at the last position: the city reaches it through
# attention, straight from its token embedding (the edges from "Dallas"), and there, layer after
# layer, come the **Texas** feature (`state = Texas`), the **say-Austin** features and generic
# *say a capital* features — the two-hop computation within one position.
#
# Token labels describe many of these features poorly (the best world-text F1s are low: what fires
# at "is" in a two-hop sentence is about the state and the answer, which no token label states);
# the probe labels name the state and the answer for the features near the output.
#
# ## 4. Dallas → Texas → Austin
#
# Which features carry the state? We find each state's features from the two-hop prompts of its
# **trained** cities (the grammar's two phrasings: "The capital of the state containing Dallas is",
# "Dallas is in a state whose capital is"): at the answer position, the features of each layer that
# fire on at least half of that state's prompts and on at most 20 % of the other states'. Their
# *typical value* is their mean activation where they fire.
#
# **What are they?** Token labels cannot say which state a prompt is about when no state is written,
# so we label these features on **probe prompts** built from the grammar's own phrasings, whose truth
# is known: "Dallas is a city in" (next: Texas), "The capital of Texas is" (next: Austin), and the
# two-hop prompts (next: Austin, Texas never written). At their last position each feature gets the
# probe predicate it fires for best (F1): `state = Texas` (fires whenever the prompt is about Texas: a
# **Texas** feature), `next = capital of Texas` (fires when Austin comes next, not for "Dallas is a city
# in": a **say-Austin** feature), `next = Texas`, `next is a capital` (**say a capital**, any state), `next is
# a state`.

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 1}
prompts = two_hop_prompts(model)
print(f"{len(prompts)} two-hop prompts ({sum(p.heldout for p in prompts)} of held-out cities)")
features = {where: state_features(model, transcoders, prompts, where) for where in ("answer", "city")}
print("Texas features at the answer position, with their probe label:")
for l, idx in enumerate(features["answer"].indices["Texas"]):
    for f in idx.tolist():
        print(f"  {probe.label(l, f)}   typical value {features['answer'].values['Texas'][l][idx.tolist().index(f)]:.2f}")
kinds = kinds_table(probe, features["answer"])
print("all states' answer-position features by probe label:", kinds)

# %% [markdown]
# So the state's features at the answer position are of several kinds, told apart by the ground
# truth: **Texas** features (`state = Texas`: they fire for "Dallas is a city in" too, where Austin never
# comes next), **say-Austin** features (`next = capital of Texas`: only where Austin is next), a few
# generic ones (*say a state*, *say a capital*), and features whose best label is **another** state:
# features shared by two or three states (polysemantic across states), selected because they fire
# for most Texas prompts too.
#
# ### Exercises 7 and 8 — the feature swap and its success rate
# `swap_features`: at each of `positions` (indices of the second-to-last axis of `acts` `[..., pos,
# d_sae]`), zero the features `remove`, then set the features `add` to `values`; return a copy.
# `swap_success_rate`: the fraction of prompts whose top-1 next token (`logits` `[n, d_vocab]`) is the
# target (`target_tokens` `[n]`).

# %%
def swap_features(acts, remove, add, values, positions):
    # BEGIN SOLUTION: copy; at each position zero the removed features, then set the added ones to values
    out = acts.clone()
    for p in positions:
        out[..., p, remove] = 0
        out[..., p, add] = values
    return out
    # END SOLUTION


swap_features = check_swap_features(swap_features)


def swap_success_rate(logits, target_tokens):
    # BEGIN SOLUTION: top-1 token of each prompt == its target, as a fraction
    return (logits.argmax(-1) == target_tokens).float().mean().item()
    # END SOLUTION


swap_success_rate = check_swap_success_rate(swap_success_rate)

# %% [markdown]
# **Texas → California, on the Dallas prompt.** The swap runs in the **real** model: at every layer, the
# change of the transcoders' decoded output is added to the MLP output (the transcoders' error
# stays), and every later layer responds. Suppression zeroes Texas's features without adding any.

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.02}
dallas = next(p for p in prompts if p.city == "Dallas" and p.phrasing == 0)
sacramento = int(model.to_tokens("Sacramento", prepend_bos=False)[0, 0])
for where in ("answer", "city"):
    swapped = run_swapped(model, transcoders, dallas, features[where], ["California"])
    suppressed = run_swapped(model, transcoders, dallas, features[where], ["California"], suppress_only=True)
    for what, logits in (("swap Texas -> California", swapped), ("suppress Texas", suppressed)):
        pr = logits[0].softmax(-1)
        word = model.tokenizer.convert_ids_to_tokens(int(pr.argmax()))
        print(f"at the {where:6s} position, {what:25s}: top-1 {word:12s} p(Austin) {pr[dallas.answer]:.3f} "
              f"p(Sacramento) {pr[sacramento]:.3f}  success {swap_success_rate(logits, torch.tensor([sacramento])):.0f}")

# %% [markdown]
# **Every city, every other state.** For each of the 128 prompts (64 cities × 2 phrasings) and each of
# the 15 other states: swap at the answer position, and at the city's tokens (the features there are
# found the same way, at the city position). Success: the top-1 next token is the target state's
# capital. Held-out cities (two-hop sentences never trained; their state features were found on
# trained cities) side by side with trained ones.

# %% tags=["trained"] tolerance={"rtol": 0.03, "atol": 0.02}
tables = {where: summarize(swap_table(model, transcoders, prompts, features[where])) for where in ("answer", "city")}
print(f"{'position':8s} {'cities':8s} {'prompts':>7s} {'pairs':>6s} {'swap success':>12s} {'clean acc.':>10s} "
      f"{'answer changed':>14s} {'p(answer)':>9s} {'suppressed':>10s}")
for where, table in tables.items():
    for cities, s in table.items():
        print(f"{where:8s} {cities:8s} {s['prompts']:7d} {s['pairs']:6d} {s['swap_success']:12.3f} "
              f"{s['clean_accuracy']:10.3f} {s['suppressed_changed']:14.3f} {s['p_clean']:9.3f} {s['p_suppressed']:10.3f}")
assert tables["answer"]["trained"]["swap_success"] >= 0.9 and tables["answer"]["heldout"]["swap_success"] >= 0.9
assert tables["city"]["trained"]["swap_success"] <= 0.1 and tables["city"]["heldout"]["swap_success"] <= 0.1

# %% [markdown]
# (Transcoders of training seed 1, not shipped, give the spread behind the asserts: answer
# position 0.990 trained / 0.973 held-out, city position 0.000 / 0.000. The same swap with the
# shipped CLT's features, measured once: 0.990 / 0.931 at the answer position, 0.000 / 0.000 at the
# city; seed-1 CLT 0.913 / 0.904.)
#
# At the answer position the swap moves the answer to the target state's capital for almost every
# (city, state) pair, held-out cities included — the features found on trained cities carry the
# state for cities the model never composed in training. At the city position the same swap does
# nothing: the state is not computed there; the answer position reads the city (through attention)
# and computes the state in its own MLPs. Zeroing the state's features (*suppressed*) lowers the
# probability of the right capital, much more for held-out cities, whose answer is less certain.
#
# **Texas features or say-Austin features?** The same swap with only the features of one probe kind
# (and only those labelled with the prompt's own state):
# %% tags=["trained"] tolerance={"rtol": 0.05, "atol": 0.03}
by_kind = {}
for kind in ("state", "say capital"):
    f = state_features(model, transcoders, prompts, "answer")
    for s in f.indices:
        keep = [torch.tensor([probe.kind(l, i) == kind and probe.names[l][i].split(" (")[0].endswith(s)
                              for i in idx.tolist()], dtype=torch.bool) for l, idx in enumerate(f.indices[s])]
        f.indices[s] = [idx[k] for idx, k in zip(f.indices[s], keep)]
        f.values[s] = [v[k] for v, k in zip(f.values[s], keep)]
    by_kind[kind] = summarize(swap_table(model, transcoders, prompts, f))
    print(f"only '{kind}' features ({sum(f.count(s) for s in f.indices) / 16:.1f} per state): swap success trained "
          f"{by_kind[kind]['trained']['swap_success']:.3f}, held-out {by_kind[kind]['heldout']['swap_success']:.3f}")
assert by_kind["state"]["trained"]["swap_success"] > 0.5 > by_kind["say capital"]["trained"]["swap_success"]

# %% [markdown]
# The **state** features carry the answer: swapping them alone moves most answers, because the
# say-capital features downstream are recomputed from the swapped state. Swapping the say-Austin
# features alone almost never works: the state, still Texas in the stream, keeps pushing Austin.
# The rest of the full swap's success comes from the shared features.

# %% [markdown]
# ## 5. Composition or shortcut?
#
# The world LM answers two-hop questions for held-out cities whose two-hop sentences it never saw
# (notebook 06 studies when a transformer learns such **implicit reasoning**). Does it compose —
# city → *state* → capital —, or has it a direct city → capital path? Two measures on each prompt's
# pruned graph: the share of the features' influence on the answer that goes through the city's
# **state features** (probe label `state = …` of the right state), and the **path length**: the share
# of the explained influence reaching the tokens through paths of 1, 2, 3, … edges (1: token → logit;
# 2: token → feature → logit; ≥ 3: chains of features). Lange et al. (2026) found that the CLT's
# sparsity penalty pushes it to rewrite A → B → C circuits as shallow A → C: we compare the CLT's
# graphs with the per-layer transcoders' on the same prompts.

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.05}
probes = {"per-layer": probe, "cross-layer": probe_labels(model, clt)}
kinds_of = {"per-layer": transcoders, "cross-layer": clt}
first_city = {}
for p in prompts:
    first_city.setdefault(p.state, p.city)
chosen = [p for p in prompts if p.phrasing == 0 and (p.heldout or first_city[p.state] == p.city)]
rows = {}
for name, tc in kinds_of.items():
    for p in chosen:
        g = prune(attribute(model, tc, p.tokens, target=[p.answer]))
        infl = node_influence(g.adjacency, g.logit_weights)[:g.n_features].clamp(min=0)
        state_feat = torch.tensor([probes[name].kind(l, f) == "state" and probes[name].names[l][f].endswith(p.state)
                                   for l, _, f in g.features.tolist()], dtype=torch.bool)
        lengths = path_lengths(g)
        rows.setdefault((name, p.heldout), []).append(
            dict(state_share=float(infl[state_feat].sum() / infl.sum().clamp(min=1e-9)),
                 mean_length=mean_path_length(g), long=float(lengths[2:].sum()), features=g.n_features,
                 replacement=replacement_score(g)))
print(f"{'transcoders':12s} {'cities':8s} {'n':>3s} {'state-feature share':>19s} {'mean path':>9s} "
      f"{'paths >= 3':>10s} {'features':>8s} {'replacement':>11s}")
summary5 = {}
for (name, heldout), rs in rows.items():
    mean = {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]}
    summary5[(name, heldout)] = mean
    print(f"{name:12s} {'held-out' if heldout else 'trained':8s} {len(rs):3d} {mean['state_share']:19.3f} "
          f"{mean['mean_length']:9.2f} {mean['long']:10.3f} {mean['features']:8.1f} {mean['replacement']:11.3f}")
for name in ("per-layer", "cross-layer"):  # held-out cities compose like trained ones (to 0.1)
    assert summary5[(name, True)]["state_share"] > summary5[(name, False)]["state_share"] - 0.1
    assert summary5[(name, True)]["state_share"] > 0.1
for heldout in (False, True):  # the CLT's graphs are shallower, with a higher replacement score
    assert summary5[("cross-layer", heldout)]["mean_length"] < summary5[("per-layer", heldout)]["mean_length"]
    assert summary5[("cross-layer", heldout)]["replacement"] > summary5[("per-layer", heldout)]["replacement"]

# %% [markdown]
# (With the seed-1 transcoders: state-feature share 0.24 trained / 0.21 held-out per-layer and
# 0.22 / 0.21 CLT; mean path 2.53 / 2.45 per-layer and 2.21 / 2.19 CLT; replacement 0.70 / 0.70
# per-layer and 0.73 / 0.78 CLT: the same conclusions.)
#
# **Composition, for held-out cities too**: their graphs route about as much of the features'
# influence through the right state's features as the trained cities' graphs do, with paths as long
# — no sign of a direct city → capital shortcut for the cities whose two-hop sentences were never
# trained (notebook 06 shows how a transformer comes to compose like this, and when it does not).
# **The CLT's graphs are shallower** than the per-layer transcoders' on the same prompts (a shorter
# mean path, a smaller share of paths with three or more edges) and route less through state
# features, with a higher replacement score: a CLT feature at layer 0 can write straight into the last
# MLP's output, so one feature does what took a chain. This is Lange et al.'s warning: a shallow CLT
# graph is not evidence that the model itself skips the middle step — the per-layer graphs and the
# swap of part 4 show that it does not. (Caveats: the state-feature share counts only features whose
# probe label names the right state, and the path lengths are those of the pruned graphs.)
#
# ## 6. Limitations, measured
#
# **The error share.** On the Dallas prompt, the share of the influence that starts at error nodes is
# `1 − replacement score`; over held-out text, the error share per layer is in part 2's table.
# **Does the pruned graph predict interventions?** In the linear local replacement model, zeroing a
# feature removes its outgoing edges and everything downstream changes in proportion (attention and
# LayerNorm frozen); the real model instead recomputes attention, LayerNorm and every feature. For
# each feature of the pruned Dallas graph: the predicted and the real change of the Austin logit
# (minus the mean logit).

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.03}
austin = dallas.answer
for name, tc in kinds_of.items():
    g = pruned[name]
    pred, real = predicted_ablation_effects(g, austin), real_ablation_effects(model, tc, g, austin)
    big = real.abs() > 0.1
    corr = float(torch.corrcoef(torch.stack([pred, real]))[0, 1])
    sign = float((pred.sign() == real.sign())[big].float().mean())
    ratio = float((pred[big] / real[big]).median())
    print(f"{name:12s}: {g.n_features} features; error share of the influence {1 - replacement_score(g):.3f}; "
          f"predicted vs real effect: correlation {corr:.2f}, same sign for {sign:.0%} of the {int(big.sum())} "
          f"features with a real effect > 0.1, median ratio predicted / real {ratio:.1f}")
    assert corr > 0.6 and sign >= 0.8, (name, corr, sign)
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(real, pred, s=12)
lim = float(max(pred.abs().max(), real.abs().max()))
ax.plot([-lim, lim], [-lim, lim], color="0.6", lw=0.8)
ax.set_xlabel("real change of the Austin logit"), ax.set_ylabel("predicted by the pruned graph")
ax.set_title("zeroing one feature (CLT graph)", fontsize=9)
plt.show()

# %% [markdown]
# (Seed-1 transcoders: correlation 0.96 / 0.98, same sign 92 % / 100 %, ratio 2.3 / 1.4.)
#
# The graph gets the direction of most effects right and ranks them well, but it overstates their
# size: the real model's answer is saturated (p ≈ 1) and its LayerNorms and attention partly
# compensate — what a frozen linear model cannot do. An attribution graph is a hypothesis about
# the mechanism to test with interventions, not a measurement of it.
#
# **Where the replacement and the real model disagree.** Positions of held-out text where the model
# with every MLP replaced predicts another top-1 token than the real model:

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 1}
shown = 0
with torch.no_grad():
    for row in tokens[:60]:
        row = row[row != model.tokenizer.pad_token_id][None]
        real_top = model(row)[0].argmax(-1)
        rep_top = model.run_with_hooks(row, fwd_hooks=replacement_hooks(transcoders))[0].argmax(-1)
        words = model.to_str_tokens(row[0])
        for i in (real_top != rep_top).nonzero()[:, 0].tolist()[:1]:
            if 0 < i < row.shape[1] - 1 and shown < 6:
                shown += 1
                real_word, rep_word = model.tokenizer.convert_ids_to_tokens([int(real_top[i]), int(rep_top[i])])
                print(f"{' '.join(words[max(1, i - 7):i + 1]):50s} real: {real_word:10s} replacement: {rep_word}")
print(f"top-1 agreement over all held-out positions: per-layer {pl['top1_agreement']:.3f}, CLT {cl['top1_agreement']:.3f}")

# %% [markdown]
# ## What we found
#
# - A transcoder per MLP (or one cross-layer transcoder) replaces the world LM's MLPs to a few
#   percent of their variance; the fully replaced model keeps the real next token at about 95 % of
#   positions. The CLT reconstructs the later layers better at the same L0.
# - On the Dallas prompt the local replacement model is exact by construction (edge sums to 1e-4);
#   after pruning to a few dozen features it keeps completeness ≥ 0.8. The CLT's graphs are smaller,
#   shallower, and have the higher replacement score.
# - The answer position holds **Texas** features and **say-Austin** features, told apart by
#   ground-truth probe prompts. Swapping the state's features for another state's moves the answer to
#   that state's capital for nearly every (city, state) pair — held-out cities too —, at the answer
#   position only; the Texas features alone do most of it, the say-Austin features alone almost nothing.
# - Held-out cities compose through state features like trained ones; the CLT's shallow graphs are a
#   property of the CLT, not of the model (Lange et al. 2026).
# - The graphs are hypotheses: their predicted intervention effects have the right sign but about twice
#   the real size, and the replacement disagrees with the real model at about one position in twenty.
