"""Notebook 06's exercise checks (see :mod:`course_lib.checking`)."""
from __future__ import annotations

import functools

import numpy as np

from ..checking import Case, Exercise, Mistake, seeded_generator
from .analysis import edit_metrics, logit_lens_at, patched_logits
from .training import answer_only_loss
from .world import build_splits


def answer_accuracy(logits, answers, answer_pos) -> float:
    """Fraction of queries whose argmax at their answer position is the answer."""
    import torch

    rows = torch.arange(logits.shape[0])
    return float((logits[rows, answer_pos].argmax(-1) == answers).float().mean())


# ----------------------------------------------------------------------------- inputs
def _graph(seed: int, n_entities: int = 12, k: int = 3, n_rel: int = 4):
    rng = np.random.default_rng(seed)
    heads = np.repeat(np.arange(n_entities), k)
    rels = np.concatenate([rng.choice(n_rel, k, replace=False) for _ in range(n_entities)]) + n_entities
    atomic = np.stack([heads, rels, rng.integers(0, n_entities, n_entities * k)], 1)
    is_ood = rng.random(len(atomic)) < 0.25
    return atomic, is_ood


def _sorted(splits):
    """Compare split contents regardless of the row order a student chose."""
    out = {}
    for k, a in splits.items():
        a = np.asarray(a, dtype=np.int64).reshape(-1, 5)
        out[k] = a[np.lexsort(a.T[::-1])] if len(a) else a
    return out


def _splits_case(seed, **kw):
    return lambda impl: _sorted(impl(*_graph(seed, **kw)))


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


check_build_splits = Exercise(
    "build_splits", build_splits,
    cases=lambda: [Case("random graph, 12 entities", _splits_case(0)),
                   Case("another graph, 30 entities", _splits_case(1, n_entities=30, k=4, n_rel=6)),
                   Case("one relation per entity (edge case)", _splits_case(2, k=1))],
    mistakes=[
        Mistake("The first letter is the *first* hop's origin (e1, r1) -> e2, the second letter the "
                "second hop's (e2, r2) -> e3: you swapped them.", _swapped_letters),
        Mistake("Each row is (e1, r1, r2, e2, e3): the bridge e2 comes before the answer e3.", _answer_is_bridge),
        Mistake("A query's split depends on *both* hops: check is_ood of the second hop too.", _only_first_hop_origin),
    ],
    hint="For every atomic triple i = (e1, r1, e2), chain every triple j whose head is e2.")


def _loss_case(seed, batch, pos_choices=(1, 2)):
    import torch

    def run(impl):
        g = seeded_generator(seed)
        logits = torch.randn(batch, 3, 9, generator=g)
        answers = torch.randint(0, 9, (batch,), generator=g)
        pos = torch.tensor(pos_choices)[torch.randint(0, len(pos_choices), (batch,), generator=g)]
        return impl(logits, answers, pos)
    return run


def _loss_last(logits, answers, pos):
    import torch.nn.functional as F

    return F.cross_entropy(logits[:, -1], answers)


def _loss_all_positions(logits, answers, pos):
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, 1), answers.repeat_interleave(logits.shape[1]))


check_answer_only_loss = Exercise(
    "answer_only_loss", answer_only_loss,
    cases=lambda: [Case("mixed atomic / 2-hop batch", _loss_case(0, 8)),
                   Case("all 2-hop (edge case)", _loss_case(1, 5, (2,))),
                   Case("a single atomic query (edge case)", _loss_case(2, 1, (1,)))],
    mistakes=[
        Mistake("Atomic queries are answered at position 1 (after r1), 2-hop queries at position 2: "
                "use each row's answer_pos, not always the last position.", _loss_last),
        Mistake("The loss is on the answer token only, not on every position.", _loss_all_positions),
        Mistake("Average over the batch (cross_entropy's default), not sum.",
                lambda lg, a, p: answer_only_loss(lg, a, p) * lg.shape[0]),
    ],
    hint="Select logits[rows, answer_pos] (shape [batch, vocab]) and apply F.cross_entropy.")


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
                   Case("a single wrong answer (edge case)", _acc_case(2, 1, -0.1))],
    mistakes=[
        Mistake("Read each query at its own answer position, not always the last one.",
                lambda lg, a, p: float((lg[:, -1].argmax(-1) == a).float().mean())),
        Mistake("Return a fraction (the mean), not the number of correct answers.",
                lambda lg, a, p: float((lg[range(len(a)), p].argmax(-1) == a).float().sum())),
        Mistake("argmax over the vocabulary (last dimension) of logits[rows, answer_pos].",
                lambda lg, a, p: float((lg.argmax(1)[range(len(a)), 0] == a).float().mean())),
    ])


