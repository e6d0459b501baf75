"""Notebook 04's exact metrics and interventions, tested independently of the exercises' checks:
against the grammar's own log-probabilities, hand-labelled texts, brute-force loops, Arad et al.'s
own scoring loop, and real runs of the world LM and its SAE."""
import math

import numpy as np
import pytest
import torch

from course_lib.steering import intervene as iv
from course_lib.steering import measures as ms
from course_lib.steering import scores as sc
from course_lib.world import grammar as g

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world():
    from course_lib.sae import load_world_sae, sae_transformer
    from course_lib.world import load_world_model

    model = load_world_model(device="cpu")
    sae = load_world_sae(device="cpu")
    return model, sae, sae_transformer(model)


# ----------------------------------------------------------------------------- fluency
@pytest.mark.parametrize("split", ["all", "train"])
def test_fluency_of_grammar_text_is_the_grammars_own_logprob(split):
    docs = g.sample_documents(300, seed=2024, split=split)
    out = ms.fluency([d.tokens for d in docs], split=split)
    assert out["in_support"].all()
    np.testing.assert_allclose(out["logp"], [d.logp for d in docs], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(out["n_tokens"], [len(d.tokens) - 1 for d in docs])
    np.testing.assert_allclose(out["logp_per_token"], out["logp"] / out["n_tokens"])


def test_fluency_of_token_rows_cut_at_eos(world):
    """documents() turns padded token rows back into the grammar's documents."""
    from course_lib.world.data import document_rows

    model = world[0]
    docs = g.sample_documents(40, seed=77, split="all")
    rows = document_rows(docs, model.tokenizer.get_vocab(), model.cfg.n_ctx, with_labels=False)
    words = ms.documents(rows.tokens, model.tokenizer)
    assert words == [d.tokens for d in docs]
    # a sampled row goes on after <eos>: the document ends there; a row without <eos> is a beginning
    vocab = model.tokenizer.get_vocab()
    ids = [[vocab[w] for w in "<bos> It is sunny today . <eos> The soup".split()],
           [vocab[w] for w in "<bos> It is sunny today . Tomorrow will be".split()]]
    assert ms.documents(torch.tensor(ids), model.tokenizer) == ["<bos> It is sunny today . <eos>".split(),
                                                                "<bos> It is sunny today . Tomorrow will be".split()]
    np.testing.assert_allclose(ms.fluency(words)["logp"], rows.true_logp, rtol=1e-9)


def test_out_of_support_text_is_counted_as_such():
    true = "<bos> Dallas is a city in Texas . The capital of Massachusetts is Boston . <eos>".split()
    false_fact = "<bos> Dallas is a city in Ohio . The capital of Massachusetts is Boston . <eos>".split()
    false_start = "<bos> Dallas is a city in Ohio".split()  # unfinished, but no document starts so
    salad = "<bos> Texas Texas Texas Texas . <eos>".split()
    out = ms.fluency([true, false_fact, false_start, salad])
    assert out["in_support"].tolist() == [True, False, False, False]
    assert out["finished"].tolist() == [True, True, False, True]
    assert math.isfinite(out["logp"][0]) and out["logp"][0] < 0
    assert np.isneginf(out["logp"][1:]).all() and np.isneginf(out["logp_per_token"][1:]).all()
    # out of support is fluency 0, so the aggregate is 0 however well the text steers
    fl = ms.fluency_score(torch.from_numpy(out["logp_per_token"]), reference=out["logp_per_token"][0])
    assert fl.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert ms.harmonic_aggregate(torch.ones(4, dtype=torch.float64), fl).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_prefix_probabilities_obey_the_chain_rule():
    """P(x) = Σ_w P(x w) + P(x <eos>) over the whole vocabulary, for beginnings of documents of every
    kind, and P(<bos>) = 1: with finished documents scored by the Scorer, the prefix probabilities are
    exactly the sums over the documents that start so."""
    from course_lib.world.tokenizer import world_words

    scorer, words = ms.prefix_scorer("all"), world_words()
    assert scorer.prefix_prob([g.BOS]) == 1.0
    docs = {}
    for d in g.sample_documents(200, seed=31, split="all"):
        docs.setdefault(d.kind, d)
    rng = np.random.default_rng(0)
    for kind, d in sorted(docs.items()):
        for cut in (2, int(rng.integers(3, len(d.tokens)))):
            x = d.tokens[:cut]
            total = sum(scorer.prefix_prob(x + [w]) for w in words) + scorer.prefix_prob(x + [g.EOS])
            assert total == pytest.approx(scorer.prefix_prob(x), rel=1e-9), (kind, x)
        assert scorer.logp(d.tokens) == pytest.approx(d.logp, abs=1e-9)
        assert scorer.logp(d.tokens[:-1]) >= d.logp  # a document's beginning is at least as likely


def test_fluency_is_conditional_on_the_prompt():
    docs = g.sample_documents(50, seed=9, split="all")
    scorer = ms.prefix_scorer("all")
    out = ms.fluency([d.tokens for d in docs], prompt_len=3)
    expected = [d.logp - scorer.logp(d.tokens[:3]) for d in docs]
    np.testing.assert_allclose(out["logp"], expected, rtol=1e-9)
    np.testing.assert_array_equal(out["n_tokens"], [len(d.tokens) - 3 for d in docs])
    # cut generations: the beginning of a document, given its prompt
    cut = ms.fluency([d.tokens[:6] for d in docs], prompt_len=3)
    assert cut["in_support"].all() and not cut["finished"].any()
    assert (cut["logp"] >= out["logp"]).all()
    with pytest.raises(ValueError, match="cannot write the prompt"):
        ms.fluency([["<bos>", "Texas", "Texas", "."]], prompt_len=3)


def test_fluency_score_maps_nats_per_token_to_0_1():
    x = torch.tensor([-0.5, -0.8, -1.8, -float("inf")])
    assert torch.allclose(ms.fluency_score(x, -0.8), torch.tensor([1.0, 1.0, math.exp(-1.0), 0.0], dtype=torch.float64))


def test_fluency_refuses_bad_input():
    with pytest.raises(ValueError, match="split"):
        ms.fluency([["<bos>", "<eos>"]], split="test")
    with pytest.raises(TypeError, match="lists of words"):
        ms.fluency([[1, 2, 3]])
    with pytest.raises(ValueError, match="prompt_len"):
        ms.fluency([["<bos>", "The"]], prompt_len=0)


# ----------------------------------------------------------------------------- concept success
def test_concept_success_of_a_hand_labelled_text(world):
    tok = world[0].tokenizer
    vocab = tok.get_vocab()
    V = len(vocab)
    texas = ["Texas", "Austin", "Dallas", "Houston", "El", "Paso", "Lubbock"]
    concept = torch.zeros(V, dtype=torch.bool)
    concept[[vocab[w] for w in texas]] = True
    rows = ["Houston is a city in Texas .".split(),  # two concept tokens: a hit
            "The soup tastes sweet . Texas Texas".split()]  # "Texas" only in the padding (valid ends before it)
    tokens = torch.tensor([[vocab[w] for w in r] for r in rows])
    valid = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    probs = torch.full((2, 7, V), 1.0 / V)  # uniform: mass = 7 / V at every position
    probs[1, :2] = 0.0
    probs[1, :2, vocab["Austin"]] = 1.0  # row 2 puts all its mass on Austin at 2 of its 5 positions
    hit, mass = ms.concept_success(tokens, probs, concept, valid)
    assert hit.tolist() == [1.0, 0.0]
    assert torch.allclose(mass, torch.tensor([7 / V, (2 * 1.0 + 3 * 7 / V) / 5]))


# ----------------------------------------------------------------------------- interventions
def test_steering_hook_adds_exactly_scale_direction_on_the_world_lm(world):
    model = world[0]
    tokens = model.to_tokens(["The capital of Texas is Austin .", "We cooked soup for dinner today ."])
    name = "blocks.1.hook_resid_post"
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    positions = [2, 4]
    seen = {}
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(tokens, names_filter=name)
        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, iv.steering_hook(direction, 3.0, positions)),
                                                         (name, lambda x, hook: seen.setdefault("x", x.clone()))])
    expected = torch.zeros_like(cache[name])
    expected[:, positions] = 3.0 * direction
    torch.testing.assert_close(seen["x"] - cache[name], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[:, :2], clean_logits[:, :2])  # earlier positions cannot see the change
    assert (logits[:, 2:] - clean_logits[:, 2:]).abs().amax() > 1e-2


