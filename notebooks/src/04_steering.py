# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 — Steering: from correlation to cause, and choosing the features that steer
#
# *Understanding the Mechanism of LLMs*, lecture part 2: causality is the essence of science.
# Interpretability finds **correlations** (a latent fires on "Texas"); an **intervention** proves a
# **cause** (raise the latent, and the model writes about Texas). "SAEs are good for steering — if
# you select the right features" (Arad, Mueller & Belinkov 2025), and "post-train SAEs for better
# steering" (AlignSAE).
#
# Everyone else measures steering with an LLM judge. Our world knows the concept of every word
# and the exact probability of every text, so here **steering success and fluency are measured
# exactly**.
#
# | part | what | measured by |
# |---|---|---|
# | 1 | correlation: the latents that fire on a concept, the difference-in-means direction | AUROC against the labels; exercise 1 |
# | 2 | exact metrics: concept success, fluency under the grammar, the harmonic aggregate | exercises 2, 3 |
# | 3 | cause: add or clamp a latent; a latent that *reads* "Texas" vs one that makes the model *say* it; the error term; side effects | exercise 4 |
# | 4 | methods side by side: SAE latents (add, clamp), difference of means, ActAdd, prompting, random | success–fluency curves |
# | 5 | Arad et al. reproduced: input and output scores of every latent, success by quartile, filtering | exercises 5, 6 |
# | 6 | post-training an SAE for steering (AlignSAE) | concept swap, reconstruction |
# | 7 | a steering panel | live |
#
# The heavy sweeps (every latent at three strengths, every method on 22 concepts, two seeds) are
# precomputed by `OMP_NUM_THREADS=1 python -m course_lib.steering build` into `data/steering/`
# (card: `data/steering/README.md`); this notebook loads them and recomputes a live subset.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, display

from course_lib import set_seed
from course_lib.interpretation import sae_units
from course_lib.sae.world import eval_tokens, text_positions
from course_lib.steering import (STEERING_DIR, CompareConfig, GenerateConfig, Steering, SteeringLab, SweepConfig,
                                 amplified_logits, asserted, by_strength, check_concept_success, check_diff_in_means,
                                 check_harmonic_aggregate, check_input_score, check_output_score, check_steering_hook,
                                 chosen_strength, compare_methods, concept_aurocs, context_sentences,
                                 continuations_html, generated_mask, kl_side_effect, latent_scores, load,
                                 load_aligned_sae, logit_lens_tokens, method_directions, method_table, plot_methods,
                                 plot_scores, prompts_for, sample, setup, state_labels, steering_panel, swap_success,
                                 sweep_figures)

torch.set_num_threads(1)
set_seed(0)

# %% [markdown]
# ## 1. Correlation: which latents fire on a concept?
#
# We read the world LM on 800 **held-out** documents (notebook 03's labelled activations: the
# residual stream where the shipped SAE reads it, `blocks.2.hook_resid_pre`, and the grammar's label
# of every token). A **concept** is a label value — one of the 16 states, 4 topics, 2 sentiments —
# and its **words** are those that carry the label (almost) wherever they occur: `Texas`; `York`
# but not `New` (which also starts `New Delhi`); for a topic, the words of its sentences that appear
# nowhere else.

# %%
model, sae, sae_model, data, concepts = setup()
print(f"{len(data)} labelled text tokens; {len(concepts)} concepts:")
for kind in ("state", "topic", "sentiment"):
    print(f"  {kind:9s}: " + "; ".join(f"{n} ({', '.join(c.words[:4])}{', ...' if len(c.words) > 4 else ''})"
                                      for n, c in concepts.items() if c.kind == kind)[:300])
latent_acts = sae_units(sae, data.resid).dense()  # [tokens, 1024]

# %% [markdown]
# How well does each latent **detect** a concept? The AUROC of its activation as a detector of the
# concept's words (1 = perfect, 0.5 = chance) — against the **current** token (the latent *reads* the
# concept) and against the **next** token (the latent fires just before the model *writes* it).

# %% tags=["trained"]
texas = concepts["Texas"]
aucs = concept_aurocs(latent_acts, data, texas)
reader, writer = int(aucs["input"].argmax()), int(aucs["output"].argmax())
for role, top in (("reads Texas (current token)", aucs["input"]), ("writes Texas (next token)", aucs["output"])):
    best = top.topk(3).indices.tolist()
    print(f"latents that best {role}: " + ", ".join(
        f"#{f} (AUROC in {aucs['input'][f]:.3f}, out {aucs['output'][f]:.3f})" for f in best))

