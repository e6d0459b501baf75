"""Notebook 06's exercise checks (see :mod:`course_lib.checking`): the ``Exercise`` objects, their
seeded inputs and the mistakes whose hints they give."""
from __future__ import annotations

import numpy as np

from ..checking import Case, Exercise, Mistake, check_model, gradient_case, randomize_parameters, seeded_generator
from .grokfast import grokfast_ema
from .lens import logit_lens_at, resid_hook_name
from .measures import answer_accuracy, edit_metrics
from .patching import patched_logits
from .training import answer_only_loss
from .world import build_splits


# ----------------------------------------------------------------------------- build_splits
def _graph(seed: int, n_entities: int = 12, k: int = 3, n_rel: int = 4, ood: float = 0.25):
    rng = np.random.default_rng(seed)
    heads = np.repeat(np.arange(n_entities), k)
    rels = np.concatenate([rng.choice(n_rel, k, replace=False) for _ in range(n_entities)]) + n_entities
    atomic = np.stack([heads, rels, rng.integers(0, n_entities, n_entities * k)], 1)
    is_ood = rng.random(len(atomic)) < ood
    return atomic, is_ood


def _canonical(splits):
    """Split contents regardless of the row order a student chose (rows must be [n, 5])."""
    if not isinstance(splits, dict):
        return splits
    out = {}
    for k, v in splits.items():
        a = np.asarray(v)
        if a.ndim == 2 and a.shape[1] == 5 and a.dtype.kind in "iu":
            a = a.astype(np.int64)[np.lexsort(a.T[::-1])]
        out[k] = a
    return out


def _splits_case(seed, **kw):
    return lambda impl: _canonical(impl(*_graph(seed, **kw)))


def _splits_inputs_case(seed):
    """The splits, and the inputs as the function left them (they must be unchanged)."""
    def run(impl):
        atomic, is_ood = _graph(seed)
        order = np.random.default_rng(seed).permutation(len(atomic))  # rows in no particular order
        atomic, is_ood = atomic[order], is_ood[order]
        return {"splits": _canonical(impl(atomic, is_ood)), "atomic afterwards": atomic,
                "is_ood afterwards": is_ood}
    return run


def _swapped_letters(atomic, is_ood):
    s = build_splits(atomic, is_ood)
    return {"II": s["II"], "IO": s["OI"], "OI": s["IO"], "OO": s["OO"]}


def _answer_is_bridge(atomic, is_ood):
    s = build_splits(atomic, is_ood)
    return {k: v[:, [0, 1, 2, 4, 3]] for k, v in s.items()}


def _only_first_hop_origin(atomic, is_ood):
    """Classify by the first hop only (second letter copies the first)."""
    s = build_splits(atomic, is_ood)
    return {"II": np.concatenate([s["II"], s["IO"]]), "IO": s["II"][:0],
            "OI": s["OI"][:0], "OO": np.concatenate([s["OI"], s["OO"]])}


def _letters_inverted(atomic, is_ood):
    """I and O exchanged: 'I' written for an OOD hop."""
    return build_splits(atomic, ~np.asarray(is_ood, bool))


def _empty_split_flat(atomic, is_ood):
    """An empty split as np.array([]) (shape (0,)) instead of shape (0, 5)."""
    return {k: v if len(v) else np.array([], dtype=np.int64) for k, v in build_splits(atomic, is_ood).items()}


def _sorted_in_place(atomic, is_ood):
    """Groups the triples by head by sorting the caller's arrays in place."""
    order = np.argsort(atomic[:, 0], kind="stable")
    atomic[:] = atomic[order]
    is_ood[:] = is_ood[order]
    return build_splits(atomic, is_ood)


check_build_splits = Exercise(
    "build_splits", build_splits,
    cases=lambda: [Case("random graph, 12 entities", _splits_case(0)),
                   Case("another graph, 30 entities", _splits_case(1, n_entities=30, k=4, n_rel=6)),
                   Case("one relation per entity (edge case)", _splits_case(2, k=1)),
                   Case("no OOD triple: IO, OI, OO are empty, shape (0, 5) (edge case)", _splits_case(3, ood=0.0)),
                   Case("the inputs are left unchanged", _splits_inputs_case(4))],
    mistakes=[
        Mistake("The first letter is the *first* hop's origin (e1, r1) -> e2, the second letter the "
                "second hop's (e2, r2) -> e3: you swapped them.", _swapped_letters),
        Mistake("Each row is (e1, r1, r2, e2, e3): the bridge e2 comes before the answer e3.", _answer_is_bridge),
        Mistake("A query's split depends on *both* hops: check is_ood of the second hop too.", _only_first_hop_origin),
        Mistake("'I' is an ID hop (is_ood False), 'O' an OOD hop (is_ood True): you exchanged I and O.",
                _letters_inverted),
        Mistake("An empty split is an int array of shape (0, 5): np.array(rows, dtype=np.int64).reshape(-1, 5).",
                _empty_split_flat),
        Mistake("Do not change `atomic` or `is_ood` in place (the notebook's world uses them afterwards): "
                "sort or reorder a copy, or index through a dict as in the hint.", _sorted_in_place),
    ],
    hint="For every atomic triple i = (e1, r1, e2), chain every triple j = (e2, r2, e3) whose head is e2 "
         "(a dict head -> rows helps); the row is (e1, r1, r2, e2, e3) and its split is the origin of i, "
         "then of j ('I' if not is_ood, else 'O').")