def test_steering_hook_leaves_a_cached_activation_alone():
    resid = torch.randn(2, 5, 4)
    before = resid.clone()
    out = iv.steering_hook(torch.ones(4), 2.0, [1])(resid, None)
    assert torch.equal(resid, before) and torch.equal(out[:, 1], resid[:, 1] + 2.0)
    assert torch.equal(iv.steering_hook(torch.ones(4), 2.0)(resid, None), resid + 2.0)


def test_diff_in_means_matches_a_brute_force_loop():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(37, 9)) + 3.0
    is_concept = rng.random(37) < 0.3
    concept_sum, other_sum, n_c, n_o = np.zeros(9), np.zeros(9), 0, 0
    for row, flag in zip(acts, is_concept):
        if flag:
            concept_sum, n_c = concept_sum + row, n_c + 1
        else:
            other_sum, n_o = other_sum + row, n_o + 1
    expected = concept_sum / n_c - other_sum / n_o
    got = iv.diff_in_means(torch.from_numpy(acts), torch.from_numpy(is_concept))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_diff_in_means_agrees_with_steering_vectors_mean_aggregator():
    """Cross-check with the steering-vectors library (Tan et al.), if installed: its default
    aggregator averages paired differences, which for paired rows is our difference of means."""
    sv = pytest.importorskip("steering_vectors.aggregators", reason="the steering-vectors package is not installed "
                             "(not a course dependency); pip install steering-vectors to run this cross-check")
    pos, neg = torch.randn(20, 6) + 1.0, torch.randn(20, 6)
    try:
        expected = sv.mean_aggregator(pos, neg)
    except TypeError:  # older releases: mean_aggregator() builds the aggregator
        expected = sv.mean_aggregator()(pos, neg)
    got = iv.diff_in_means(torch.cat([pos, neg]), torch.arange(40) < 20)
    torch.testing.assert_close(got, expected)