# %% [markdown]
# ### Exercise 1 — the difference-in-means direction
# The simplest steering vector needs no SAE: the mean activation where the concept holds minus the
# mean elsewhere (CAA, Rimsky et al. 2024; AxBench's strongest baseline). `acts` is `[n, d_model]`,
# `is_concept` `[n]` bool. Return `[d_model]` (not normalised).

# %%
def diff_in_means(acts, is_concept):
    # BEGIN SOLUTION: mean over the concept rows minus the mean over the other rows
    return acts[is_concept].mean(0) - acts[~is_concept].mean(0)
    # END SOLUTION


diff_in_means = check_diff_in_means(diff_in_means)

# %% tags=["trained"]
is_texas = torch.from_numpy(np.isin(data.labels["token"], texas.words))
dim_texas = diff_in_means(data.resid, is_texas)
W = sae.W_dec.detach()
cos = torch.nn.functional.cosine_similarity(W, dim_texas[None], dim=-1)
print(f"difference of means for Texas: norm {dim_texas.norm():.2f}; the most aligned decoder row: latent "
      f"#{int(cos.argmax())} (cosine {cos.max():.3f}); the reading latent #{reader}: {cos[reader]:.3f}, "
      f"the writing latent #{writer}: {cos[writer]:.3f}")

# %% [markdown]
# ## 2. Exact metrics
#
# Before we intervene, what do we measure? AxBench (Wu et al. 2025) and Arad et al. ask an LLM
# judge for a *concept score* and a *fluency score* (0–2 each) and combine them by a harmonic mean.
# Our world answers both exactly.
#
# ### Exercise 2 — concept success
# `tokens` `[batch, T]`: generated tokens; `probs` `[batch, T, d_vocab]`: the distribution each was
# drawn from; `concept` `[d_vocab]` bool: the concept's words; `valid` `[batch, T]` bool: the
# positions that belong to the text (up to its `<eos>`). Return `(hit, mass)`, both `[batch]` floats:
# `hit` is 1.0 where the text contains a concept word; `mass` the probability the model put on the
# concept's words, summed over them, averaged over the valid positions (0 for an empty text). The
# mass is the exact expectation of the hit *rate*, free of sampling noise.

# %%
def concept_success(tokens, probs, concept, valid):
    # BEGIN SOLUTION: hit: any concept token among the valid ones; mass: probs[..., concept].sum(-1), mean over valid
    in_concept = concept[tokens] & valid
    hit = in_concept.any(-1).float()
    per_position = probs[..., concept].sum(-1) * valid
    mass = per_position.sum(-1) / valid.sum(-1).clamp(min=1)
    return hit, mass
    # END SOLUTION


concept_success = check_concept_success(concept_success)

# %% [markdown]
# **Fluency** is the world grammar's exact log-probability of the generated text given its prompt,
# per generated token (`fluency`, from the tables of the independent scorer; a text cut before
# `<eos>` is scored as the beginning of a document). Text the grammar cannot write — a false fact,
# a broken sentence — is **out of support** (probability 0) and counted as such. Beside it we report
# the unsteered world LM's log-probability per token (`lm_logprob`): the LM is an excellent but not
# perfect copy of the grammar, so the two differ a little on ordinary text, and a lot on broken text
# (the LM gives every string some probability; the grammar gives it 0).
#
# ### Exercise 3 — the harmonic aggregate
# AxBench's aggregate: the harmonic mean `2 s f / (s + f)` of a success score `s` and a fluency
# score `f`, both in [0, 1], elementwise, 0 where both are 0. It is high only when both are: a
# strength that steers perfectly but writes gibberish scores 0 — this is how a strength is chosen.

# %%
def harmonic_aggregate(success, fluency):
    # BEGIN SOLUTION: 2 * s * f / (s + f), the denominator clamped away from 0
    return 2 * success * fluency / (success + fluency).clamp(min=1e-12)
    # END SOLUTION


harmonic_aggregate = check_harmonic_aggregate(harmonic_aggregate)