# ----------------------------------------------------------------------------- answer_only_loss
def _loss_inputs(seed, batch, pos_choices):
    import torch

    g = seeded_generator(seed)
    logits = torch.randn(batch, 3, 9, generator=g)
    answers = torch.randint(0, 9, (batch,), generator=g)
    pos = torch.tensor(pos_choices)[torch.randint(0, len(pos_choices), (batch,), generator=g)]
    return logits, answers, pos


def _loss_case(seed, batch, pos_choices=(1, 2)):
    def run(impl):
        logits, answers, pos = _loss_inputs(seed, batch, pos_choices)
        logits.requires_grad_(True)
        return impl(logits, answers, pos), {"logits": logits}
    return run


def _loss_last(logits, answers, pos):
    import torch.nn.functional as F

    return F.cross_entropy(logits[:, -1], answers)


def _loss_all_positions(logits, answers, pos):
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, 1), answers.repeat_interleave(logits.shape[1]))


def _loss_summed(logits, answers, pos):
    import torch.nn.functional as F

    return F.cross_entropy(logits[range(len(answers)), pos], answers, reduction="sum")


def _loss_double_softmax(logits, answers, pos):
    import torch.nn.functional as F

    return F.cross_entropy(logits[range(len(answers)), pos].softmax(-1), answers)


check_answer_only_loss = Exercise(
    "answer_only_loss", answer_only_loss,
    cases=lambda: [gradient_case("mixed atomic / 2-hop batch (value and gradient)", _loss_case(0, 8)),
                   gradient_case("all 2-hop (edge case)", _loss_case(1, 5, (2,))),
                   gradient_case("all atomic", _loss_case(3, 6, (1,))),
                   gradient_case("a single atomic query (edge case)", _loss_case(2, 1, (1,)))],
    mistakes=[
        Mistake("Atomic queries are answered at position 1 (after r1), 2-hop queries at position 2: "
                "use each row's answer_pos, not always the last position.", _loss_last),
        Mistake("The loss is on the answer token only, not on every position.", _loss_all_positions),
        Mistake("Average over the batch (cross_entropy's default), not sum.", _loss_summed),
        Mistake("F.cross_entropy takes the raw logits (it applies log_softmax itself): do not softmax first.",
                _loss_double_softmax),
    ],
    hint="Select logits[rows, answer_pos] with rows = torch.arange(batch) (shape [batch, vocab]) and apply "
         "F.cross_entropy with the answers; keep it a tensor connected to the logits (the model trains "
         "through it).")


# ----------------------------------------------------------------------------- answer_accuracy
def _acc_case(seed, batch, agree: float):
    import torch

    def run(impl):
        g = seeded_generator(seed)
        logits = torch.randn(batch, 3, 9, generator=g)
        pos = torch.randint(1, 3, (batch,), generator=g)
        answers = logits[torch.arange(batch), pos].argmax(-1)
        flip = torch.rand(batch, generator=g) > agree
        answers[flip] = (answers[flip] + 1) % 9
        return impl(logits, answers, pos)
    return run


check_answer_accuracy = Exercise(
    "answer_accuracy", answer_accuracy,
    cases=lambda: [Case("random batch, about half right", _acc_case(0, 40, 0.5)),
                   Case("all right (edge case)", _acc_case(1, 7, 1.1)),
                   Case("a single wrong answer (edge case)", _acc_case(2, 1, -0.1)),
                   Case("another batch, mostly right", _acc_case(3, 10, 0.8))],
    mistakes=[
        Mistake("Read each query at its own answer position, not always the last one.",
                lambda lg, a, p: float((lg[:, -1].argmax(-1) == a).float().mean())),
        Mistake("Return a fraction (the mean), not the number of correct answers.",
                lambda lg, a, p: float((lg[range(len(a)), p].argmax(-1) == a).float().sum())),
        Mistake("argmax over the vocabulary (last dimension) of logits[rows, answer_pos].",
                lambda lg, a, p: float((lg.argmax(1)[range(len(a)), 0] == a).float().mean())),
        Mistake("The accuracy is the fraction of answers that are *right* (argmax == answer), not wrong.",
                lambda lg, a, p: float((lg[range(len(a)), p].argmax(-1) != a).float().mean())),
    ],
    hint="Pick logits[rows, answer_pos] with rows = torch.arange(batch) (shape [batch, vocab]), take the "
         "argmax over the vocabulary, compare with answers and average.")