# ----------------------------------------------------------------------------- Arad et al.'s scores
def test_logit_lens_tokens_by_hand(world):
    model, sae, _ = world
    W = sc.decoder_directions(sae)[:64].double().numpy()
    w, b = model.ln_final.w.detach().double().numpy(), model.ln_final.b.detach().double().numpy()
    centred = W - W.mean(-1, keepdims=True)
    normed = centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + model.cfg.eps) * w + b
    logits = normed @ model.W_U.detach().double().numpy() + model.b_U.detach().double().numpy()
    expected = np.argsort(-logits, axis=-1, kind="stable")[:, :7]
    got = sc.logit_lens_tokens(model, sc.decoder_directions(sae)[:64], 7)
    np.testing.assert_array_equal(got.numpy(), expected)
    assert torch.equal(sc.logit_lens_tokens(model, sc.decoder_directions(sae)[5], 7), got[5])


def test_amplified_logits_raise_one_latent_and_keep_the_error_term(world):
    model, sae, hooked = world
    prefix = "The"
    latents = torch.tensor([3, 100, 517, 1000])
    amplified = sc.amplified_logits(hooked, sae, latents, prefix, factor=10.0)
    tokens = hooked.to_tokens(prefix)
    name = sae.cfg.metadata.hook_name
    with torch.no_grad():
        clean, cache = model.run_with_cache(tokens, names_filter=name)
        top = sae.encode(cache[name])[0, -1].max()
        for row, f in enumerate(latents.tolist()):
            hook = iv.steering_hook(sc.decoder_directions(sae)[f], float(10.0 * top), [-1])
            expected = model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])[0, -1]
            torch.testing.assert_close(amplified[row], expected, atol=1e-4, rtol=1e-4)
        # raising by nothing gives the clean model back (the SAE's error term is added back)
        torch.testing.assert_close(sc.amplified_logits(hooked, sae, latents[:1], prefix, factor=0.0)[0], clean[0, -1],
                                   atol=1e-4, rtol=1e-4)