# %% [markdown]
# ## 3. Cause: intervene and measure what changes
#
# A steering vector is added to the residual stream by a **hook**: TransformerLens calls a hook
# function on the activation at a hook point and passes on what it returns.
#
# ### Exercise 4 — a steering hook
# Return a hook function `hook(resid, hook)` that adds `scale * direction` to `resid`
# `[batch, pos, d_model]` at `positions` (an int, a list, a slice or an index tensor; `None`: every
# position), **without modifying its input** (return a new tensor). `direction` is `[d_model]`, or
# one direction per row, `[batch, 1, d_model]`.

# %%
def steering_hook(direction, scale, positions=None):
    # BEGIN SOLUTION: a closure; resid + scale * direction, or on a clone at [:, positions, :]
    def hook(resid, hook):
        if positions is None:
            return resid + scale * direction
        steered = resid.clone()
        steered[:, positions, :] += scale * direction
        return steered

    return hook
    # END SOLUTION


steering_hook = check_steering_hook(steering_hook)

# %% [markdown]
# We generate from **neutral prompts**: held-out first sentences that contain no concept word, 12
# sampled tokens each (seeded), the vector added at the last prompt position and every generated
# one. Strength is the vector's norm in units of the median norm of the stream on text tokens.
# Which latent steers toward Texas — the one that *reads* it or the one that fires before the model
# *writes* it?

# %% tags=["trained"]
prompts = prompts_for(model, concepts, 6, seed=0)
scale = float(data.resid.norm(dim=-1).median())
hook_name = sae.cfg.metadata.hook_name
P, eos = prompts.shape[1], model.tokenizer.eos_token_id
texas_mask = torch.zeros(model.cfg.d_vocab, dtype=torch.bool)
texas_mask[list(texas.token_ids)] = True


def steer_and_measure(direction, strength, concept_mask, seed=0):
    """Hit rate and mean concept mass of steered generations (2 per prompt)."""
    batch = prompts.repeat(2, 1)
    steer = Steering(hook_name, (direction / direction.norm()).expand(len(batch), -1),
                     torch.full((len(batch),), strength * scale), P - 1)
    tokens, probs = sample(model, batch, GenerateConfig(seed=seed), steer, keep_probs=True)
    valid = generated_mask(tokens, P, eos)
    hit, mass = concept_success(tokens[:, P:], probs, concept_mask, valid[:, P:])
    return hit.mean().item(), mass.mean().item()


print(f"stream median norm {scale:.2f}")
print(f"{'strength':>8s}  {'reading latent #' + str(reader):>24s}  {'writing latent #' + str(writer):>24s}")
roles = {}
for strength in (0.0, 0.5, 1.0, 2.0):
    roles[strength] = [steer_and_measure(W[f], strength, texas_mask) for f in (reader, writer)]
    print(f"{strength:8.1f}  " + "  ".join(f"hit {h:.2f}, mass {m:.3f}".rjust(24) for h, m in roles[strength]))
assert roles[1.0][1][0] >= roles[1.0][0][0] + 0.3, "the writing latent steers toward Texas, the reading one does not"

# %% [markdown]
# The latent that best detects "Texas" in the input does not make the model write it, at any
# strength shown; the latent that fires just before the model writes "Texas" does (the table above).
# Steering with the reading latent adds "Texas was just read" to the stream, which the model has no
# reason to turn into writing Texas. Correlation with the input does not tell us what a latent
# *does*: only the intervention does — and the ground truth separates the two roles.
#
# ### Steering through the SAE, and the error term
# sae-lens's `HookedSAETransformer` splices the SAE in at its hook point; a hook on
# `hook_sae_acts_post` then edits latents directly (this is how one **clamps** a latent). But the
# SAE's reconstruction is not perfect: spliced in alone it changes the model before any edit —
# the classic "steering does nothing / breaks everything" bug. With `use_error_term=True` the
# reconstruction error is added back, the unedited model is exactly the original, and an edit of
# a latent by Δa changes the stream by exactly Δa · W_dec[latent].

# %% tags=["trained"]
acts_hook, out_hook = f"{hook_name}.hook_sae_acts_post", f"{hook_name}.hook_sae_output"
probe = model.to_tokens(["The capital of Texas is", "Dallas is a city in"])
try:  # the hook point of the latents exists only while the SAE is spliced in
    sae_model.run_with_hooks(probe, fwd_hooks=[(acts_hook, lambda acts, hook: acts)])
