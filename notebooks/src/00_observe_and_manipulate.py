# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 00 — Observing and manipulating a transformer
#
# *Understanding the Mechanism of LLMs*, lecture part 1: **why interpretability?**
#
# A brain can be observed only through a few electrodes; a large language model can be observed
# *completely*. Every activation of every layer on every token is a number we can read, and every
# one of them is a number we can change and then watch what the model does. LLMs are the first
# intelligent agents we can fully **observe** and **manipulate**. This notebook teaches the
# tools for both, on the course's own small language model, which runs on any laptop:
#
# | tool | what it does | kind of question |
# |---|---|---|
# | `run_with_cache` | records every activation | observe |
# | hook points | named places where activations can be read or rewritten | observe + manipulate |
# | ablation | delete a component and measure the damage | manipulate |
# | logit lens | decode an intermediate state as if it were the output | observe |
# | activation patching | copy one activation from a *clean* run into a *corrupted* run | manipulate (causal) |
#
# Interpretability research comes from two directions, and these tools serve both:
# - **Reverse engineering** (bottom-up): start from a component (a head, a neuron, a layer) and
#   ask what concept it represents and what process it carries out.
# - **Concept-based interpretability** (top-down): start from a concept (say, "the state a city is in")
#   and ask where and how the model stores it.
#
# We use [TransformerLens](https://github.com/TransformerLensOrg/TransformerLens), the standard
# library for this work: its `HookedTransformer` exposes a hook point on every activation.

# %%
import functools

import matplotlib.pyplot as plt
import torch

from transformer_lens import patching
from transformer_lens.utilities import get_act_name

from course_lib import set_seed
from course_lib.observe import (check_final_token_residuals, check_head_ablation_hook, check_logit_difference,
                                check_logit_lens, check_patch_position_hook, check_patching_score, plot_ablation,
                                plot_attention_from_last, plot_logit_lens, plot_patching)
from course_lib.world import load_world_model, world_metrics
from course_lib.world.knowledge import cities

set_seed(0)
_ = torch.set_grad_enabled(False)  # we only run the model, never train it, in this notebook

# %% [markdown]
# ## 1. The world LM
#
# Our subject is the course's **world LM**: a 4-layer transformer (attention + MLP in each layer,
# 128-dimensional residual stream, one token per word) trained on text from a synthetic world
# whose ground truth we know — US states and their cities and capitals, countries, people,
# animals, plus everyday sentences (reviews, weather, counting, dialogue). Because we wrote the
# world, we know every fact it contains, and we can check what the model learned.
# (`python -m course_lib.world train` rebuilds it; notebooks 02–05 take it apart further.)

# %%
model = load_world_model()
print(model.cfg.n_layers, "layers,", model.cfg.n_heads, "heads per layer, d_model =", model.cfg.d_model,
      ", vocabulary", model.cfg.d_vocab, "words")
metrics = world_metrics()
print(f"one-hop fact recall (phrasings never seen in training): {metrics['one_hop_recall']['overall']:.1%}")


def complete(prompt, n_tokens=1):
    """Greedy continuation of a prompt."""
    tokens = model.to_tokens(prompt)
    for _ in range(n_tokens):
        tokens = torch.cat([tokens, model(tokens)[:, -1:].argmax(-1)], dim=1)
    return model.to_string(tokens[0, -n_tokens:])


answers = {"Dallas is a city in": "Texas", "Oakland is a city in": "California", "The capital of Texas is": "Austin",
           "The capital of the state containing Dallas is": "Austin"}
for prompt in answers:
    print(f"{prompt} → {complete(prompt)}")
assert all(complete(prompt) == answer for prompt, answer in answers.items())

# %% [markdown]
# ## 2. Observe: `run_with_cache` and hook points
#
# `model.run_with_cache(tokens)` runs the model and returns the logits **and** an
# `ActivationCache` holding every intermediate activation, keyed by the name of its hook point.
# The names follow the architecture: `hook_embed`, then per block `blocks.{l}.hook_resid_pre`,
# `blocks.{l}.attn.hook_pattern` (attention weights), `blocks.{l}.attn.hook_z` (per-head outputs
# before the output projection), `blocks.{l}.hook_mlp_out`, `blocks.{l}.hook_resid_post`, …
# `transformer_lens.utils.get_act_name("z", 0)` spells out the full name `blocks.0.attn.hook_z`.

