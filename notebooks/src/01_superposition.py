# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 — Toy models of superposition
#
# *Understanding the Mechanism of LLMs*, lecture part 2: **why are neurons polysemantic?**
#
# Notebook 00 ended on a problem: the units we would like to explain (neurons, heads) respond to
# many unrelated things. The lecture's explanation is a counting argument. The world has far more
# **features** (concepts a model could usefully track: "this is Python code", "the subject is
# plural", "Dallas") than a layer has **neurons**. If every feature needed its own dimension, a
# model could track at most as many features as it has dimensions. But most features are **sparse**:
# any one input contains only a handful of them. A model can then store *more features than it has
# dimensions*, as almost-orthogonal directions that interfere with each other only in the rare
# inputs where several are present at once. This is **superposition**, and a neuron that
# participates in several such directions is **polysemantic**.
#
# We reproduce the evidence from Anthropic's *Toy Models of Superposition* (Elhage et al., 2022,
# [transformer-circuits.pub/2022/toy_model](https://transformer-circuits.pub/2022/toy_model/index.html)):
#
# | section | experiment | what you will see |
# |---|---|---|
# | 1 | the toy model, its data and loss | you write the three pieces |
# | 2 | 5 features in 2 dimensions | dense → 2 orthogonal features; sparse → a pentagon of 5 |
# | 3 | 80 features in 20 dimensions | how many features fit as sparsity grows |
# | 4 | feature dimensionality | features take *fractions* of a dimension: 1/2, 2/5, … |
# | 5 | 2 features in 1 dimension | a phase diagram: superposition is a phase change |
# | 6 | a ReLU hidden layer | a privileged basis, and polysemantic neurons |
#
# Everything trains on a CPU in about a minute in total.

# %%
import matplotlib.pyplot as plt
import torch

from course_lib import set_seed
from course_lib.superposition import (PHASES, ToyFunctions, TrainConfig, check_classify_phase,
                                      check_feature_dimensionality, check_features_per_neuron, check_generate_batch,
                                      check_importance_weighted_loss, check_interference, check_toy_forward,
                                      dimensions_per_feature, feature_norms, geometry_explorer, neighbour_angles,
                                      phase_grid, plot_dimensionality, plot_feature_norms, plot_geometry,
                                      plot_neurons, plot_phase_diagram, sparsity_sweep, sticky_plateaus,
                                      theoretical_phase, train_best_of)

set_seed(0)

# %% [markdown]
# ## 1. The toy model
#
# Imagine a big, idealised model with one neuron per feature: `n_features` numbers $x_i \ge 0$, each
# saying how strongly feature $i$ is present. Our toy model must squeeze them through a bottleneck
# of `n_hidden` < `n_features` dimensions and recover them:
#
# $$h = W x, \qquad x' = \mathrm{ReLU}(W^T h + b),$$
#
# with $W$ of shape `[n_hidden, n_features]`. Column $W_i$ is the **direction** that feature $i$
# gets in the hidden space; reading back with $W^T$ means feature $i$ is recovered by projecting $h$
# onto $W_i$. If the directions are orthogonal, the read-out is perfect. If there are more features
# than dimensions, they cannot all be orthogonal: reading feature $i$ picks up **interference**
# $W_i \cdot W_j \, x_j$ from every other active feature $j$. The output ReLU (with a negative bias
# $b$) can filter out *negative* and *small* interference, which is what makes superposition
# possible at all: a purely linear model (no ReLU) simply keeps the `n_hidden` most important
# features, like PCA.
#
# Two knobs decide what the model does:
#
# - **Sparsity** $S$: each feature is 0 with probability $S$, otherwise uniform in $[0, 1]$. We
#   mostly use the feature probability $p = 1 - S$ (the chance it is active).
# - **Importance** $I_i$: how much the loss cares about feature $i$. The loss is the
#   importance-weighted squared error $\sum_i I_i (x_i - x'_i)^2$, averaged over the batch.
#
# To sweep sparsity cheaply we train many models ("instances") at once, one per sparsity, in one
# batched tensor: `W` has shape `[n_instances, n_hidden, n_features]` and a batch has shape
# `[batch, n_instances, n_features]`.
#
# ### Exercise 1 — the data
# Write `generate_batch(batch_size, feature_probability, generator=None)`. `feature_probability`
# has shape `[n_instances, n_features]` (the $p$ of every feature of every instance); return a
# float tensor of shape `[batch_size, n_instances, n_features]` in which each entry is,
# independently, uniform in $[0, 1]$ with probability $p$ and 0 otherwise. Pass `generator=` to
# every random call so runs repeat. (The check compares statistics, since your random draws need
# not come in the same order as ours.)