except Exception as err:
    print(f"a hook on {acts_hook} without the SAE spliced in: {type(err).__name__}")
held_out = eval_tokens(model, n_docs=64)
with torch.no_grad():
    clean = model(held_out)
    text = text_positions(held_out, model.tokenizer)
    for use_error_term in (False, True):
        with sae_model.saes(saes=[sae], use_error_term=use_error_term):
            spliced = sae_model(held_out)
        changed = (spliced.argmax(-1) != clean.argmax(-1))[text].float().mean()
        print(f"SAE spliced in, error term {'on ' if use_error_term else 'off'}: KL(original || spliced) "
              f"{kl_side_effect(clean, spliced, text).clamp(min=0):.4f} nats, top-1 changed at {changed:.2%} of text positions")
    delta = 4.0

    def raise_writer(acts, hook):
        acts = acts.clone()
        acts[..., writer] += delta
        return acts

    with sae_model.saes(saes=[sae], use_error_term=True):
        _, before = sae_model.run_with_cache(probe, names_filter=out_hook)
        with sae_model.hooks(fwd_hooks=[(acts_hook, raise_writer)]):
            _, after = sae_model.run_with_cache(probe, names_filter=out_hook)
change = after[out_hook] - before[out_hook]
error = (change - delta * W[writer]).abs().max().item()
print(f"raising latent #{writer} by {delta}: the stream changes by {delta} x W_dec[{writer}] up to {error:.1e}")
assert error < 1e-4

# %% [markdown]
# Forget to splice the SAE in and the latents' hook point does not exist (TransformerLens refuses
# the hook — elsewhere, a hook silently never called: "steering does nothing"). Splice it in without
# the error term and the model runs on the SAE's reconstruction: every intervention is then measured
# against a slightly different model (how different depends on the SAE: the shipped one reconstructs
# very well, so little changes here; a worse SAE "breaks everything"). With the error term, the
# spliced model *is* the original, and an edit of Δa is exactly Δa · W_dec[latent].

# %% [markdown]
# ### Side effects
# A steering vector is added everywhere, also where it is not wanted. Its side effect on unrelated
# text: KL(unsteered ‖ steered) of the next-token distributions on held-out documents.

# %% tags=["trained"]
unrelated = model.to_tokens(["The lion lives in the savanna .", "It is sunny today .", "I count to three : one , two , three ."])
with torch.no_grad():
    base_logits = model(unrelated)
    for strength in (0.25, 0.5, 1.0):
        cells = []
        for name, v in (("reading latent", W[reader]), ("writing latent", W[writer]), ("diff-in-means", dim_texas)):
            hooks = [(hook_name, steering_hook(v / v.norm(), strength * scale))]
            cells.append(f"{name} {kl_side_effect(base_logits, model.run_with_hooks(unrelated, fwd_hooks=hooks)):.3f}")
        print(f"strength {strength:4.2f}: KL " + ", ".join(cells))

# %% [markdown]
# ## 4. Methods side by side, on the same concepts
#
# Every method gets the same 22 concepts, the same neutral prompts and the same strengths (the
# vector's norm, in units of the stream's median norm):
#
# | method | the vector |
# |---|---|
# | SAE latent | the decoder row of the latent that best *detects* the concept (input AUROC) — what correlation picks |
# | SAE latent, output-filtered | among latents whose 5 logit-lens tokens include a concept word, the best output score (section 5) |
# | SAE clamp | the detecting latent's activation set to the strength, through the SAE with its error term |
# | difference of means | exercise 1, on the concept's words (CAA-style, added at every position from the prompt's end) |
# | ActAdd | one prompt pair: the stream at `<bos> word` minus at `<bos> The` (Turner et al. 2023) |
# | random | a random direction: the control |
# | prompting | no vector: the prompt is a document's beginning that mentions the concept |
#
# The sweep over 22 concepts × 7 methods × 4 strengths × 2 seeds is shipped; here we recompute one
# concept live and check it against the shipped rows.