# %%
dallas = model.to_tokens("Dallas is a city in")
logits, cache = model.run_with_cache(dallas)
print("tokens:", model.to_str_tokens(dallas))
print("logits:", tuple(logits.shape), "= [batch, position, vocabulary]")
for name in [n for n in cache.keys() if n.startswith("blocks.0.")]:
    print(f"{name:32s} {tuple(cache[name].shape)}")

# %% [markdown]
# The **residual stream** is the model's running state: each block reads it and adds its output
# back. The cache also accepts short names: `cache["resid_post", 1]` is
# `cache["blocks.1.hook_resid_post"]`.
#
# ### Exercise 1 — the residual stream at the last position
# Write `final_token_residuals(cache, n_layers)` returning the residual stream at the **last**
# position, before block 0 (`resid_pre` of block 0, i.e. the embedding) and after each block
# (`resid_post`), stacked into a tensor of shape `[n_layers + 1, batch, d_model]`.

# %%
def final_token_residuals(cache, n_layers):
    # BEGIN SOLUTION: stack cache["resid_pre", 0][:, -1] and cache["resid_post", l][:, -1] for every layer l
    return torch.stack([cache["resid_pre", 0][:, -1]] + [cache["resid_post", l][:, -1] for l in range(n_layers)])
    # END SOLUTION


final_token_residuals = check_final_token_residuals(final_token_residuals)

# %%
residuals = final_token_residuals(cache, model.cfg.n_layers)
print("shape:", tuple(residuals.shape))
# TransformerLens has this built in: the residual stream after every block, at the last position.
assert torch.allclose(residuals, cache.accumulated_resid(pos_slice=-1))
print("norm of the last-position state after each block:", [round(x, 1) for x in residuals[:, 0].norm(dim=-1).tolist()])

# %% [markdown]
# Attention patterns are activations too. Which earlier token does the last position (`in`) look
# at? For a fact about Dallas, we expect some head to attend to `Dallas`. Here are the heads of
# block 0.

# %%
fig = plot_attention_from_last(cache["pattern", 0][0], model.to_str_tokens(dallas), layer=0)
plt.show()
for head in range(model.cfg.n_heads):
    print(f"block 0, head {head}: attention from the last position to 'Dallas' = {cache['pattern', 0][0, head, -1, 1]:.2f}")

# %% [markdown]
# ## 3. Observe: the logit lens
#
# The last layer's residual state is turned into logits by the final LayerNorm and the
# unembedding. The **logit lens** (nostalgebraist, 2020) applies the same two steps to the state
# after *any* layer: "if the model had to answer now, what would it say?" It is a cheap way to see
# *when* an answer becomes decodable.
#
# ### Exercise 2 — `logit_lens(model, resid)`
# Map residual states (any leading shape, last dimension `d_model`) to logits.

# %%
def logit_lens(model, resid):
    # BEGIN SOLUTION: apply model.ln_final, then model.unembed
    return model.unembed(model.ln_final(resid))
    # END SOLUTION


logit_lens = check_logit_lens(logit_lens)

# %% [markdown]
# Now decode the last position of every city prompt after each block and record the probability
# of the correct state.

# %%
city_state = {c: s for c, s in cities().items() if len(c.split()) == 1}  # one-token city names: same length prompts
city_names = sorted(city_state)
city_tokens = model.to_tokens([f"{c} is a city in" for c in city_names])
state_ids = torch.tensor([model.to_tokens(city_state[c], prepend_bos=False)[0, 0] for c in city_names])  # first token
_, city_cache = model.run_with_cache(city_tokens)
lens_probs = logit_lens(model, final_token_residuals(city_cache, model.cfg.n_layers)).softmax(-1)
p_correct = lens_probs[:, torch.arange(len(city_names)), state_ids]  # [n_layers + 1, n_cities]

fig = plot_logit_lens(p_correct, city_names)
plt.show()
print("mean P(correct state) per stage:", [round(x, 2) for x in p_correct.mean(1).tolist()])

# %% [markdown]
# ## 4. Manipulate: ablation with a hook
#
# A **hook** is a function `hook_fn(activation, hook)` attached to a hook point; whatever it
# returns replaces the activation. `model.run_with_hooks(tokens, fwd_hooks=[(name, hook_fn)])`
# runs the model with it. Deleting (zeroing) a component this way is an **ablation**: if
# performance collapses, the component was necessary.
#
# ### Exercise 3 — ablate one attention head
# `hook_z` has shape `[batch, position, head, d_head]`. Write `head_ablation_hook(z, hook, head)`
# returning `z` with the given head zeroed at every position (work on a copy: `z.clone()`).

