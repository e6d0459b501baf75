"""Notebook 03 (feature interpretation): the checks' contracts (accept the reference and correct
alternatives, reject plausible mistakes with the right hint), the sparse scoring pipeline against the
exercises' dense definitions, the baselines' matched density, the absorption toy, the predicates'
ground truth, and the extra SAEs' build and damage handling."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from check_contract import Contract, contract_tests

from course_lib.interpretation import absorption as ab
from course_lib.interpretation import checks as ch
from course_lib.interpretation import contexts as cx
from course_lib.interpretation import labels as lb
from course_lib.interpretation import scoring as sc
from course_lib.interpretation import units as un

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- wrong implementations
def _top_sorted_all(acts, n):
    v, i = acts.sort(descending=True)
    return v, i  # not cut to n


def _top_hardcoded(acts, n):
    return cx.top_activations(acts, 5)


def _top_inplace(acts, n):
    acts[acts < 0] = 0  # edits the caller's tensor
    return cx.top_activations(acts, n)


def _top_sort_alt(acts, n):
    values, indices = acts.sort(descending=True)
    k = min(n, int((acts > 0).sum()))
    return values[:k], indices[:k]


def _top_numpy_alt(acts, n):
    a = acts.numpy()
    order = np.argsort(-a, kind="stable")[:n]
    order = order[a[order] > 0]
    return torch.from_numpy(a[order].copy()), torch.from_numpy(order.copy())


def _q_hardcoded_per_bin(acts, n_bins, per_bin, generator):
    return cx.quantile_samples(acts, n_bins, 2, generator)


def _q_seeds_global(acts, n_bins, per_bin, generator):
    torch.manual_seed(0)  # reproducible, but ignores the generator it is given
    return ch._global_rng(acts, n_bins, per_bin, None)


def _q_descending_sorted_within(acts, n_bins, per_bin, generator):
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[acts[firing].argsort(descending=True)]
    return [c[torch.randperm(len(c), generator=generator)[:per_bin]] for c in torch.tensor_split(ordered, n_bins)]


def _q_top_only(acts, n_bins, per_bin, generator):
    _, idx = cx.top_activations(acts, n_bins * per_bin)
    return list(idx.flip(0).split(per_bin))


def _q_alt_multinomial(acts, n_bins, per_bin, generator):
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[torch.sort(acts[firing]).indices]
    out = []
    for chunk in torch.tensor_split(ordered, n_bins):
        k = min(per_bin, len(chunk))
        pick = torch.multinomial(torch.ones(len(chunk)), k, replacement=False, generator=generator) if k else chunk[:0]
        out.append(chunk[pick])
    return out


def _q_alt_numpy_quantiles(acts, n_bins, per_bin, generator):
    firing = np.nonzero(acts.numpy() > 0)[0]
    ordered = firing[np.argsort(acts.numpy()[firing], kind="stable")]
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.permutation(c)[:per_bin]) for c in np.array_split(ordered, n_bins)]


def _le_wrong_ln_b(model, d):
    return ((d - d.mean()) * model.ln_final.w + model.ln_final.b) @ model.W_U


def _le_encoder_like(model, d):
    return ((d - d.mean()) * model.ln_final.w) @ model.W_U.softmax(-1)


def _le_mean_over_vocab(model, d):
    out = ((d - d.mean()) * model.ln_final.w) @ model.W_U
    return out - out.mean()


def _le_alt_einsum(model, direction):
    centred = direction - direction.mean(-1, keepdim=True)
    return torch.einsum("d,dv->v", centred * model.ln_final.w, model.unembed.W_U)


def _le_alt_matrix(model, direction):
    d = direction.shape[0]
    centring = torch.eye(d) - torch.full((d, d), 1 / d)
    return (centring @ direction) @ torch.diag(model.ln_final.w) @ model.W_U


def _prf_f1_only(fires, labels):
    return sc.precision_recall_f1(fires, labels)[2]


def _prf_transposed(fires, labels):
    p, r, f = sc.precision_recall_f1(fires, labels)
    return p.T, r.T, f.T


def _prf_int_overflow(fires, labels):
    both = fires.to(torch.int8).T.float() @ labels.float()
    p = both / fires.sum(0).float()[:, None].clamp(min=1)
    r = both / labels.sum(0).float()[None, :].clamp(min=1)
    return p, r, (2 * p * r / (p + r).clamp(min=1e-12)).round(decimals=1)


def _prf_alt_einsum(fires, labels):
    f, lab = fires.float(), labels.float()
    both = torch.einsum("nl,np->lp", f, lab)
    precision = torch.nan_to_num(both / f.sum(0)[:, None], nan=0.0)
    recall = torch.nan_to_num(both / lab.sum(0)[None, :], nan=0.0)
    f1 = torch.nan_to_num(2 * both / (f.sum(0)[:, None] + lab.sum(0)[None, :]), nan=0.0)
    return precision, recall, f1


def _prf_alt_loops(fires, labels):
    L, P = fires.shape[1], labels.shape[1]
    p, r, f = torch.zeros(L, P), torch.zeros(L, P), torch.zeros(L, P)
    for i in range(L):
        for j in range(P):
            tp = float((fires[:, i] & labels[:, j]).sum())
            nf, nl = float(fires[:, i].sum()), float(labels[:, j].sum())
            p[i, j] = tp / nf if nf else 0.0
            r[i, j] = tp / nl if nl else 0.0
            f[i, j] = 2 * tp / (nf + nl) if nf + nl else 0.0
    return p, r, f


def _ex_hardcoded(f1, support, min_support):
    return sc.explain(f1, support, 5)


def _ex_best_precision_index_only(f1, support, min_support):
    return sc.explain(f1, support, min_support)[0]


def _ex_argmin(f1, support, min_support):
    masked = torch.where((support >= min_support)[None, :], f1, torch.full_like(f1, 2.0))
    best_f1, best = masked.min(dim=1)
    return best, best_f1


def _ex_alt_inf(f1, support, min_support):
    masked = f1.masked_fill(support[None, :] < min_support, float("-inf"))
    best = masked.argmax(dim=1)
    return best, masked.gather(1, best[:, None])[:, 0].clamp(min=0)


def _ex_alt_loop(f1, support, min_support):
    best, best_f1 = [], []
    for row in f1:
        scores = [(float(v) if int(s) >= min_support else -1.0, -j) for j, (v, s) in enumerate(zip(row, support))]
        value, neg_j = max(scores)
        best.append(-neg_j), best_f1.append(max(value, 0.0))
    return torch.tensor(best), torch.tensor(best_f1, dtype=f1.dtype)


def _ba_fpr(pred, truth, weight):
    w = weight.float()
    tpr = (w * (pred & truth)).sum(0) / (w * truth).sum(0).clamp(min=1e-12)
    fpr = (w * (pred & ~truth)).sum(0) / (w * ~truth).sum(0).clamp(min=1e-12)
    return (tpr + fpr) / 2


def _ba_weights_summed_over_units(pred, truth, weight):
    return sc.balanced_accuracy(pred, truth, weight.sum(1, keepdim=True).expand_as(weight))


def _ba_inplace(pred, truth, weight):
    weight /= weight.sum(0)  # normalises the caller's tensor in place
    return sc.balanced_accuracy(pred, truth, weight)


def _ba_alt_float(pred, truth, weight):
    p, t, w = pred.float(), truth.float(), weight.float()
    tpr = (w * p * t).sum(0) / torch.clamp((w * t).sum(0), min=1e-12)
    tnr = (w * (1 - p) * (1 - t)).sum(0) / torch.clamp((w * (1 - t)).sum(0), min=1e-12)
    return 0.5 * (tpr + tnr)


def _q_first_tokens_of_each_bin(acts, n_bins, per_bin, generator):  # randperm(k): the bin's k weakest, shuffled
    firing = torch.nonzero(acts > 0)[:, 0]
    ordered = firing[acts[firing].argsort()]
    return [c[torch.randperm(min(per_bin, len(c)), generator=generator)] for c in torch.tensor_split(ordered, n_bins)]


def _q_nonzero_tokens(acts, n_bins, per_bin, generator):  # acts != 0 also bins the negative (silent) tokens
    firing = torch.nonzero(acts)[:, 0]
    ordered = firing[acts[firing].argsort()]
    return [c[torch.randperm(len(c), generator=generator)[:per_bin]] for c in torch.tensor_split(ordered, n_bins)]


def _ex_inf_no_clamp(f1, support, min_support):
    best_f1, best = f1.masked_fill(support[None, :] < min_support, float("-inf")).max(dim=1)
    return best, best_f1


CASES = {
    "top_activations": Contract(ch.check_top_activations, cx.top_activations, wrongs=[
        (ch._top_ascending, "Strongest first"),
        (ch._top_keeps_silent, "fewer"),
        (ch._top_abs, "absolute value"),
        (ch._top_swapped, "(values, indices)"),
        (_top_sorted_all, None),
        (_top_hardcoded, None),
        (_top_inplace, None),
    ], alternatives=[_top_sort_alt, _top_numpy_alt]),
    "quantile_samples": Contract(ch.check_quantile_samples, cx.quantile_samples, wrongs=[
        (ch._equal_width, "same *number*"),
        (ch._global_rng, "generator you are given"),
        (ch._all_tokens, "silent ones"),
        (ch._with_replacement, "distinct"),
        (ch._strongest_bin_first, "Weakest bin first"),
        (_q_hardcoded_per_bin, None),
        (_q_seeds_global, None),
        (_q_descending_sorted_within, None),
        (_q_top_only, None),
        (_q_first_tokens_of_each_bin, "randperm(per_bin) only shuffles"),
        (_q_nonzero_tokens, None),
    ], alternatives=[_q_alt_multinomial, _q_alt_numpy_quantiles]),
    "logit_effects": Contract(ch.check_logit_effects, cx.logit_effects, wrongs=[
        (lambda model, d: (d * model.ln_final.w) @ model.W_U, "centre the direction"),
        (lambda model, d: (d - d.mean()) @ model.W_U, "ln_final.w"),
        (lambda model, d: ((d - d.mean()) * model.ln_final.w + model.ln_final.b) @ model.W_U + model.b_U, "biases"),
        (lambda model, d: model.ln_final(d[None, None])[0, 0] @ model.W_U, "own norm"),
        (lambda model, d: ((d - d.mean()) * model.ln_final.w) @ model.W_E.T, "transposed embedding"),
        (_le_wrong_ln_b, None),
        (_le_encoder_like, None),
        (_le_mean_over_vocab, None),
    ], alternatives=[_le_alt_einsum, _le_alt_matrix]),
    "precision_recall_f1": Contract(ch.check_precision_recall_f1, sc.precision_recall_f1, wrongs=[
        (ch._prf_swapped, "*unit fires*"),
        (ch._prf_nan, "not NaN"),
        (ch._prf_mean, "harmonic"),
        (ch._prf_over_all_tokens, "not over all tokens"),
        (_prf_f1_only, None),
        (_prf_transposed, None),
        (_prf_int_overflow, None),
    ], alternatives=[_prf_alt_einsum, _prf_alt_loops]),
    "explain": Contract(ch.check_explain, sc.explain, wrongs=[
        (ch._explain_no_support, "min_support train tokens"),
        (ch._explain_strict, ">= min_support"),
        (ch._explain_mask_zero, "*below* any real F1"),
        (ch._explain_wrong_axis, "dim=1"),
        (_ex_hardcoded, None),
        (_ex_best_precision_index_only, None),
        (_ex_argmin, None),
        (ch._explain_no_clamp, "clamp best_f1 at 0"),
        (_ex_inf_no_clamp, None),
    ], alternatives=[_ex_alt_inf, _ex_alt_loop]),
    "balanced_accuracy": Contract(ch.check_balanced_accuracy, sc.balanced_accuracy, wrongs=[
        (ch._ba_unweighted, "with its weight"),
        (ch._ba_accuracy, "not the accuracy"),
        (ch._ba_tpr_only, "true-negative rate"),
        (ch._ba_swapped, "*fires* (truth)"),
        (ch._ba_nan, "not NaN"),
        (_ba_fpr, None),
        (_ba_weights_summed_over_units, None),
        (_ba_inplace, None),
        (ch._ba_clamp_one, "not at 1"),
    ], alternatives=[_ba_alt_float]),
}
globals().update(contract_tests(CASES))


# ----------------------------------------------------------------------------- the sparse pipeline
def _random_problem(seed=0, n=400, L=9, P=11):
    g = torch.Generator().manual_seed(seed)
    acts = torch.rand(n, L, generator=g) * (torch.rand(n, L, generator=g) < torch.rand(L, generator=g) * 0.4 + 0.02)
    labels = torch.rand(n, P, generator=g) < torch.rand(P, generator=g) * 0.5 + 0.01
    labels[:, 3] = acts[:, 2] > 0.3  # a predicate one unit explains well
    doc = np.arange(n) // 7  # documents of 7 tokens
    train = doc % 2 == 0
    preds = lb.Predicates([f"p{j}" for j in range(P)], [f"f{j % 3}" for j in range(P)], labels)
    return un.Units("random", acts.to_sparse().coalesce()), acts, preds, SimpleNamespace(train=train, doc=doc)


def test_sparse_pipeline_matches_the_exercises_dense_definitions():
    units, acts, preds, data = _random_problem()
    train = data.train
    cfg = sc.ScoreConfig(min_support=4, min_fires=1, n_top=5)
    s = sc.score_units(units, preds, data, cfg)
    tr, te = torch.from_numpy(train), torch.from_numpy(~train)
    fires_tr, lab_tr, fires_te, lab_te = acts[tr] > 0, preds.matrix[tr], acts[te] > 0, preds.matrix[te]
    f1 = sc.precision_recall_f1(fires_tr, lab_tr)[2]
    torch.testing.assert_close(s.f1_train, f1)
    best, best_f1 = sc.explain(f1, lab_tr.sum(0), cfg.min_support)
    assert (s.best == best.numpy()).all() and np.allclose(s.train_f1, best_f1.numpy(), atol=1e-6)
    assert s.best[2] == 3, "the unit that defines predicate 3 is explained by it"
    f1_te = sc.precision_recall_f1(fires_te, lab_te)[2]
    assert np.allclose(s.test_f1, f1_te[torch.arange(len(best)), best].numpy(), atol=1e-6)
    pred = lab_te[:, best]
    ba = sc.balanced_accuracy(pred, fires_te, sc.decile_weights(acts[te], cfg.n_bins))
    assert np.allclose(s.detection, ba.numpy(), atol=1e-5)
    doc_te = data.doc[~train]
    for u in range(acts.shape[1]):  # fuzzing: silent tokens only from the documents where the unit fires
        in_context = torch.from_numpy(np.isin(doc_te, doc_te[fires_te[:, u].numpy()]))
        weight = sc.decile_weights(acts[te][:, u:u + 1], cfg.n_bins) * in_context[:, None]
        fuzz = sc.balanced_accuracy(pred[:, u:u + 1], fires_te[:, u:u + 1], weight)
        assert abs(float(fuzz) - s.fuzzing[u]) < 1e-5, u
    sim = [float(torch.corrcoef(torch.stack([pred[:, i].float(), acts[te][:, i]]))[0, 1]) for i in range(acts.shape[1])]
    assert np.allclose(s.simulation, np.nan_to_num(sim), atol=1e-4)
    assert (s.alive == (fires_tr.sum(0) >= 1).numpy()).all()


def test_top_example_explainer_reads_only_the_strongest_examples():
    units, acts, preds, data = _random_problem(1)
    s = sc.score_units(units, preds, data, sc.ScoreConfig(min_support=1, min_fires=1, n_top=3))
    tr = torch.from_numpy(data.train)
    for u in range(acts.shape[1]):
        a = acts[tr][:, u]
        top = a.topk(min(3, int((a > 0).sum()))).indices
        counts = preds.matrix[tr][top].sum(0).float()
        assert counts[s.top_best[u]] == counts.max()


def test_decile_weights_give_each_decile_the_same_total():
    acts = torch.zeros(200, 2)
    acts[:100, 0] = torch.linspace(1, 2, 100)
    acts[:37, 1] = torch.rand(37) + 0.1
    w = sc.decile_weights(acts)
    for u in range(2):
        fired = acts[:, u] > 0
        n = int(fired.sum())
        ranked = w[fired, u][acts[fired, u].argsort(descending=True)]
        decile = torch.arange(n) * 10 // n  # the strongest tenth, the next tenth, ...
        totals = torch.zeros(10).index_add_(0, decile, ranked)
        assert torch.allclose(totals, torch.ones(10)), totals
        assert (w[~fired, u] == 1).all()


def test_bad_configs_are_refused():
    with pytest.raises(TypeError, match="CollectConfig"):
        lb.collect(None, config={"n_docs": 3})


# ----------------------------------------------------------------------------- baselines at matched density
def test_baselines_fire_at_the_densities_of_the_sae_latents():
    g = torch.Generator().manual_seed(0)
    n, d_model, d_mlp, d_sae, k = 2000, 16, 32, 64, 4
    resid = torch.randn(n, d_model, generator=g)
    data = SimpleNamespace(resid=resid, mlp=torch.randn(n, d_mlp, generator=g), train=np.arange(n) % 2 == 0)
    sae = un.random_encoder_units(resid, d_sae, k, g)
    out = un.baselines(data, un.Units("SAE latents", sae.acts), k, un.BaselineConfig(seed=1, n_directions=50))
    assert set(out) == {"MLP neurons", "top-k neurons", "random directions", "random encoder"}
    sae_density = sae.density(np.nonzero(data.train)[0])
    for name in ("MLP neurons", "random directions"):
        d = out[name].density(np.nonzero(data.train)[0])
        assert sae_density.min() - 2 / n <= d.min() and d.max() <= sae_density.max() + 2 / n, name
    assert torch.allclose(out["top-k neurons"].density().sum(), torch.tensor(2.0), atol=0.05)  # k·d_mlp/d_sae = 2 per token
    assert torch.allclose(out["random encoder"].density().sum(), torch.tensor(float(k)), atol=0.05)
    assert all((u.acts.values() > 0).all() for u in out.values())


# ----------------------------------------------------------------------------- absorption (asserted result)
@pytest.mark.parametrize("seed", [0, 1])
def test_toy_hierarchy_shows_absorption(seed):
    r = ab.toy_absorption(ab.ToyAbsorptionConfig(seed=seed))
    assert r["parent fires, parent only"] >= 0.95
    assert r["parent fires, child active"] <= 0.05
    assert r["child fires, child active"] >= 0.95
    assert r["child latent · parent feature"] > 0.5, "the child latent carries the parent's direction"


# ----------------------------------------------------------------------------- real world text
@pytest.fixture(scope="module")
def world():
    from course_lib.sae import load_world_sae
    from course_lib.world import load_world_model

    model = load_world_model(device="cpu")
    return model, load_world_sae(2, device="cpu"), lb.collect(model, lb.CollectConfig(n_docs=80, seed=2000))


def test_labelled_tokens_drop_specials_and_align_next_token_labels(world):
    model, _, data = world
    assert not set(data.str_tokens) & {"<bos>", "<eos>", "<pad>"}
    assert set(data.labels["pos"]).isdisjoint({"BOS", "EOS", "PAD"})
    for i in range(len(data) - 1):
        if data.doc[i + 1] == data.doc[i] and data.col[i + 1] == data.col[i] + 1:
            assert data.labels["next token"][i] == data.str_tokens[i + 1]
            assert data.labels["next pos"][i] == data.labels["pos"][i + 1]
    assert data.resid.shape == (len(data), model.cfg.d_model) and data.mlp.shape == (len(data), model.cfg.d_mlp)
    assert set(data.resid_at) == {2, 3} and torch.equal(data.resid_at[2], data.resid)
    assert 0.3 < data.train.mean() < 0.7 and not (set(data.doc[data.train]) & set(data.doc[~data.train]))
    with torch.no_grad():  # the kept activations are the model's at those positions
        _, cache = model.run_with_cache(torch.tensor([model.tokenizer.convert_tokens_to_ids(list(data.rows[0]))]))
    first = np.nonzero(data.doc == 0)[0]
    torch.testing.assert_close(data.resid[first], cache[data.hook][0, data.col[first]], atol=1e-4, rtol=1e-4)


def test_predicates_are_the_grammar_labels(world):
    _, _, data = world
    preds = lb.build_predicates(data, min_support=3)
    support = preds.matrix[torch.from_numpy(data.train)].sum(0)
    assert (support >= 3).all()
    j = preds.index("pos = NOUN")
    assert torch.equal(preds.matrix[:, j], torch.from_numpy(data.labels["pos"] == "NOUN"))
    conj = [n for n in preds.names if n.startswith("pos = NOUN & topic = ")]
    assert conj and all(preds.matrix[:, preds.index(c)].le(preds.matrix[:, j]).all() for c in conj)
    assert any(n.startswith("next token = ") for n in preds.names)
    with pytest.raises(KeyError, match="no predicate"):
        preds.index("topic = cars")


def test_sae_units_are_the_sae_code(world):
    _, sae, data = world
    units = un.sae_units(sae, data.resid)
    with torch.no_grad():
        torch.testing.assert_close(units.acts.to_dense(), sae.encode(data.resid))
    assert torch.allclose(units.density().sum(), torch.tensor(float(sae.cfg.k)), atol=0.01)


# ----------------------------------------------------------------------------- the extra SAEs
def test_extra_sae_build_writes_a_checked_folder(tmp_path):
    from course_lib.artifacts import ArtifactError
    from course_lib.interpretation import saes
    from course_lib.sae.world import WORLD_SAE

    root = tmp_path / "interpretation"
    tiny = dataclasses.replace(WORLD_SAE, steps=3, train_docs=300, eval_docs=20, batch_size=256)
    metrics = saes.build(root, saes.EXTRA_SAES[:1], tiny, progress=False)
    assert set(metrics["saes"]) == {"layer2_w256"} and (root / "README.md").exists()
    assert saes.load_extra_sae("layer2_w256", device="cpu", root=root).cfg.d_sae == 256
    with pytest.raises(ValueError, match="no extra SAE"):
        saes.load_extra_sae("layer9", root=root)
    (root / "layer2_w256" / "cfg.json").write_text("{}")
    with pytest.raises(ArtifactError, match="python -m course_lib.interpretation build"):
        saes.load_extra_sae("layer2_w256", root=root)


def test_shipped_extra_saes_are_complete_and_checksummed():
    from course_lib.artifacts import verify
    from course_lib.interpretation import saes

    verify(saes.EXTRA_DIR, saes.REBUILD, "notebook-03 SAEs")
    metrics = saes.extra_metrics()
    assert set(metrics["saes"]) == {s.name for s in saes.EXTRA_SAES}
    for spec in saes.EXTRA_SAES:
        m = metrics["saes"][spec.name]
        assert (m["layer"], m["d_sae"]) == (spec.layer, spec.d_sae) and abs(m["L0"] - metrics["recipe"]["k"]) < 1e-3
        assert m["FVU"] < 0.5 and m["dead"] < 0.5
        sae = saes.load_extra_sae(spec.name, device="cpu")
        assert sae.cfg.d_sae == spec.d_sae and sae.cfg.metadata.hook_name == f"blocks.{spec.layer}.hook_resid_pre"
    assert "python -m course_lib.interpretation build" in (saes.EXTRA_DIR / saes.CARD_FILE).read_text()