# %%
def generate_batch(batch_size, feature_probability, generator=None):
    # BEGIN SOLUTION: draw uniform values and keep each one where a second uniform draw is < feature_probability
    shape = (batch_size, *feature_probability.shape)
    values = torch.rand(shape, generator=generator)
    active = torch.rand(shape, generator=generator) < feature_probability
    return torch.where(active, values, 0.0)
    # END SOLUTION


generate_batch = check_generate_batch(generate_batch)

# %%
p_demo = torch.tensor([[1.0, 1.0, 1.0], [0.1, 0.1, 0.1]])  # a dense and a sparse instance, 3 features
x_demo = generate_batch(5, p_demo, generator=torch.Generator().manual_seed(0))
print("dense instance (p = 1):\n", x_demo[:, 0].numpy().round(2))
print("sparse instance (p = 0.1): mostly zeros\n", x_demo[:, 1].numpy().round(2))

# %% [markdown]
# ### Exercise 2 — the batched forward pass
# Write `toy_forward(W, b_final, x, relu_hidden=False)` for all instances at once: `W`
# `[n_instances, n_hidden, n_features]`, `b_final` `[n_instances, n_features]`, `x`
# `[batch, n_instances, n_features]` → $x'$ of the same shape as `x`. Each instance uses only its
# own `W` (einsum keeps the indices honest: `"ihf,bif->bih"`). With `relu_hidden=True`, the hidden
# layer is $h = \mathrm{ReLU}(W x)$ instead (section 6).

# %%
def toy_forward(W, b_final, x, relu_hidden=False):
    # BEGIN SOLUTION: h = W x per instance (einsum), optional ReLU on h, then ReLU(W^T h + b_final)
    h = torch.einsum("ihf,bif->bih", W, x)
    if relu_hidden:
        h = torch.relu(h)
    return torch.relu(torch.einsum("ihf,bih->bif", W, h) + b_final)
    # END SOLUTION


toy_forward = check_toy_forward(toy_forward)

# %% [markdown]
# ### Exercise 3 — the importance-weighted loss
# Write `importance_weighted_loss(x, x_hat, importance)` returning **one loss per instance**, shape
# `[n_instances]`: $\sum_i I_i (x_i - x'_i)^2$ summed over features and averaged over the batch.
# `importance` has shape `[n_features]` or `[n_instances, n_features]` (broadcasting handles both).
# The training loop adds up the instances' losses, so each instance gets the gradient it would get
# if it were trained alone.

# %%
def importance_weighted_loss(x, x_hat, importance):
    # BEGIN SOLUTION: weight each squared error by its importance, sum over features, mean over the batch
    return (importance * (x - x_hat) ** 2).sum(-1).mean(0)
    # END SOLUTION


importance_weighted_loss = check_importance_weighted_loss(importance_weighted_loss)