# %% tags=["trained"]
shipped = [load(f"methods_seed{s}.json")["rows"] for s in (0, 1)]
sweep0 = load("sweep_seed0.json")
live_scores = latent_scores(sae_model, sae, latent_acts, data, prompts, SweepConfig(n_prompts=6), progress=False)
directions = method_directions(model, sae, data, latent_acts, concepts, live_scores, torch.Generator().manual_seed(0))
one = {"Texas": texas}
live_rows = compare_methods(model, sae_model, sae, one, {"vectors": {m: v[:1] for m, v in directions["vectors"].items()},
                                                         "latent": directions["latent"][:1]},
                            context_sentences(data, one), prompts, scale, CompareConfig(seed=0))
shipped_texas = [r for r in shipped[0] if r["concept"] == "Texas"]
gap = max(abs(a["hit"] - b["hit"]) for a, b in zip(live_rows, shipped_texas))
print(f"Texas, live against shipped: {len(live_rows)} rows, largest hit-rate difference {gap:.3f}")
assert gap <= 0.2  # the same seeds: equal here; another floating-point path may flip a few samples

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.02}
tables = [method_table(rows) for rows in shipped]
print("per concept, the strength with the best harmonic aggregate of hit rate and exact fluency; mean over 22 concepts")
print(f"{'method':30s} " + "".join(f"{'seed ' + str(s) + ': harmonic, hit, fluency':>36s}" for s in (0, 1)))
for method in tables[0]:
    print(f"{method:30s} " + "".join(f"{t[method]['harmonic']:12.3f}{t[method]['success']:12.3f}{t[method]['fluency']:12.3f}"
                                     for t in tables))
fig = plot_methods(shipped[0], ["SAE latent", "SAE latent, output-filtered", "difference of means", "ActAdd", "random",
                                "prompting", "unsteered"])
plt.show()
for t in tables:
    assert t["difference of means"]["harmonic"] >= t["SAE latent"]["harmonic"] - 0.02, t
    assert t["SAE latent, output-filtered"]["harmonic"] >= t["difference of means"]["harmonic"] - 0.02, t
for seed, rows in enumerate(shipped):
    base_hit = by_strength(rows, "unsteered")[0.0]
    print(f"seed {seed}: hit rate by strength: unsteered {base_hit:.3f}; random "
          + ", ".join(f"{s}: {h:.3f}" for s, h in by_strength(rows, "random").items())
          + "; difference of means " + ", ".join(f"{s}: {h:.3f}" for s, h in by_strength(rows, "difference of means").items()))
    assert all(abs(h - base_hit) <= 0.05 for s, h in by_strength(rows, "random").items() if s <= 0.75)

# %% [markdown]
# The two fluency measures disagree exactly where it matters. The grammar gives broken text
# probability 0 (out of support); the LM gives it a low but finite probability; and the text the
# grammar *can* still write under strong steering is ordinary world text, as likely per token as
# unsteered text. (Even unsteered, a few generations are out of support: the LM is a very good, not
# a perfect, copy of the grammar.) Difference of means, seed 0, mean over concepts:

# %% tags=["trained"]
print(f"{'strength':>8s} {'LM log-prob/token':>18s} {'share in support':>17s} {'exact log-prob/token (in support)':>34s}")
for strength in (0.0, 0.25, 0.5, 0.75, 1.0):
    method = "unsteered" if strength == 0 else "difference of means"
    mine = [r for r in shipped[0] if r["method"] == method and r["strength"] == strength]
    exact = [v for r in mine for v in r["exact_per_text"] if v is not None]
    print(f"{strength:8.2f} {np.mean([r['lm_logprob'] for r in mine]):18.2f} {np.mean([r['in_support'] for r in mine]):17.2f} "
          f"{np.mean(exact) if exact else float('nan'):34.2f}")

# %% [markdown]
# Reading the table and the curve (the numbers are the ones printed above, both seeds):
# - **Prompting** steers best, at almost no fluency cost: the world LM follows its context.
# - Every vector trades fluency for success: past strength 0.5 the share of generations the
#   grammar can write falls fast (the curve bends left). The harmonic aggregate picks a strength
#   before that.
# - **Difference of means beats the detecting SAE latent** (AxBench's finding, asserted): the latent
#   that correlation picks is not reliably better than a random direction (compare the two rows,
#   seed by seed). It fires on the concept word — it *reads* it — which is not what steering needs
#   (section 3).
# - **Filtering by output score closes the gap**: the output-filtered latent writes the concept more
#   often than any other vector, at a larger fluency cost, and its harmonic aggregate passes
#   difference of means on both seeds (asserted).
# - **Random directions do not steer**: at every strength up to 0.75 their hit rate stays within
#   0.05 of unsteered text (asserted); by strength 1 they break the text as well (their fluency falls
#   like every other vector's).
# - **Clamping** the detecting latent gives nearly the same numbers as adding it: the latent is
#   mostly silent at the positions we steer, and where it is silent clamping it to a value adds
#   exactly that value.