# %%
def head_ablation_hook(z, hook, head):
    # BEGIN SOLUTION: copy z, zero z[:, :, head], return the copy
    z = z.clone()
    z[:, :, head] = 0.0
    return z
    # END SOLUTION


head_ablation_hook = check_head_ablation_hook(head_ablation_hook)

# %% [markdown]
# ### Exercise 4 — a metric: the logit difference
# How strongly does the model prefer the right answer over a specific wrong one? Write
# `logit_difference(logits, correct, wrong)`: at the **last** position, `logit[correct] −
# logit[wrong]`, averaged over the batch (`correct` and `wrong` are token-id tensors of shape
# `[batch]`). Unlike accuracy it is continuous, so it shows partial effects.

# %%
def logit_difference(logits, correct, wrong):
    # BEGIN SOLUTION: index logits[:, -1] with (row, correct) and (row, wrong); return the mean difference
    last = logits[:, -1]
    rows = torch.arange(last.shape[0], device=last.device)
    return (last[rows, correct] - last[rows, wrong]).mean()
    # END SOLUTION


logit_difference = check_logit_difference(logit_difference)

# %% [markdown]
# Ablate each head and each MLP in turn and measure the logit difference between the correct
# state and the next state in our list (a fixed wrong answer).

# %%
wrong_ids = state_ids.roll(5)  # the state of another city (a fixed wrong answer)
clean_ld = logit_difference(model(city_tokens), state_ids, wrong_ids).item()
effects = {}
for layer in range(model.cfg.n_layers):
    for head in range(model.cfg.n_heads):
        hook = functools.partial(head_ablation_hook, head=head)
        logits = model.run_with_hooks(city_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])
        effects[f"L{layer}H{head}"] = logit_difference(logits, state_ids, wrong_ids).item()
    logits = model.run_with_hooks(city_tokens, fwd_hooks=[(get_act_name("mlp_out", layer), lambda x, hook: 0 * x)])
    effects[f"MLP{layer}"] = logit_difference(logits, state_ids, wrong_ids).item()

fig = plot_ablation(effects, clean_ld)
plt.show()
print(f"clean logit difference: {clean_ld:.2f}")
for name, value in effects.items():
    print(f"  ablate {name:6s} → {value:6.2f}")

# %% [markdown]
# Ablation says which components are **necessary**, but zero is an unnatural value for an
# activation, and a component can matter for reasons unrelated to the fact (for instance, it may
# just keep the state's scale). Patching asks a sharper question.
#
# ## 5. Manipulate: activation patching (causal tracing)
#
# Run the model on a **clean** prompt (`Dallas is a city in` → Texas) and a **corrupted** one that
# differs in one token (`Oakland is a city in` → California). Then run the corrupted prompt again,
# but overwrite one activation — one layer, one position — with its value from the clean run.
# If the answer swings back to Texas, that activation carries the information "the city is
# Dallas" (and is sufficient to move the answer).
#
# ### Exercise 5 — the patching hook
# Write `patch_position_hook(activation, hook, pos, clean_cache)`: a copy of `activation` whose
# position `pos` (second dimension) is replaced by the clean run's activation at the same hook
# point, `clean_cache[hook.name]`.

# %%
def patch_position_hook(activation, hook, pos, clean_cache):
    # BEGIN SOLUTION: copy the activation, overwrite [:, pos] with clean_cache[hook.name][:, pos]
    activation = activation.clone()
    activation[:, pos] = clean_cache[hook.name][:, pos]
    return activation
    # END SOLUTION


patch_position_hook = check_patch_position_hook(patch_position_hook)

# %% [markdown]
# ### Exercise 6 — a normalised score
# Raw logit differences are hard to compare. Normalise: `(patched − corrupted) / (clean −
# corrupted)`, which is 0 when the patch changes nothing and 1 when it restores the clean
# behaviour fully. (The first lines are given: where clean and corrupted agree there is nothing to
# restore, and the score would be 0/0.)

# %%
def patching_score(patched, corrupted, clean):
    if torch.as_tensor(clean == corrupted).any():
        raise ValueError("patching_score: the clean and corrupted values are equal, so there is nothing to "
                         "restore and the score is undefined (0/0). Use prompts or a metric on which the two runs differ.")
    # BEGIN SOLUTION: (patched - corrupted) / (clean - corrupted)
    return (patched - corrupted) / (clean - corrupted)
    # END SOLUTION


patching_score = check_patching_score(patching_score)