# %% [markdown]
# Training uses your three functions: `train_best_of(...)` builds a batched `ToyModel`, trains
# every instance with AdamW (batch 1024) and returns the trained model. Its settings are a
# `TrainConfig` (steps, learning rate, batch size, restarts, seed); the functions it calls are a
# `ToyFunctions` (here: yours). Two choices differ from the paper, to fit a laptop CPU:
#
# - the paper trains for 10,000 steps at learning rate $10^{-3}$; we use a 50× larger rate
#   ($5 \cdot 10^{-2}$, $3 \cdot 10^{-2}$ for the biggest model) that decays to 0 on a cosine, and
#   600–1,000 steps. The geometries are the
#   same (try the paper's settings with `TrainConfig(steps=10_000, lr=1e-3)` if you have a few minutes);
# - gradient descent sometimes settles in a worse geometry (e.g. 4 of 5 features instead of a
#   pentagon). With `restarts=k`, every instance is trained from k random initialisations, side by
#   side in the same batched model, and the one with the lowest loss is kept. (The paper does the
#   same: it trains several models per setting and discards the worst.)

# %%
yours = ToyFunctions(batch=generate_batch, forward=toy_forward, loss=importance_weighted_loss)

# %% [markdown]
# ## 2. Five features in two dimensions
#
# The paper's first experiment: 5 features, 2 hidden dimensions, importance $I_i = 0.9^i$ (feature 0
# matters most), and 10 sparsities from dense ($p = 1$) to sparse ($p = 0.05$).

# %% tags=["trained"]
p_sweep = sparsity_sweep(10, p_min=0.05)  # p = 1 ... 0.05, evenly spaced on a log scale
importance_5 = 0.9 ** torch.arange(5)
model_5_2 = train_best_of(n_features=5, n_hidden=2, feature_probability=p_sweep, importance=importance_5,
                          config=TrainConfig(steps=1000, restarts=3, seed=0), functions=yours)
W_5_2 = model_5_2.W.detach()

norms = feature_norms(W_5_2)
print("   S    ||W_i|| for features 0..4    represented   angles between neighbours (degrees)")
for k, p in enumerate(p_sweep.tolist()):
    angles = neighbour_angles(W_5_2[k]).round().int().tolist()
    print(f"{1 - p:5.2f}   {'  '.join(f'{v:.2f}' for v in norms[k].tolist())}   {int((norms[k] > 0.5).sum()):^11}   {angles}")
represented = (norms > 0.5).sum(1)
assert represented[:2].tolist() == [2, 2] and represented[2:5].tolist() == [4, 4, 4], "dense: 2 features; then 4"
assert represented[6:].tolist() == [5] * 4, "from S = 0.86 on: all 5 features (a pentagon)"

# %%
fig = plot_geometry(W_5_2, p_sweep)
plt.show()

# %% [markdown]
# How to read the figure: each top panel draws the five columns $W_i$ (dark = most important); the
# grey circle has radius 1. Below each is $W^T W$: its diagonal holds $||W_i||^2$ (is feature $i$
# represented?), its off-diagonal entries $W_i \cdot W_j$ the interference between features (red:
# positive, blue: negative).
#
# - **Dense** (left, $S = 0$): every feature is active in every input, so any overlap costs loss
#   on every example. The model does what a linear model would: it represents the **two most
#   important features, orthogonally**, and drops the other three ($||W_i|| \approx 0$; their bias
#   $b_i \approx 0.5$ predicts their mean instead). $W^T W$ is a 2×2 identity block.
# - **Intermediate** ($S \approx 0.5$–$0.75$): four features, in two **antipodal pairs**: $W_j = -W_i$.
#   Antipodal interference is negative (reading feature $i$ when $j$ is active gives a negative
#   number), and the output ReLU clips it to 0 for free. $W^T W$ shows blue $-1$ entries.
# - **Sparse** (from $S \approx 0.8$–$0.86$ on): all **five** features, as a **pentagon**, regular at
#   the sparse end: neighbours at 72°, cos 72° ≈ 0.31. Five features in two dimensions! Positive
#   interference between neighbours is now rare (both must be active at once), and a negative bias
#   filters out the small amounts of it. Where exactly the pentagon takes over depends on the
#   training run: with seed 0 (shown here) it is there from $S = 0.81$ on, with seeds 1 and 2 only
#   from $S = 0.86$ on (at $S = 0.81$ they still keep two antipodal pairs). The transition lies between
#   these two sparsities, and our sweep is too coarse to place it more precisely.
#
# Nothing told the model to do this: it is the loss-minimising trade-off between *representing
# more features* and *suffering more interference*, and sparsity tilts it towards superposition.