# %% [markdown]
# ## 5. Arad et al. reproduced: the features that steer
#
# Arad, Mueller & Belinkov (2025) score every latent twice, from their code's definitions:
# - its **logit-lens tokens**: the top tokens of `softmax(unembed(ln_final(W_dec[f])))`;
# - **output score**: raise the latent at the last position of a neutral prefix (by 10 × the largest
#   latent activation there, error term kept) and score the rank and probability of its lens tokens
#   in the next-token distribution: does raising it make the model *say* them?
# - **input score**: the fraction of its top activating examples whose token is a lens token: does
#   it fire on what it promotes?
#
# ### Exercise 5 — the output score
# `logits` `[..., d_vocab]`: the next-token logits after raising the latent; `lens_tokens` `[..., k]`
# (long). Return `(1 − r / d_vocab) × p` per row, where p is the largest probability of a lens token
# and r the smallest rank of a lens token (0 for the most probable token of the vocabulary: the number
# of tokens strictly more probable than it).

# %%
def output_score(logits, lens_tokens):
    # BEGIN SOLUTION: softmax; gather the lens probabilities; rank = tokens strictly more probable; combine
    probs = logits.softmax(-1)
    lens_probs = probs.gather(-1, lens_tokens)
    ranks = (probs[..., None, :] > lens_probs[..., :, None]).sum(-1)
    rank_score = 1 - ranks.min(-1).values / probs.shape[-1]
    return rank_score * lens_probs.max(-1).values
    # END SOLUTION


output_score = check_output_score(output_score)

# %% [markdown]
# ### Exercise 6 — the input score
# `top_tokens` `[..., n]` (long): the token of each of the latent's top activating examples (repeats
# counted); `lens_tokens` `[..., k]`. Return the fraction of the examples whose token is a lens token.

# %%
def input_score(top_tokens, lens_tokens):
    # BEGIN SOLUTION: compare every example with every lens token, any over the lens axis, mean over examples
    hits = (top_tokens[..., :, None] == lens_tokens[..., None, :]).any(-1)
    return hits.float().mean(-1)
    # END SOLUTION


input_score = check_input_score(input_score)

# %% [markdown]
# Your two functions, live, on the reading and the writing latent of Texas (the output score averaged
# over the 6 neutral prompts, logit-lens top 20, top 100 examples), next to `latent_scores`, which
# computes them for every latent at once (its input score counts only examples where the latent fires):

# %% tags=["trained"]
pair = [reader, writer]
lens20 = logit_lens_tokens(model, W, 20)
logits = torch.stack([amplified_logits(sae_model, sae, pair, p[None]) for p in prompts])
live_out = output_score(logits, lens20[pair].expand(len(prompts), -1, -1)).mean(0)
token_ids = torch.tensor(model.tokenizer.convert_tokens_to_ids(list(data.labels["token"])))
live_in = input_score(token_ids[latent_acts[:, pair].topk(100, dim=0).indices.T], lens20[pair])
del latent_acts  # the notebook's memory budget is 1 GB
for k, (f, role) in enumerate(zip(pair, ("reads Texas", "writes Texas"))):
    lens_words = ", ".join(model.tokenizer.convert_ids_to_tokens(lens20[f, :5].tolist()))
    print(f"#{f} ({role}): lens tokens {lens_words}; output score {live_out[k]:.3f} "
          f"(all latents: {live_scores['output'][f]:.3f}), input score {live_in[k]:.2f} ({live_scores['input'][f]:.2f})")
assert torch.allclose(live_out, live_scores["output"][pair], atol=1e-5)