def test_output_score_matches_arads_loop_on_world_latents(world):
    model, sae, hooked = world
    latents = torch.arange(0, 1024, 37)
    logits = sc.amplified_logits(hooked, sae, latents, "The")
    lens = sc.logit_lens_tokens(model, sc.decoder_directions(sae)[latents], 20)
    expected = []
    for row, ll in zip(logits, lens):  # get_output_score of Arad et al.'s src/output_score.py
        probs = torch.softmax(row, dim=0)
        order = torch.argsort(probs, dim=0, descending=True)
        ranks = [(order == t).nonzero(as_tuple=True)[0].item() for t in ll]
        expected.append((1 - min(ranks) / probs.shape[0]) * torch.max(probs[ll]).item())
    np.testing.assert_allclose(sc.output_score(logits, lens).numpy(), expected, rtol=1e-5, atol=1e-7)


def test_input_score_by_hand():
    assert float(sc.input_score(torch.tensor([4, 9, 4, 1]), torch.tensor([4, 2]))) == 0.5
    got = sc.input_score(torch.tensor([[1, 1, 1], [2, 3, 5]]), torch.tensor([[1, 7], [9, 8]]))
    assert got.tolist() == [1.0, 0.0]


def test_scores_refuse_bad_input(world):
    model, sae, _ = world
    with pytest.raises(ValueError, match="d_model"):
        sc.logit_lens_tokens(model, torch.zeros(3), 5)
    with pytest.raises(ValueError, match="k must be"):
        sc.logit_lens_tokens(model, torch.zeros(model.cfg.d_model), 0)
    assert sc.logit_lens_tokens(model, torch.ones(model.cfg.d_model), np.int64(3)).shape == (3,)
    with pytest.raises(TypeError, match="HookedSAETransformer"):
        sc.amplified_logits(model, sae, [1], "The")


# ----------------------------------------------------------------------------- LM log-prob, side effects, aggregate
def test_lm_logprob_matches_the_world_modules_document_nll(world):
    from course_lib.world.data import document_rows
    from course_lib.world.evaluate import document_nll

    model = world[0]
    rows = document_rows(g.sample_documents(30, seed=5), model.tokenizer.get_vocab(), model.cfg.n_ctx,
                         with_labels=False)
    valid = rows.tokens != model.tokenizer.pad_token_id
    per_token = ms.lm_logprob(model, rows.tokens, valid, batch_size=7)
    nll = document_nll(model, rows)
    np.testing.assert_allclose(-per_token.numpy() * (rows.lengths - 1), nll, rtol=1e-4)


def test_kl_side_effect():
    g_ = torch.Generator().manual_seed(1)
    clean, other = torch.randn(3, 5, 11, generator=g_), torch.randn(3, 5, 11, generator=g_)
    assert float(ms.kl_side_effect(clean, clean)) == pytest.approx(0.0, abs=1e-6)
    keep = torch.rand(3, 5, generator=g_) < 0.6
    expected = torch.nn.functional.kl_div(other.log_softmax(-1), clean.log_softmax(-1), log_target=True,
                                          reduction="none").sum(-1)[keep].mean()
    torch.testing.assert_close(ms.kl_side_effect(clean, other, keep), expected)
    assert float(ms.kl_side_effect(clean, other)) > 0
    with pytest.raises(ValueError, match="same shape"):
        ms.kl_side_effect(clean, other[:, :2])


def test_harmonic_aggregate_properties():
    s = torch.tensor([0.0, 0.0, 0.3, 0.8, 1.0, 0.5])
    f = torch.tensor([0.0, 0.7, 0.3, 0.2, 1.0, 1.0])
    h = ms.harmonic_aggregate(s, f)
    assert h[:2].tolist() == [0.0, 0.0]  # nothing or no steering: 0
    torch.testing.assert_close(h[2:5], torch.tensor([0.3, 0.32, 1.0]))
    torch.testing.assert_close(h, ms.harmonic_aggregate(f, s))  # symmetric
    assert (h <= torch.maximum(s, f)).all() and (h >= torch.minimum(s, f)).all()