# %% tags=["trained"]
print(f"p = 1 (dense):  ||W_i|| = {[round(v, 2) for v in norms[0].tolist()]}")
print(f"p = {p_sweep[-1]:.2f} (sparse): ||W_i|| = {[round(v, 2) for v in norms[-1].tolist()]}")
angles = neighbour_angles(W_5_2[-1])
print(f"sparse neighbour angles from {angles.min():.0f}° to {angles.max():.0f}° (a regular pentagon: 72°; "
      f"cos 72° = {torch.cos(torch.deg2rad(torch.tensor(72.0))):.2f})")
b_final = model_5_2.b_final.detach()
print(f"bias b: dense {[round(v, 1) + 0.0 for v in b_final[0].tolist()]}, "
      f"sparse {[round(v, 1) + 0.0 for v in b_final[-1].tolist()]}")
assert ((angles - 72).abs() <= 5).all(), "a regular pentagon at the sparse end (72° +- 5°)"
assert (b_final[-1] < 0).all() and ((b_final[0, 2:] - 0.5).abs() < 0.05).all(), "negative bias when sparse; mean 1/2 for dropped features"

# %% [markdown]
# **Explore**: move the slider to step through the sparsities one at a time (the widget needs a
# live Jupyter kernel). The static figure below shows three representative models for viewers
# without widgets.

# %%
explorer = geometry_explorer(W_5_2, p_sweep)
explorer  # noqa: B018 (the last expression of a cell is displayed)

# %%
representative = [0, 3, 9]  # dense, intermediate, sparse
fig = plot_geometry(W_5_2[representative], p_sweep[representative])
plt.show()

# %% [markdown]
# ## 3. Many features: 80 features in 20 dimensions
#
# Is the pentagon a curiosity of 2 dimensions? We train 80 features in 20 dimensions, importance
# $I_i = 0.96^i$, at four sparsities, and ask for every feature: is it represented
# ($||W_i||$ near 1), and does it share its direction with others? The paper measures the second
# by how much the other features project onto feature $i$'s direction,
#
# $$\text{interference}_i = \sum_{j \ne i} (\hat W_i \cdot W_j)^2, \qquad \hat W_i = W_i / ||W_i||.$$
#
# It is 0 for a feature with a dimension of its own, 1 for a feature in an antipodal pair, and it
# grows as more features crowd into its direction.
#
# ### Exercise 4 — interference
# Write `interference(W)` for `W` `[n_instances, n_hidden, n_features]`, returning
# `[n_instances, n_features]`. An unlearnt feature ($W_i = 0$) must get 0, not `nan`.

# %%
def interference(W):
    # BEGIN SOLUTION: normalise the columns (guard zero norms), square all overlaps W^_i . W_j, sum over j != i
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    overlaps = torch.einsum("khi,khj->kij", W_hat, W) ** 2
    return overlaps.sum(-1) - overlaps.diagonal(dim1=1, dim2=2)
    # END SOLUTION


interference = check_interference(interference)

# %% tags=["trained"]
p_big = torch.tensor([1.0, 0.3, 0.1, 0.03])
model_80_20 = train_best_of(n_features=80, n_hidden=20, feature_probability=p_big, importance=0.96 ** torch.arange(80),
                            config=TrainConfig(steps=800, lr=3e-2, seed=0), functions=yours)  # bigger: a gentler rate
W_80_20 = model_80_20.W.detach()
fig = plot_feature_norms(W_80_20, p_big)
plt.show()