# %% [markdown]
# ### Every latent: scores and steering success, exactly
# The shipped sweep steers with every latent that fires on at least 10 held-out tokens, at 0.5, 1, 2
# and 4 × its largest activation, 6 neutral prompts, 12 tokens each, on two seeds (prompts and
# samples). **Success**: the probability mass the steered model puts on the latent's 5 logit-lens
# tokens while generating, above the same mass unsteered — does the latent make the model write
# what it promotes? (Also measured: the mass on the words of the latent's **ground-truth
# description**, notebook 03's explainer over the current and the next token's labels.) **Fluency**:
# the unsteered LM's log-probability per generated token, turned into a [0, 1] score against unsteered
# text (`fluency_score`); the strength of each latent is chosen by the harmonic aggregate.

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.02}
sweeps = [load(f"sweep_seed{s}.json") for s in (0, 1)]
per_seed = [sweep_figures(s) for s in sweeps]
described = [sweep_figures(s, "description") for s in sweeps]
rows_shown = {"corr(output score, success), 4x": "corr output", "corr(input score, success), 4x": "corr input",
              "rank corr(output score, success), 4x": "rank corr output",
              "rank corr(input score, success), 4x": "rank corr input",
              "top quartile / all, success at 4x": "ratio fixed",
              "top quartile / all, harmonic-chosen strength": "ratio harmonic",
              "  fluency (LM log-prob/token) there, top quartile": "fluency harmonic top",
              "  fluency there, all latents": "fluency harmonic all",
              "top quartile / all, matched fluency (<= 1 nat/token lost)": "ratio matched"}
print(f"{'(success = logit-lens tokens)':58s} {'seed 0':>8s} {'seed 1':>8s}")
for label, key in rows_shown.items():
    print(f"{label:58s} " + " ".join(f"{f[key]:8.3f}" for f in per_seed))
print(f"{'(success = description words) corr output / input, 4x':58s} "
      + " ".join(f"{f['corr output']:.3f}/{f['corr input']:.3f}".rjust(8) for f in described))
n_in = sum(x > 0.5 for x in sweep0["input_score"])
n_out = sum(x > 0.1 for x in sweep0["output_score"])
n_both = sum(i > 0.5 and o > 0.1 for i, o in zip(sweep0["input_score"], sweep0["output_score"]))
print(f"{len(sweep0['latents'])} scored latents: input score > 0.5: {n_in}, output score > 0.1: {n_out}, both: {n_both}")

# %% tags=["trained"]
chosen = chosen_strength(torch.tensor(sweep0["success"]["lens"]), torch.tensor(sweep0["fluency"]), sweep0["base_fluency"])
success_chosen = torch.tensor(sweep0["success"]["lens"])[chosen, torch.arange(len(chosen))].numpy()
fig = plot_scores(sweep0, success_chosen, "success at the harmonic-chosen strength (seed 0)")
plt.show()
for f in per_seed:
    assert f["corr output"] >= 0.08 and f["corr output"] - f["corr input"] >= 0.1, f
    assert f["ratio fixed"] >= 1.5, f

# %% [markdown]
# What reproduces and what does not (both seeds, figures above):
# - The **output score predicts steering** (Pearson correlation with success) and the **input score
#   does not** — Arad et al.'s finding. But in *ranks* (Spearman) neither predicts it: the correlation
#   is carried by a minority of latents with high output scores that steer strongly, while most
#   latents barely move the text at all.
# - At a fixed strength the **top output-score quartile steers several times better** than all
#   latents (at least 1.5×, asserted) — and it also breaks the text more. At the strength the harmonic
#   aggregate picks per latent the advantage shrinks, and **at matched fluency** (at most 1 nat per
#   token lost) it is gone: the published "better at matched fluency" **does not reproduce** on the
#   world SAE (the measured ratios are printed above and asserted to stay near 1).
# - With the latent's ground-truth description as the target: the same pattern in the correlations
#   (weaker) and in the quartile ratios (printed).
# - Few latents have a high input score; most of those also have a high output score, but most
#   latents with a high output score have a low input score (the counts are printed): the latents
#   that steer are mostly not the ones you could explain by the tokens they fire on.

# %% [markdown]
# ## 6. Post-training an SAE for steering (AlignSAE)
#
# The lecture's future direction: AlignSAE (arXiv 2512.02004) binds chosen concepts to dedicated
# latents *after* unsupervised pre-training. Here: a copy of the shipped SAE trained further (600
# Adam steps on the train split of the labelled activations) with its reconstruction loss plus a
# **binding loss** — binary cross-entropy pushing the pre-activation of state s's latent above the
# TopK's selection threshold on the words of s and below it elsewhere; each state's latent starts as
# the latent that detects it best (train F1).
#
# **Concept swap**: in "The capital of A is" (and "A has its capital in"), set A's latent to 0 and B's
# latent to its mean activation on B's words, at A's tokens, through the SAE with its error term —
# does the model now name B's capital? All 240 ordered pairs of states, both templates.