# %%
clean_tokens, corrupted_tokens = model.to_tokens("Dallas is a city in"), model.to_tokens("Oakland is a city in")
texas, california = model.to_tokens("Texas", prepend_bos=False)[0], model.to_tokens("California", prepend_bos=False)[0]
metric = functools.partial(logit_difference, correct=texas, wrong=california)
clean_value, corrupted_value = metric(model(clean_tokens)).item(), metric(model(corrupted_tokens)).item()
print(f"logit diff Texas − California: clean (Dallas) {clean_value:.2f}, corrupted (Oakland) {corrupted_value:.2f}")

# One patch with your hook: the city position (1), before block 1.
_, clean_cache = model.run_with_cache(clean_tokens)
hook = functools.partial(patch_position_hook, pos=1, clean_cache=clean_cache)
patched_value = metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("resid_pre", 1), hook)])).item()
print(f"patch 'before block 1' at the city position: score {patching_score(patched_value, corrupted_value, clean_value):.2f}")

# Every (layer, position) at once with TransformerLens's patching module, which does the same as your hook.
grid = patching_score(patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric),
                      corrupted_value, clean_value)
assert abs(grid[1, 1].item() - patching_score(patched_value, corrupted_value, clean_value)) < 1e-4

fig = plot_patching(grid, model.to_str_tokens(clean_tokens), model.to_str_tokens(corrupted_tokens))
plt.show()
print("patching score (rows: before each block; columns: positions):")
print((grid.round(decimals=2) + 0.0).numpy())  # + 0.0 turns -0.0 into 0.0

# %%
# The claims of the next paragraphs, checked on this model (a rebuilt world LM must still satisfy them).
attending = int(cache["pattern", 0][0, :, -1, 1].argmax())  # the block-0 head attending most to 'Dallas'
hurting = min(effects, key=lambda name: effects[name] if name.startswith("L") else float("inf"))
decodable = next(stage for stage, p in enumerate(p_correct.mean(1).tolist()) if p > 0.5)  # 0 = the embedding
print(f"the head attending most to 'Dallas': L0H{attending}; the head whose ablation hurts most: {hurting}")
print(f"the correct state is first decodable (mean P > 0.5 under the logit lens) after block {decodable - 1}")
assert hurting == f"L0H{attending}"
assert abs(grid[0, 1] - 1) < 0.05 and (grid[0, 2:].abs() < 0.05).all(), "before block 0: only the city position"
assert grid[1, -1] > 0.5, "before block 1: mostly at the last position"
assert decodable == 1, "decodable right after block 0, when the information reaches the last position"
assert effects["MLP0"] < 0.1 * clean_ld, "zeroing MLP 0 destroys the prediction"

# %% [markdown]
# Read the grid row by row. Before block 0 the information "Dallas, not Oakland" sits only at the
# city's position: patching there restores Texas completely, patching anywhere else does nothing.
# Before block 1 it already sits mostly at the **last** position, where the answer is read out:
# block 0's attention moved it there — the head of block 0 that you saw attending to `Dallas`,
# which is also the head whose ablation hurt most (both printed above). That is a **circuit** for
# this fact, found by intervention rather than by eyeballing activations: correlation becomes causation.
#
# Compare with the logit lens: on this model the correct state becomes *decodable* right after
# block 0 (printed above), the same block whose head moved the information to the last position,
# as patching shows. Here observing and manipulating agree, but they answer different questions:
# the lens tells when the answer can be *read out* in the output basis, patching tells where the
# information that *changes* the answer sits. They need not coincide: information can be present
# (causally) before a linear read-out finds it, and notebook 06 shows a probe decoding a bridge
# entity that the model fails to use.
#
# Compare with the ablations, too: zeroing MLP 0 destroys the prediction entirely, yet patching never
# points at anything specific to Dallas there; MLP 0 is needed for *every* input (it acts as part of
# the token embedding). Ablation measures necessity, patching measures what carries the difference
# between two inputs; both are needed, and zero-ablation can mislead.
#
# ## 6. Observe or manipulate? The limits of what we did
#
# - The logit lens **observes**: it tells us when the answer is *decodable*, not whether the model
#   *uses* it. Notebook 06 shows a probe decoding a bridge entity the model fails to use.
# - Ablation and patching **manipulate**: they establish causal roles, but only for the
#   components and inputs we chose to test.
# - Both treat neurons, heads and layers as the units of explanation. In real models these units
#   are **polysemantic**: one neuron responds to many unrelated concepts. The next notebooks ask why
#   (superposition, notebook 01) and how to find better units (sparse autoencoders, notebook 02).
#
# **Try it yourself**: patch `The capital of Texas is` into `The capital of California is`. Where
# does the information live now? Does the same head carry it?