norms_big, interference_big = feature_norms(W_80_20), interference(W_80_20)
for k, p in enumerate(p_big.tolist()):
    represented = norms_big[k] > 0.5
    alone = represented & (interference_big[k] < 0.1)
    print(f"S = {1 - p:.2f}: {int(represented.sum()):2d} of 80 features represented in 20 dimensions; "
          f"{int(alone.sum()):2d} of them have a dimension to themselves")
n_represented = (norms_big > 0.5).sum(1)
assert 18 <= n_represented[0] <= 24 and (n_represented.diff() > 0).all() and n_represented[2] > 40, n_represented
assert (((norms_big > 0.5) & (interference_big < 0.1)).sum(1)[2:] == 0).all(), "from S = 0.9 on: no feature alone"

# %% [markdown]
# Each panel lists the 80 features, most important at the top; bar length is $||W_i||$, colour is
# the interference (dark: none). With dense features the model represents about as many features
# as it has dimensions, the most important ones, nearly all without interference (like PCA, and
# like the 5 → 2 model). As sparsity grows, less important features are represented too, in
# superposition (bright colours), while the most important ones keep a dimension to themselves a
# little longer. From $S = 0.9$ on, more than twice as many features as dimensions are represented
# and *none* has a dimension of its own: every direction in the hidden space carries several
# features. The short training leaves some untidiness in the dense panel (a few half-learnt
# features); the paper's 10,000 steps clean it up.
#
# ## 4. How much of a dimension does a feature get?
#
# Counting features per dimension suggests a summary statistic. With all features equally important,
# the paper plots the **dimensions per feature** $D^* = m / ||W||_F^2$ (since
# $||W_i||^2 \approx 1$ for a represented feature, $||W||_F^2$ counts the represented features),
# and zooms into single features with the **feature dimensionality**
#
# $$D_i = \frac{||W_i||^2}{\sum_j (\hat W_i \cdot W_j)^2}.$$
#
# The denominator counts how many features share feature $i$'s direction (the sum includes
# $j = i$). A feature with a dimension of its own has $D_i = 1$, each feature of an antipodal pair
# $1/2$, each vertex of a pentagon $2/5$, and an unlearnt feature 0.
#
# ### Exercise 5 — feature dimensionality
# Write `feature_dimensionality(W)`: `[n_instances, n_hidden, n_features]` →
# `[n_instances, n_features]`, with 0 (not `nan`) for a feature with $W_i = 0$.

# %%
def feature_dimensionality(W):
    # BEGIN SOLUTION: ||W_i||^2 divided by the sum over all j (including i) of (W^_i . W_j)^2; guard the divisions
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    shared = (torch.einsum("khi,khj->kij", W_hat, W) ** 2).sum(-1)
    return W.norm(dim=1) ** 2 / shared.clamp_min(1e-8)
    # END SOLUTION


feature_dimensionality = check_feature_dimensionality(feature_dimensionality)

# %% [markdown]
# We train 20 equally important features in 5 dimensions at 16 sparsities, from dense to
# $p = 0.01$ (1 in 100 inputs contains a given feature), and plot $D^*$ and every represented
# feature's $D_i$ against $1/(1 - S)$, the average number of inputs between two occurrences of a
# feature.

# %% tags=["trained"]
p_uniform = sparsity_sweep(16, p_min=0.01)
model_uniform = train_best_of(n_features=20, n_hidden=5, feature_probability=p_uniform, importance=1.0,
                              config=TrainConfig(steps=600, seed=0), functions=yours)
W_uniform = model_uniform.W.detach()
fig = plot_dimensionality(W_uniform, p_uniform)
plt.show()

D_star = dimensions_per_feature(W_uniform)
D_i = feature_dimensionality(W_uniform)
plateaus = sticky_plateaus(D_star, tolerance=0.02, min_length=2)  # >= 2 consecutive points within 0.02
on_plateau = {k: label for label, first, last in plateaus for k in range(first, last + 1)}
print("1/(1-S)    D*    on a plateau?    median D_i of the represented features")
for k, p in enumerate(p_uniform.tolist()):
    typical = D_i[k][feature_norms(W_uniform)[k] > 0.5].median()
    print(f"{1 / p:7.1f}   {D_star[k]:.2f}    {on_plateau.get(k, '-'):^13}    {typical:.2f}")