# %% tags=["trained"]
align = load("alignsae.json")
aligned, slots = load_aligned_sae()
print(f"{'SAE':14s} {'swap success':>13s} {'B ranked above A':>17s} {'unswapped: A right':>19s} {'held-out FVU':>13s} "
      f"{'bound-latent F1':>16s}")
for name in ("unsupervised", "post-trained"):
    r = align[name]
    print(f"{name:14s} {r['swap']:13.3f} {r['prefer B']:17.3f} {r['clean']:19.3f} {r['fvu']:13.4f} {r['bound_f1']:16.3f}")
print(f"unsupervised, the best of each state's 3 best-detecting latents: swap success "
      f"{align['unsupervised, best of 3 latents per state']:.3f}")
with torch.no_grad():  # the bound latents only, a chunk of tokens at a time (memory)
    codes = torch.cat([aligned.encode(chunk)[:, slots] for chunk in data.resid.split(2048)])
labels = state_labels(data, concepts)
values = torch.stack([codes[labels == i, i].mean() for i in range(len(slots))])
live_swap = swap_success(sae_model, aligned, slots, values, concepts)
print(f"post-trained swap success recomputed live: {live_swap['swap']:.3f} over {live_swap['pairs']} swaps")
assert abs(live_swap["swap"] - align["post-trained"]["swap"]) < 0.01
assert align["post-trained"]["bound_f1"] >= align["unsupervised"]["bound_f1"] + 0.2
assert align["post-trained"]["fvu"] - align["unsupervised"]["fvu"] <= 0.01

# %% [markdown]
# The binding works as a *detector*: each state's latent now fires on that state's words far more
# selectively (its held-out F1 rises, at a small cost in reconstruction). But it does not make the
# latent a *handle*: swapping one latent for another does not make the model name the other state's
# capital, for the post-trained SAE as for the unsupervised one — so the AlignSAE result (concept
# swaps through a bound latent) **does not reproduce here**. Two reasons the numbers point to: the
# state is carried by many latents and by the error term at once, and a one-latent edit leaves the
# rest in place; and by this layer the model has already copied the state to later positions
# (notebook 00's patching), which an edit at the state's tokens cannot undo. A post-training that
# binds concepts *and* is trained on swaps, or an SAE at an earlier layer, are the next things to try.

# %% [markdown]
# ## 7. A steering panel
#
# Pick a concept, a method and a strength: the panel generates from four neutral prompts live and
# shows each continuation with its concept hit and its exact log-probability per token under the
# grammar ("out of support": text the world cannot write). Below it, a static copy of one setting
# (what a viewer without a live kernel sees).

# %%
lab = SteeringLab(model, sae_model, sae, concepts, directions, prompts[:4], scale)
display(HTML(continuations_html(lab.run("food", "difference of means", 0.75), concepts["food"].words)))
steering_panel(lab, "food", "difference of means", 0.75)

# %% [markdown]
# ## Summary
# Every number below is computed from the shipped sweeps (`asserted`, the function the card and the
# tests use too), on both seeds.

# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.02}
figures = asserted(STEERING_DIR)
for key, value in figures.items():
    shown = " / ".join(f"{v:.3f}" for v in value) if isinstance(value, list) else f"{value:.3f}"
    print(f"{key:62s} {shown}")

# %% [markdown]
# - Correlation is not cause: the latent that best *detects* a concept need not *steer* toward it;
#   the ground truth separates the reading role from the writing role (section 3).
# - Measured exactly, every steering vector trades fluency for success; choose its strength by a
#   success × fluency aggregate, never by success alone.
# - Difference of means beats the latents that correlation picks; filtering latents by their output
#   score closes that gap — Arad et al.'s point, which reproduces at a fixed strength but not at
#   matched fluency on this world.
# - Binding concepts to latents after training (AlignSAE) makes better detectors here, not better
#   handles: the concept swap does not reproduce at this layer.
#
# Next, notebook 05 follows a computation through the model with transcoders and attribution graphs.