@functools.lru_cache(maxsize=1)
def _random_model():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=3, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=3, d_vocab=13,
                                  act_fn="gelu", normalization_type="LN", seed=0, device="cpu")
    return HookedTransformer(cfg).eval()


def _tokens(seed, batch):
    import torch

    return torch.randint(0, 13, (batch, 3), generator=seeded_generator(seed))


def _lens_case(seed, batch, pos):
    def run(impl):
        import torch

        model = _random_model()
        with torch.no_grad():
            _, cache = model.run_with_cache(_tokens(seed, batch))
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


check_logit_lens_at = Exercise(
    "logit_lens_at", logit_lens_at,
    cases=lambda: [Case("batch 4, position r1", _lens_case(0, 4, 1)),
                   Case("batch 1, position e1 (edge case)", _lens_case(1, 1, 0)),
                   Case("batch 3, last position", _lens_case(2, 3, 2))],
    mistakes=[
        Mistake("Apply the final LayerNorm (model.ln_final) before model.unembed.", _lens_no_ln),
        Mistake("Include the embeddings (resid_pre of block 0): there are n_layers + 1 states.", _lens_no_embed),
        Mistake("Read the states at position `pos`, not at the last position.",
                lambda model, cache, pos: logit_lens_at(model, cache, -1)),
    ],
    hint="Stack cache['resid_pre', 0][:, pos] and cache['resid_post', l][:, pos], then ln_final, then unembed.")


def _patch_case(seed, batch, layer, pos, src_pos):
    def run(impl):
        model = _random_model()
        return impl(model, _tokens(seed, batch), _tokens(seed + 50, batch), layer, pos, src_pos)
    return run


def _patch_same_pos(model, t, s, layer, pos, src_pos):
    return patched_logits(model, t, s, layer, pos, pos)


def _patch_all_positions(model, t, s, layer, pos, src_pos):
    return patched_logits(model, t, s, layer, 0, 0) * 0 + _full_patch(model, t, s, layer)


def _full_patch(model, t, s, layer):
    import torch

    from .analysis import resid_hook_name

    name = resid_hook_name(model, layer)
    with torch.no_grad():
        _, cache = model.run_with_cache(s)
        return model.run_with_hooks(t, fwd_hooks=[(name, lambda r, hook: cache[name].clone())])


def _patch_post(model, t, s, layer, pos, src_pos):
    return patched_logits(model, t, s, min(layer + 1, model.cfg.n_layers), pos, src_pos)


check_patched_logits = Exercise(
    "patched_logits", patched_logits,
    cases=lambda: [Case("layer 1, r1 <- r1", _patch_case(0, 4, 1, 1, 1)),
                   Case("layer 2, r2 <- source position 1", _patch_case(1, 3, 2, 2, 1)),
                   Case("embeddings, e1 (edge case)", _patch_case(2, 2, 0, 0, 0)),
                   Case("after the last block (edge case)", _patch_case(3, 2, 3, 1, 1))],
    mistakes=[
        Mistake("Take the source state at src_pos (the source may have a different layout), not at pos.",
                _patch_same_pos),
        Mistake("Patch one position only; the other positions keep the target's own states.", _patch_all_positions),
        Mistake("Layer l means the state *entering* block l (resid_pre); use resid_hook_name(model, layer).",
                _patch_post),
    ],
    hint="Cache the source at resid_hook_name(model, layer), then run the target with a hook that "
         "overwrites resid[:, pos] with the cached state at src_pos.")


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
                   Case("3 edits", _edit_case(2, 3))],
    mistakes=[
        Mistake("The 2-hop answer follows the edit when it is tail(new bridge, r2), the new *answer*, not the "
                "new bridge itself.", lambda ap, nb, th, na: {"edit": float((ap == nb).float().mean()),
                                                              "multi_hop": float((th == nb).float().mean())}),
        Mistake("Report rates (means over the edits), not counts.",
                lambda ap, nb, th, na: {"edit": float((ap == nb).sum()), "multi_hop": float((th == na).sum())}),
        Mistake("MQuAKE's multi-hop rate is over *all* edits, not only the successful ones.",
                lambda ap, nb, th, na: {"edit": float((ap == nb).float().mean()),
                                        "multi_hop": float((th == na)[ap == nb].float().mean())}),
    ])