print("plateaus of D* (2 or more consecutive sparsities within 0.02 of a fraction):",
      ", ".join(f"{label} for 1/(1-S) = {1 / p_uniform[a]:.1f}-{1 / p_uniform[b]:.1f}" for label, a, b in plateaus))
assert abs(D_star[0] - 1) < 0.01 and [label for label, _, _ in plateaus] == ["1/2"], (D_star, plateaus)

# %% [markdown]
# The black curve does not slide smoothly from 1 to small values. It starts at 1 (one dimension per
# feature) at the dense end and then **sticks** at 1/2 (antipodal pairs) for two sparsities in a row,
# $1/(1-S) = 2.5$ and $3.4$, before dropping on. That is the one plateau our small sweep shows, on
# seed 0 as here and on seeds 1 and 2 alike: D* passes through 2/5–3/8 too, but at a single
# sparsity only (0.35–0.38 depending on the seed), too briefly to call it a plateau, and no other
# fraction shows up. The individual $D_i$ (blue dots) do not spread evenly either: at each sparsity
# they sit on one or two values (here 1/2 for three sparsities in a row) and then, further right, about
# 2/5–3/8 (pentagons, square antiprisms). The paper, with 400 features in 30 dimensions and a much
# finer sweep, sees plateaus at 3/4, 2/3, 1/2, 2/5 and 3/8. Its reading: superposition is not one
# thing but a family of **phases**, each a specific geometry (digon, triangle, tetrahedron,
# pentagon, …), and the model jumps between them as sparsity changes.
#
# Two caveats. In the dense regime (left) the $D_i$ scatter: nothing privileges the feature
# directions there, so the model keeps 5 arbitrary directions that each mix several features
# ($D^* = 1$ still holds). And at the sparse end all 20 features are represented, so $D_i$ settles
# at $m/n = 1/4$: our small model runs out of features (the paper uses 400 features in 30
# dimensions; norms slightly above 1 push $D^*$ a bit lower still).
#
# ## 5. Superposition as a phase change
#
# To isolate one decision, the paper studies the smallest case: **2 features in 1 dimension**.
# Feature 0 has importance 1; the "extra" feature 1 has relative importance 0.1 to 10, and both have
# the same density $1 - S$ from 0.01 to 1. There are three natural solutions for $W$ (a 1×2 matrix):
#
# | $W$ | the extra feature is… |
# |---|---|
# | $[1, 0]$ | **not represented** |
# | $[0, 1]$ | given a **dedicated dimension** (feature 0 is dropped) |
# | $[1, -1]$ | stored in **superposition** with feature 0 (an antipodal pair) |
#
# Their expected losses have a closed form (with density $p = 1 - S$ and relative importance $I$;
# a feature's variance is $p/3 - p^2/4$):
#
# - $[1, 0]$: feature 0 is read back exactly; for the dropped extra feature the best the bias can
#   do is predict its mean $p/2$, leaving its variance: $L = I\,(p/3 - p^2/4)$.
# - $[0, 1]$: the same with the roles swapped: $L = p/3 - p^2/4$.
# - $[1, -1]$ with $b = 0$: when one feature is active, the ReLU returns it exactly (the other
#   output is negative and clipped to 0). Only when **both** are active (probability $p^2$) does
#   each output miss $\min(x_0, x_1)$, with $E[\min(x_0, x_1)^2] = 1/6$: $L = p^2 (1 + I)/6$.
#
# Superposition costs $O(p^2)$ while dropping a feature costs $O(p)$: for sparse enough features,
# superposition always wins. Comparing the three, it wins when $p < 4I/(2 + 5I)$ (for $I \le 1$) or
# $p < 4/(5 + 2I)$ (for $I \ge 1$). We will see whether trained models agree.
#
# ### Exercise 6 — classify a trained model
# Write `classify_phase(W, threshold=0.5)` for 2-feature models `W` `[n_instances, n_hidden, 2]`,
# returning an int64 tensor `[n_instances]`: 0 if the extra feature (index 1) is not represented,
# 1 if it is and feature 0 is not, 2 if both are. "Represented" means $||W_i|| >$ `threshold`.