# ----------------------------------------------------------------------------- check models
def _tl_model(n_layers: int, d_vocab: int, seed: int):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=n_layers, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=3,
                                  d_vocab=d_vocab, act_fn="gelu", normalization_type="LN", seed=seed,
                                  device="cpu")
    return randomize_parameters(HookedTransformer(cfg), seed).eval()


@check_model
def check_model_3_layers():
    """A 3-layer TransformerLens model with every parameter random (LayerNorms and b_U included)."""
    return _tl_model(3, 13, 0)


@check_model
def check_model_2_layers():
    """A second shape (2 layers, another vocabulary), so that nothing hard-coded passes."""
    return _tl_model(2, 11, 1)


def _tokens(seed, batch, d_vocab):
    import torch

    return torch.randint(0, d_vocab, (batch, 3), generator=seeded_generator(seed))


# ----------------------------------------------------------------------------- logit_lens_at
def _lens_case(model_fn, seed, batch, pos):
    def run(impl):
        import torch

        model = model_fn()
        with torch.no_grad():
            _, cache = model.run_with_cache(_tokens(seed, batch, model.cfg.d_vocab))
            return impl(model, cache, pos)
    return run


def _lens_no_ln(model, cache, pos):
    import torch

    L = model.cfg.n_layers
    return model.unembed(torch.stack([cache["resid_pre", 0][:, pos]] + [cache["resid_post", l][:, pos] for l in range(L)]))


def _lens_no_embed(model, cache, pos):
    import torch

    L = model.cfg.n_layers
    return model.unembed(model.ln_final(torch.stack([cache["resid_post", l][:, pos] for l in range(L)])))


def _lens_no_unembed_bias(model, cache, pos):
    return model.ln_final(cache.accumulated_resid(pos_slice=pos)) @ model.W_U