# %%
def classify_phase(W, threshold=0.5):
    # BEGIN SOLUTION: represented = column norms > threshold; 0 if feature 1 is not represented, 2 if both are, else 1
    represented = W.norm(dim=1) > threshold
    first, extra = represented[:, 0], represented[:, 1]
    return torch.where(extra, torch.where(first, 2, 1), 0)
    # END SOLUTION


classify_phase = check_classify_phase(classify_phase)

# %% [markdown]
# We train all 8 × 8 settings at once (64 instances, each with 4 restarts: 256 tiny models in one
# tensor) and classify each.

# %% tags=["trained"]
relative_importance, density, importance_2, p_2 = phase_grid(n_importance=8, n_density=8)
model_2_1 = train_best_of(n_features=2, n_hidden=1, feature_probability=p_2, importance=importance_2,
                          config=TrainConfig(steps=600, restarts=4, seed=0), functions=yours)
phases = classify_phase(model_2_1.W.detach()).view(8, 8)  # [relative importance, density]
fig = plot_phase_diagram(phases, relative_importance, density)
plt.show()

symbols = {0: ".", 1: "D", 2: "S"}
print("rows: relative importance of the extra feature; columns: density 1 - S")
print("         " + " ".join(f"{d:5.2f}" for d in density.tolist()))
for r in reversed(range(8)):
    print(f"{relative_importance[r]:7.2f}  " + " ".join(f"{symbols[c]:>5}" for c in phases[r].tolist()))
print("  (.: " + PHASES[0] + ", D: " + PHASES[1] + ", S: " + PHASES[2] + ")")
theory = theoretical_phase(relative_importance[:, None], density[None, :])
print(f"the trained models pick the closed-form optimum in {int((theory == phases).sum())} of 64 settings")
assert int((theory == phases).sum()) >= 56, "the trained models follow the closed form (at most 8 misses of 64)"

# %% [markdown]
# Read the diagram from the right (dense) to the left (sparse):
#
# - **Dense features** (density near 1): no superposition at all. The single dimension goes to the
#   more important feature: the extra feature is dropped when it matters less than feature 0 (grey)
#   and gets the dimension when it matters more (blue).
# - **Sparser features**: a wedge of **superposition** (black) opens around equal importance and
#   widens as the features get sparser; at the sparsest densities both features share the dimension
#   antipodally whatever their importance, because they are almost never active together.
#
# The dashed red line is the closed-form boundary, and the trained models follow it. The few
# disagreements sit next to it, for two reasons: there the ideal solutions are nearly tied (and a
# trained model, free to tune its norms and biases, can beat all three), or all restarts got stuck
# in the worse solution (a feature that already owns the dimension gets almost no gradient
# pushing the other one in). The boundaries are sharp: a small change of sparsity or importance
# flips the optimal solution from one discrete geometry to another, a crossover of loss curves
# that the paper identifies as a **first-order phase change**.
#
# ## 6. A privileged basis: when neurons become polysemantic
#
# So far $h = W x$ has no activation function, so its basis is arbitrary: rotating $W$ changes
# nothing. "Neurons" of $h$ mean nothing, and we looked at feature *directions*. Real MLP neurons
# have a non-linearity, which makes the standard basis special (a **privileged basis**). The paper
# adds a ReLU to the hidden layer,
#
# $$h = \mathrm{ReLU}(W x), \qquad x' = \mathrm{ReLU}(W^T h + b),$$
#
# and looks at each **neuron**: which features does it respond to? Since $x \ge 0$, neuron $n$ fires
# for feature $i$ when the weight $W_{n,i}$ is positive (a negative weight inhibits it). A neuron
# that fires for one feature is monosemantic; one that fires for several is **polysemantic**.
#
# ### Exercise 7 — features per neuron
# Write `features_per_neuron(W, threshold=0.3)`: for `W` `[n_instances, n_hidden, n_features]`,
# count for every neuron (row of `W`) the features whose weight exceeds `threshold`; return an
# integer tensor `[n_instances, n_hidden]`.

# %%
def features_per_neuron(W, threshold=0.3):
    # BEGIN SOLUTION: count, per neuron (row), the features whose weight is above the threshold
    return (W > threshold).sum(-1)
    # END SOLUTION


features_per_neuron = check_features_per_neuron(features_per_neuron)

# %% [markdown]
# The paper's model: 10 features, 5 neurons, importance $I_i = 0.75^i$, at four densities.

# %% tags=["trained"]
p_relu = torch.tensor([0.5, 0.3, 0.1, 0.03])
model_relu = train_best_of(n_features=10, n_hidden=5, feature_probability=p_relu, importance=0.75 ** torch.arange(10),
                           relu_hidden=True, config=TrainConfig(steps=600, restarts=4, seed=0), functions=yours)
W_relu = model_relu.W.detach()
fig = plot_neurons(W_relu, p_relu)
plt.show()

counts = features_per_neuron(W_relu)
for k, p in enumerate(p_relu.tolist()):
    print(f"1 - S = {p:.2f}: features per neuron {counts[k].tolist()}, "
          f"{int((counts[k] > 1).sum())} of 5 neurons polysemantic, "
          f"{int((feature_norms(W_relu)[k] > 0.5).sum())} of 10 features represented")
assert counts[0].tolist() == [1] * 5 and int((counts[-1] > 1).sum()) >= 4, "monosemantic at 0.5, polysemantic when sparse"

# %% [markdown]
# Each bar is a neuron; its coloured segments are its weights from each feature (upwards: the
# feature excites it; faint, downwards: the feature inhibits it).
#
# - At density 0.5 every neuron is **monosemantic**: the 5 most important features get one neuron
#   each. Here the ReLU has aligned the features with the neurons, and reading a neuron *is*
#   reading a feature.
# - As features get sparser, more features are represented than there are neurons, and neurons
#   become **polysemantic**: first a few neurons share a small binary code for some less important
#   features, eventually every neuron responds to several unrelated features.
#
# This is the lecture's claim in miniature: polysemantic neurons are what superposition looks like
# in a privileged basis. A neuron that fires for "Python code" and for "French poetry" may simply be
# one of several neurons onto which the model has packed those (rarely co-occurring) features.
#
# ## Summary
#
# - With dense features a model represents its `n_hidden` most important features orthogonally
#   (like PCA). With sparse features it represents **more features than dimensions**, in specific
#   geometries (antipodal pairs, pentagons, …) whose interference the output ReLU and bias filter out.
# - Which features are represented, and how, changes abruptly with sparsity and importance: a
#   **phase diagram** with a superposition phase.
# - Features take fractional dimensions that **stick** at simple fractions: in our small sweep
#   at 1/2 (the paper, with a bigger model, sees 3/4, 2/3, 1/2, 2/5, 3/8).
# - With a non-linear hidden layer, superposition shows up as **polysemantic neurons**.
#
# If features live in superposition, neurons are the wrong unit of explanation. Notebook 02 goes
# the other way: it trains a **sparse autoencoder** to recover an overcomplete dictionary of
# feature directions from a model's activations, the strategy the paper calls "finding an
# overcomplete basis".
#
# **Try it yourself**: make the features *correlated* (e.g. feature 1 active only when feature 0 is)
# in `generate_batch` and retrain the 5 → 2 model. The paper predicts correlated features prefer to
# be orthogonal to each other and put anti-correlated ones in antipodal pairs. Is that what you see?