def _lens_ln_by_hand(model, cache, pos):
    """Normalises each state by hand, without ln_final's learned scale and bias."""
    states = cache.accumulated_resid(pos_slice=pos)
    states = states - states.mean(-1, keepdim=True)
    return model.unembed(states / (states.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt())


check_logit_lens_at = Exercise(
    "logit_lens_at", logit_lens_at,
    cases=lambda: [Case("batch 4, position r1", _lens_case(check_model_3_layers, 0, 4, 1)),
                   Case("batch 1, position e1 (edge case)", _lens_case(check_model_3_layers, 1, 1, 0)),
                   Case("batch 3, last position", _lens_case(check_model_3_layers, 2, 3, 2)),
                   Case("a 2-layer model, position r1", _lens_case(check_model_2_layers, 3, 5, 1))],
    mistakes=[
        Mistake("Apply the final LayerNorm (model.ln_final) before model.unembed.", _lens_no_ln),
        Mistake("Include the embeddings (resid_pre of block 0): there are n_layers + 1 states.", _lens_no_embed),
        Mistake("Read the states at position `pos`, not at the last position.",
                lambda model, cache, pos: logit_lens_at(model, cache, -1)),
        Mistake("Use model.unembed: it adds the unembedding bias b_U to states @ W_U.", _lens_no_unembed_bias),
        Mistake("Use model.ln_final itself: it also applies the learned scale w and bias b, not only the "
                "normalisation.", _lens_ln_by_hand),
    ],
    hint="Stack cache['resid_pre', 0][:, pos] and cache['resid_post', l][:, pos] for l = 0 .. n_layers - 1 "
         "(n_layers + 1 states), then apply model.ln_final and model.unembed.")


# ----------------------------------------------------------------------------- patched_logits
def _patch_case(model_fn, seed, batch, layer, pos, src_pos):
    def run(impl):
        model = model_fn()
        d_vocab = model.cfg.d_vocab
        return impl(model, _tokens(seed, batch, d_vocab), _tokens(seed + 50, batch, d_vocab), layer, pos, src_pos)
    return run


def _patch_same_pos(model, t, s, layer, pos, src_pos):
    return patched_logits(model, t, s, layer, pos, pos)


def _patch_all_positions(model, t, s, layer, pos, src_pos):
    name = resid_hook_name(model, layer)
    _, cache = model.run_with_cache(s)
    return model.run_with_hooks(t, fwd_hooks=[(name, lambda r, hook: cache[name].clone())])


def _patch_post(model, t, s, layer, pos, src_pos):
    return patched_logits(model, t, s, min(layer + 1, model.cfg.n_layers), pos, src_pos)


def _patch_swapped_runs(model, t, s, layer, pos, src_pos):
    """Runs the source with the target's state."""
    return patched_logits(model, s, t, layer, src_pos, pos)


def _patch_from_target(model, t, s, layer, pos, src_pos):
    """Caches the target instead of the source."""
    return patched_logits(model, t, t, layer, pos, src_pos)


check_patched_logits = Exercise(
    "patched_logits", patched_logits,
    cases=lambda: [Case("layer 1, r1 <- r1", _patch_case(check_model_3_layers, 0, 4, 1, 1, 1)),
                   Case("layer 2, r2 <- source position 1", _patch_case(check_model_3_layers, 1, 3, 2, 2, 1)),
                   Case("embeddings, e1 (edge case)", _patch_case(check_model_3_layers, 2, 2, 0, 0, 0)),
                   Case("after the last block (edge case)", _patch_case(check_model_3_layers, 3, 2, 3, 1, 1)),
                   Case("a 2-layer model, layer 1, e1 <- source position 2",
                        _patch_case(check_model_2_layers, 4, 3, 1, 0, 2)),
                   Case("embeddings, r1 <- source position 2 (the positional embedding differs)",
                        _patch_case(check_model_2_layers, 5, 3, 0, 1, 2))],
    mistakes=[
        Mistake("Take the source state at src_pos (the source may have a different layout), not at pos.",
                _patch_same_pos),
        Mistake("Patch one position only; the other positions keep the target's own states.", _patch_all_positions),
        Mistake("Layer l means the state *entering* block l (resid_pre); use resid_hook_name(model, layer).",
                _patch_post),
        Mistake("Run the *target* tokens, with the state taken from the *source* run (you swapped the two).",
                _patch_swapped_runs),
        Mistake("The patched-in state comes from a run on source_tokens (cache it with run_with_cache), "
                "not from the target's own run.", _patch_from_target),
    ],
    hint="Cache the source at resid_hook_name(model, layer), then run the target with a hook that "
         "overwrites resid[:, pos] with the cached state at src_pos (model.run_with_hooks removes the hook "
         "afterwards).")


# ----------------------------------------------------------------------------- edit_metrics
def _edit_case(seed, n):
    import torch

    def run(impl):
        g = seeded_generator(seed)
        new_bridge = torch.randint(0, 6, (n,), generator=g)
        atomic_pred = torch.where(torch.rand(n, generator=g) < 0.8, new_bridge, (new_bridge + 1) % 6)
        new_answer = torch.randint(0, 6, (n,), generator=g)
        two_hop = torch.where(torch.rand(n, generator=g) < 0.3, new_answer, (new_answer + 2) % 6)
        return impl(atomic_pred, new_bridge, two_hop, new_answer)
    return run


check_edit_metrics = Exercise(
    "edit_metrics", edit_metrics,
    cases=lambda: [Case("50 random edits", _edit_case(0, 50)), Case("a single edit (edge case)", _edit_case(1, 1)),
                   Case("3 edits", _edit_case(2, 3)), Case("40 edits", _edit_case(3, 40))],
    mistakes=[
        Mistake("The 2-hop answer follows the edit when it is tail(new bridge, r2), the new *answer*, not the "
                "new bridge itself.", lambda ap, nb, th, na: {"edit": float((ap == nb).float().mean()),
                                                              "multi_hop": float((th == nb).float().mean())}),
        Mistake("Report rates (means over the edits), not counts.",
                lambda ap, nb, th, na: {"edit": float((ap == nb).sum()), "multi_hop": float((th == na).sum())}),
        Mistake("MQuAKE's multi-hop rate is over *all* edits, not only the successful ones.",
                lambda ap, nb, th, na: {"edit": float((ap == nb).float().mean()),
                                        "multi_hop": float((th == na)[ap == nb].float().mean())}),
        Mistake("multi_hop counts the 2-hop answers that follow the edit, whether or not the edited fact "
                "itself succeeded (not both at once).",
                lambda ap, nb, th, na: {"edit": float((ap == nb).float().mean()),
                                        "multi_hop": float(((th == na) & (ap == nb)).float().mean())}),
    ],
    hint="Two means over the edits: edit = (atomic_pred == new_bridge), multi_hop = (two_hop_pred == "
         "new_answer), each as a float.")


# ----------------------------------------------------------------------------- grokfast_ema
def _filter_module(seed: int):
    import torch

    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    module[1].bias.requires_grad_(False)  # a parameter without a gradient: its .grad stays None
    return module


def _filter_case(seed, alpha, lamb, n_steps=3):
    """The gradients the optimizer would see after each of ``n_steps`` filter steps (fresh random
    gradients every step; a parameter without a gradient must keep None), and whether the average
    was returned for the next step."""
    def run(impl):
        import torch

        module = _filter_module(seed)
        g = seeded_generator(seed)
        ema, seen = None, []
        for _ in range(n_steps):
            for p in module.parameters():
                p.grad = torch.randn(p.shape, generator=g) if p.requires_grad else None
            ema = impl(module, ema, alpha, lamb)
            seen.append([None if p.grad is None else p.grad.detach().clone() for p in module.parameters()])
        return {"gradients after each step": seen, "returns the average for the next step": ema is not None}
    return run


def _ema_from_zero(model, ema, alpha, lamb):
    """Starts the moving average at zero instead of at the first gradient."""
    import torch

    if ema is None:
        ema = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.grad is not None}
    for n, p in model.named_parameters():
        if p.grad is not None:
            ema[n] = alpha * ema[n] + (1 - alpha) * p.grad
            p.grad = p.grad + lamb * ema[n]
    return ema


def _ema_weights_swapped(model, ema, alpha, lamb):
    """ema <- (1 - alpha) ema + alpha g: the new gradient gets the large weight."""
    if ema is None:
        ema = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    else:
        for n, p in model.named_parameters():
            if p.grad is not None:
                ema[n] = (1 - alpha) * ema[n] + alpha * p.grad
    for n, p in model.named_parameters():
        if p.grad is not None:
            p.grad = p.grad + lamb * ema[n]
    return ema


def _ema_replaces_gradient(model, ema, alpha, lamb):
    """g <- lamb * ema: the filtered gradient replaces the gradient instead of being added."""
    if ema is None:
        ema = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    else:
        for n, p in model.named_parameters():
            if p.grad is not None:
                ema[n] = alpha * ema[n] + (1 - alpha) * p.grad
    for n, p in model.named_parameters():
        if p.grad is not None:
            p.grad = lamb * ema[n]
    return ema


def _ema_aliases_gradient(model, ema, alpha, lamb):
    """Keeps p.grad itself (no copy) as the average and then amplifies p.grad in place: the
    average is amplified along with it."""
    if ema is None:
        ema = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    else:
        for n, p in model.named_parameters():
            if p.grad is not None:
                ema[n] = alpha * ema[n] + (1 - alpha) * p.grad
    for n, p in model.named_parameters():
        if p.grad is not None:
            p.grad.add_(lamb * ema[n])
    return ema


def _ema_not_returned(model, ema, alpha, lamb):
    """Updates the average but returns None, so every step starts afresh."""
    grokfast_ema(model, ema, alpha, lamb)


check_grokfast_ema = Exercise(
    "grokfast_ema", grokfast_ema,
    cases=lambda: [Case("alpha 0.98, gain 2, three steps (the gradients after each step)", _filter_case(0, 0.98, 2.0)),
                   Case("alpha 0.5, gain 5, four steps", _filter_case(1, 0.5, 5.0, n_steps=4)),
                   Case("gain 0: the gradients are unchanged (edge case)", _filter_case(2, 0.9, 0.0)),
                   Case("a single step (edge case)", _filter_case(3, 0.8, 3.0, n_steps=1))],
    mistakes=[
        Mistake("Start the average at the first gradient (ema = g when ema is None), not at zero.", _ema_from_zero),
        Mistake("The old average keeps the weight alpha (0.98): ema = alpha * ema + (1 - alpha) * g.",
                _ema_weights_swapped),
        Mistake("Add the amplified average to the gradient (g + lamb * ema); do not replace the gradient.",
                _ema_replaces_gradient),
        Mistake("Store a copy of the gradient (p.grad.detach().clone()) as the first average: p.grad itself is "
                "changed when you amplify it in place, and the average with it.", _ema_aliases_gradient),
        Mistake("Return the ema dict: the next step passes it back in (None only at the first step).",
                _ema_not_returned),
    ],
    hint="For each named parameter with a gradient g: update ema[name] = alpha * ema[name] + (1 - alpha) * g "
         "(ema[name] = a copy of g at the first step, when ema is None), then set p.grad = g + lamb * ema[name]; "
         "return ema.")
