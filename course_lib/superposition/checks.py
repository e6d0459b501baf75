"""Notebook 01's exercise checks: seeded cases, plausible mistakes and their hints.

Every case also returns the tensor inputs as they are after the call (an implementation that edits
its inputs in place fails), and the cases of the two functions that training goes through
(``toy_forward``, ``importance_weighted_loss``) compare gradients too."""
from __future__ import annotations

import math

import torch

from ..checking import Case, Exercise, Mistake, gradient_case, seeded_generator
from .measures import feature_dimensionality, features_per_neuron, interference
from .model import generate_batch, importance_weighted_loss, toy_forward
from .phases import classify_phase

IN_PLACE = "Work on a copy: your function changed one of its inputs in place. Leave the inputs as they are."


def _randn(*shape, g):
    return torch.randn(*shape, generator=g)


def _with_inputs(out, **inputs) -> dict:
    """The output, and every tensor input as it is after the call (it must be unchanged)."""
    return {"output": out, **{f"{name} after the call (must be unchanged)": x for name, x in inputs.items()}}


# ----------------------------------------------------------------------------- exercise 1: generate_batch
# A random batch cannot be compared number by number (your random draws may come in another order),
# so each case compares the properties the exercise asks for, measured on a large batch.
_BATCH_KEYS = ("type", "shape", "dtype", "feature_probability unchanged", "all values in [0, 1]",
               "the same generator seed gives the same batch", "another generator seed gives another batch",
               "fraction of active features = p (within 0.02)", "active values spread uniformly over [0, 1]",
               "active values are not all equal", "active features of one example take different values",
               "features switched on independently", "instances switched on independently")


def _batch_case(seed: int, batch_size: int, p):
    def run(impl):
        prob = torch.as_tensor(p, dtype=torch.float32)
        given = prob.clone()
        x = impl(batch_size, prob, generator=seeded_generator(seed))
        summary = dict.fromkeys(_BATCH_KEYS)
        summary["type"] = type(x).__name__
        if not isinstance(x, torch.Tensor):
            return summary
        summary["shape"], summary["dtype"] = tuple(x.shape), str(x.dtype)
        summary["feature_probability unchanged"] = bool(torch.equal(prob, given))
        if summary["shape"] != (batch_size, *prob.shape):
            return summary
        active = x > 0
        summary["all values in [0, 1]"] = bool(((x >= 0) & (x <= 1)).all())
        small = 64
        first, again = (impl(small, given.clone(), generator=seeded_generator(seed + 1000)) for _ in range(2))
        other = impl(small, given.clone(), generator=seeded_generator(seed + 2000))
        summary[_BATCH_KEYS[5]] = isinstance(first, torch.Tensor) and bool(torch.equal(first, again))
        summary[_BATCH_KEYS[6]] = isinstance(other, torch.Tensor) and not bool(torch.equal(first, other))
        if batch_size >= 1000:  # enough samples for the statistics
            values = x[active]
            summary[_BATCH_KEYS[7]] = bool((active.float().mean(0) - prob).abs().max() < 0.02)
            summary[_BATCH_KEYS[8]] = bool(values.numel() > 0 and abs(values.mean().item() - 0.5) < 0.05
                                           and values.max() > 0.9 and values.min() < 0.1)
            summary[_BATCH_KEYS[9]] = bool(values.unique().numel() > 100)
            both = active[..., 0] & active[..., 1]
            summary[_BATCH_KEYS[10]] = bool((x[..., 0] == x[..., 1])[both].float().mean() < 0.01)
            summary[_BATCH_KEYS[11]] = bool((both.float().mean(0) - prob[..., 0] * prob[..., 1]).abs().max() < 0.02)
            if prob.dim() == 2 and prob.shape[0] >= 2:
                across = (active[:, 0, 0] & active[:, 1, 0]).float().mean()
                summary[_BATCH_KEYS[12]] = bool(abs(across - prob[0, 0] * prob[1, 0]) < 0.02)
        return summary
    return run


def _sparsity_not_probability(batch_size, p, generator=None):
    values = torch.rand((batch_size, *p.shape), generator=generator)
    return torch.where(torch.rand((batch_size, *p.shape), generator=generator) < 1 - p, values, 0.0)


def _same_uniform(batch_size, p, generator=None):
    u = torch.rand((batch_size, *p.shape), generator=generator)
    return torch.where(u < p, u, 0.0)


def _one_switch_per_example(batch_size, p, generator=None):
    values = torch.rand((batch_size, *p.shape), generator=generator)
    switch = torch.rand((batch_size, *p.shape[:-1], 1), generator=generator) < p
    return torch.where(switch, values, 0.0)


def _one_switch_for_all_instances(batch_size, p, generator=None):
    values = torch.rand((batch_size, *p.shape), generator=generator)
    switch = torch.rand((batch_size, 1, p.shape[-1]), generator=generator) < p
    return torch.where(switch, values, 0.0)


def _binary_features(batch_size, p, generator=None):
    return (torch.rand((batch_size, *p.shape), generator=generator) < p).float()


def _one_value_per_example(batch_size, p, generator=None):
    values = torch.rand((batch_size, *p.shape[:-1], 1), generator=generator)
    return torch.where(torch.rand((batch_size, *p.shape), generator=generator) < p, values, 0.0)


def _ignores_generator(batch_size, p, generator=None):
    return generate_batch(batch_size, p)


def _own_generator(batch_size, p, generator=None):
    return generate_batch(batch_size, p, torch.Generator().manual_seed(0))


check_generate_batch = Exercise(
    "generate_batch", generate_batch,
    cases=lambda: [Case("p = 0.3 for 4 instances x 5 features", _batch_case(0, 20000, torch.full((4, 5), 0.3))),
                   Case("a sweep p = 1 ... 0.05 (one p per instance)",
                        _batch_case(1, 20000, (0.05 ** torch.linspace(0, 1, 6))[:, None].expand(6, 3))),
                   Case("different p per feature", _batch_case(2, 20000, torch.tensor([[0.9, 0.1, 0.5]]))),
                   Case("p = 1: every feature active (edge case)", _batch_case(3, 5000, torch.ones(2, 4))),
                   Case("batch of one (edge case)", _batch_case(4, 1, torch.full((3, 5), 0.5)))],
    mistakes=[
        Mistake("feature_probability is the probability that a feature is *active* (p = 1 - S): keep a "
                "feature where rand < p, not where rand < 1 - p.", _sparsity_not_probability),
        Mistake("Draw the on/off switch and the value from two separate random numbers: re-using the "
                "same uniform u (x = u where u < p) puts every active value in [0, p] instead of [0, 1].",
                _same_uniform),
        Mistake("Switch every feature on or off independently: draw one random number per (example, "
                "instance, feature), not one per example.", _one_switch_per_example),
        Mistake("Switch the instances on independently too: the switch needs the full shape [batch_size, "
                "n_instances, n_features], not one draw shared by all instances.", _one_switch_for_all_instances),
        Mistake("An active feature takes a value uniform in [0, 1] (torch.rand), not the value 1.", _binary_features),
        Mistake("Draw one value per feature: the values need the full shape [batch_size, *feature_probability.shape], "
                "else all active features of an example share one value.", _one_value_per_example),
        Mistake("Pass generator=generator to every torch.rand call: without it the batch comes from the global "
                "random state and the same seed does not give the same batch.", _ignores_generator),
        Mistake("Use the generator you are given (generator=generator), not one you seed yourself: another "
                "seed must give another batch.", _own_generator),
    ],
    hint="Shape [batch_size, *feature_probability.shape]: torch.rand for the values, and a second, independent "
         "torch.rand(...) < feature_probability for which features are active (pass generator= to both).")


# ----------------------------------------------------------------------------- exercise 2: toy_forward
def _forward_case(name: str, seed: int, n_instances: int, n_hidden: int, n_features: int, relu_hidden: bool,
                  zero_W: bool = False, batch: int = 6):
    def run(impl):
        g = seeded_generator(seed)
        W = (_randn(n_instances, n_hidden, n_features, g=g) * (0 if zero_W else 1)).requires_grad_()
        b = (_randn(n_instances, n_features, g=g) * 0.5).requires_grad_()
        x = generate_batch(batch, torch.full((n_instances, n_features), 0.6), g)
        return _with_inputs(impl(W, b, x, relu_hidden), x=x), {"W": W, "b_final": b}
    return gradient_case(name, run)


def _hidden(W, x, relu_hidden):
    h = torch.einsum("ihf,bif->bih", W, x)
    return torch.relu(h) if relu_hidden else h


def _read_back_detached(W, b, x, r=False):
    return torch.relu(torch.einsum("ihf,bih->bif", W.detach(), _hidden(W, x, r)) + b)


check_toy_forward = Exercise(
    "toy_forward", toy_forward,
    cases=lambda: [_forward_case("3 instances, 5 features -> 2 dims", 10, 3, 2, 5, False),
                   _forward_case("4 instances, 8 features -> 3 dims", 11, 4, 3, 8, False),
                   _forward_case("ReLU hidden layer (relu_hidden=True)", 12, 3, 4, 6, True),
                   _forward_case("a single instance (edge case)", 13, 1, 2, 5, False),
                   _forward_case("W = 0: the output is ReLU(b) (edge case)", 14, 2, 2, 5, False, zero_W=True)],
    mistakes=[
        Mistake("Did you forget the output ReLU? x' = ReLU(W^T h + b).",
                lambda W, b, x, r=False: torch.einsum("ihf,bih->bif", W, _hidden(W, x, r)) + b),
        Mistake("Add the bias b_final before the output ReLU.",
                lambda W, b, x, r=False: torch.relu(torch.einsum("ihf,bih->bif", W, _hidden(W, x, r)))),
        Mistake("The bias goes inside the ReLU: ReLU(W^T h + b), not ReLU(W^T h) + b.",
                lambda W, b, x, r=False: torch.relu(torch.einsum("ihf,bih->bif", W, _hidden(W, x, r))) + b),
        Mistake("With relu_hidden=True the hidden layer is h = ReLU(W x): apply the ReLU before reading back.",
                lambda W, b, x, r=False: toy_forward(W, b, x, False)),
        Mistake("The hidden ReLU belongs only to the relu_hidden=True variant: with relu_hidden=False, h = W x.",
                lambda W, b, x, r=False: toy_forward(W, b, x, True)),
        Mistake("Keep the instances apart: each instance has its own W, so contract over features only "
                "(einsum 'ihf,bif->bih'), never over the instance axis.",
                lambda W, b, x, r=False: torch.relu(torch.einsum(
                    "ihf,bih->bif", W, torch.einsum("ihf,bjf->bih", W, x)) + b)),
        Mistake("The weights are tied: W is used twice (h = W x and W^T h), and training needs the gradient "
                "through both uses. Do not .detach() W.", _read_back_detached),
    ],
    hint="h = einsum('ihf,bif->bih', W, x) (ReLU it if relu_hidden), then ReLU(einsum('ihf,bih->bif', W, h) + b_final); "
         "keep everything differentiable (training goes through it).")


# ----------------------------------------------------------------------------- exercise 3: importance_weighted_loss
def _loss_case(seed: int, n_instances: int, n_features: int, importance_per_instance: bool,
               perfect: bool = False, unit_importance: bool = False, batch: int = 7):
    def run(impl):
        g = seeded_generator(seed)
        x = torch.rand(batch, n_instances, n_features, generator=g)
        x_hat = (x.clone() if perfect else torch.rand(batch, n_instances, n_features, generator=g)).requires_grad_()
        shape = (n_instances, n_features) if importance_per_instance else (n_features,)
        importance = torch.ones(shape) if unit_importance else 0.2 + torch.rand(shape, generator=g)
        return _with_inputs(impl(x, x_hat, importance), x=x, importance=importance), {"x_hat": x_hat}
    return run


check_importance_weighted_loss = Exercise(
    "importance_weighted_loss", importance_weighted_loss,
    cases=lambda: [gradient_case("importance per feature [5]", _loss_case(20, 3, 5, False)),
                   gradient_case("importance per instance and feature [4, 6]", _loss_case(21, 4, 6, True)),
                   gradient_case("a single instance", _loss_case(22, 1, 5, False)),
                   gradient_case("all importances 1: plain squared error",
                                 _loss_case(23, 2, 5, False, unit_importance=True)),
                   gradient_case("perfect reconstruction: loss 0 (edge case)", _loss_case(24, 3, 5, False, perfect=True))],
    mistakes=[
        Mistake("The importance multiplies the squared error, not the error: I_i (x_i - x'_i)^2, "
                "not (I_i (x_i - x'_i))^2.", lambda x, xh, imp: ((imp * (x - xh)) ** 2).sum(-1).mean(0)),
        Mistake("Weight each feature's squared error by its importance I_i.",
                lambda x, xh, imp: ((x - xh) ** 2).sum(-1).mean(0)),
        Mistake("Sum over features (the loss is sum_i I_i (x_i - x'_i)^2), then average over the batch; "
                "you averaged over features.", lambda x, xh, imp: (imp * (x - xh) ** 2).mean(-1).mean(0)),
        *[Mistake("Return one loss per instance, shape [n_instances]: average over the batch (dim 0) only; "
                  "the training loop adds up the instances.", wrong) for wrong in
          (lambda x, xh, imp: (imp * (x - xh) ** 2).sum(-1).mean(),
           lambda x, xh, imp: (imp * (x - xh) ** 2).sum(-1).mean(0).sum())],
        Mistake("Square the error: (x_i - x'_i)^2, not |x_i - x'_i|.",
                lambda x, xh, imp: (imp * (x - xh).abs()).sum(-1).mean(0)),
        Mistake("Average over the batch (.mean(0)), do not sum: the loss must not grow with the batch size.",
                lambda x, xh, imp: (imp * (x - xh) ** 2).sum(-1).sum(0)),
    ],
    hint="(importance * (x - x_hat) ** 2).sum(-1).mean(0): sum over features, mean over the batch, one loss per "
         "instance; keep it differentiable (no .item(), .detach()).")


# ----------------------------------------------------------------------------- exercises 4 and 5 (shared cases)
def _W_case(kind: str, seed: int = 0):
    def make():
        g = seeded_generator(seed)
        if kind == "random":
            return _randn(3, 2, 5, g=g)
        if kind == "random, 4 dims":
            return _randn(2, 4, 7, g=g) * 0.7
        if kind == "orthogonal":
            return torch.eye(3)[None]
        if kind == "antipodal":
            return torch.tensor([[[1.0, -1.0]]])
        if kind == "pentagon":
            angles = torch.arange(5) * 2 * math.pi / 5
            return torch.stack([angles.cos(), angles.sin()])[None]
        if kind == "zero column":
            W = _randn(2, 2, 4, g=g)
            W[:, :, 1] = 0
            return W
        raise KeyError(kind)

    def run(impl):
        W = make()
        return _with_inputs(impl(W), W=W)
    return run


_W_CASES = [("random W [3, 2, 5]", "random", 30), ("random W [2, 4, 7]", "random, 4 dims", 31),
            ("orthogonal features (edge case)", "orthogonal", 0), ("an antipodal pair (edge case)", "antipodal", 0),
            ("a pentagon (edge case)", "pentagon", 0), ("an unlearnt feature W_i = 0 (edge case)", "zero column", 32)]


def _unit(W):
    return W / W.norm(dim=1, keepdim=True)


def _cosines_squared(W):
    W_hat = _unit(W).nan_to_num()
    return torch.einsum("khi,khj->kij", W_hat, W_hat) ** 2


def _wrong_axis_interference(W):
    W_hat = W / W.norm(dim=2, keepdim=True).clamp_min(1e-8)
    overlaps = torch.einsum("khi,khj->kij", W_hat, W) ** 2
    return overlaps.sum(-1) - overlaps.diagonal(dim1=1, dim2=2)


def _normalise_in_place(measure):
    def impl(W):
        norms = W.norm(dim=1, keepdim=True).clamp_min(1e-8)
        result = measure(W)
        W /= norms
        return result
    return impl


PROJECT_W_J = ("Project W_j itself onto the unit vector W^_i: (W^_i . W_j)^2, not the squared cosine "
               "(W^_i . W^_j)^2 — a feature with a larger norm interferes more.")

check_interference = Exercise(
    "interference", interference,
    cases=lambda: [Case(name, _W_case(kind, seed)) for name, kind, seed in _W_CASES],
    mistakes=[
        Mistake("An unlearnt feature (W_i = 0) gets interference 0, not nan: guard the division by "
                "||W_i|| (e.g. W.norm(...).clamp_min(1e-8)).",
                lambda W: (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).sum(-1)
                - (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).diagonal(dim1=1, dim2=2)),
        Mistake("Leave out j = i: a feature does not interfere with itself (you added ||W_i||^2).",
                lambda W: (torch.einsum("khi,khj->kij", _unit(W).nan_to_num(), W) ** 2).sum(-1)),
        Mistake("Project onto the *unit* vector W^_i = W_i / ||W_i||, not onto W_i itself.",
                lambda W: (torch.einsum("khi,khj->kij", W, W) ** 2).sum(-1) - W.norm(dim=1) ** 4),
        Mistake("Square each overlap before adding: (W^_i . W_j)^2. Unsquared, positive and negative "
                "overlaps cancel (an antipodal pair would show no interference).",
                lambda W: torch.einsum("khi,khj->kij", _unit(W).nan_to_num(), W).sum(-1) - W.norm(dim=1)),
        Mistake("Features are the columns of W (the last axis): W_i is W[k, :, i]; normalise over the hidden axis (dim=1).",
                _wrong_axis_interference),
        Mistake(PROJECT_W_J, lambda W: _cosines_squared(W).sum(-1) - _cosines_squared(W).diagonal(dim1=1, dim2=2)),
        Mistake(IN_PLACE, _normalise_in_place(interference)),
    ],
    hint="W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8); overlaps = einsum('khi,khj->kij', W_hat, W) ** 2; "
         "sum over j and subtract the diagonal.")

check_feature_dimensionality = Exercise(
    "feature_dimensionality", feature_dimensionality,
    cases=lambda: [Case(name, _W_case(kind, seed)) for name, kind, seed in _W_CASES],
    mistakes=[
        Mistake("An unlearnt feature (W_i = 0) has D_i = 0, not nan: guard the divisions "
                "(e.g. clamp ||W_i|| and the denominator at 1e-8).",
                lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).sum(-1)),
        Mistake("The sum over j includes j = i: a feature with a dimension of its own has D_i = 1 "
                "(its own term (W^_i . W_i)^2 = ||W_i||^2 in the denominator).",
                lambda W: W.norm(dim=1) ** 2 / interference(W).clamp_min(1e-8)),
        Mistake("Project onto the *unit* vector W^_i = W_i / ||W_i|| in the denominator, not onto W_i.",
                lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", W, W) ** 2).sum(-1).clamp_min(1e-8)),
        Mistake("The numerator is the squared norm ||W_i||^2.",
                lambda W: W.norm(dim=1) / (W.norm(dim=1) ** 2 + interference(W)).clamp_min(1e-8)),
        Mistake(PROJECT_W_J, lambda W: W.norm(dim=1) ** 2 / _cosines_squared(W).sum(-1).clamp_min(1e-8)),
        Mistake(IN_PLACE, _normalise_in_place(feature_dimensionality)),
    ],
    hint="D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 with W^_i = W_i / ||W_i||; the sum includes j = i.")


# ----------------------------------------------------------------------------- exercise 6: classify_phase
def _phase_case(kind: str, threshold: float | None = None):
    def run(impl):
        if kind == "hand-made":
            W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.9, -0.8], [-1.0, 0.05], [0.02, -1.1],
                              [0.2, 0.3], [-0.95, 0.9], [0.5, 0.9], [0.9, 0.5]])[:, None, :]
        elif kind == "2 hidden dims":
            W = torch.tensor([[[0.7, 0.0], [0.7, 0.1]], [[0.1, -0.6], [0.0, -0.6]], [[0.6, -0.6], [0.0, 0.1]],
                              [[0.4, 0.1], [0.3, 0.45]], [[0.4, 0.45], [0.4, 0.3]]])
        else:
            W = torch.randn(20, 1, 2, generator=seeded_generator(40))
        out = impl(W) if threshold is None else impl(W, threshold)
        return _with_inputs(out, W=W)
    return run


def _classify_from(represented):
    first, extra = represented.unbind(-1)
    return torch.where(extra, torch.where(first, 2, 1), 0)


def _classify_in_place(W, t=0.5):
    W.abs_()
    return classify_phase(W, t)


check_classify_phase = Exercise(
    "classify_phase", classify_phase,
    cases=lambda: [Case("10 hand-made 2 -> 1 models (two exactly at the threshold)", _phase_case("hand-made")),
                   Case("models with 2 hidden dims", _phase_case("2 hidden dims")),
                   Case("20 random 2 -> 1 models", _phase_case("random")),
                   Case("threshold 0.3", _phase_case("random", 0.3)),
                   Case("threshold 0.95", _phase_case("hand-made", 0.95))],
    mistakes=[
        Mistake("A feature stored with a negative weight is represented too (that is how antipodal "
                "superposition works): compare norms ||W_i|| (or |w_i|), not signed weights.",
                lambda W, t=0.5: _classify_from(W.sum(1) > t)),
        Mistake("When the extra feature is represented, check feature 0 too: both represented is superposition "
                "(2), only the extra feature is a dedicated dimension (1).",
                lambda W, t=0.5: torch.where(W.norm(dim=1)[:, 1] > t, 1, 0)),
        Mistake("The extra feature is the second one (index 1); feature 0 is the reference with importance 1.",
                lambda W, t=0.5: classify_phase(W.flip(-1), t)),
        Mistake("The codes: 1 = dedicated dimension (only the extra feature represented), 2 = superposition (both).",
                lambda W, t=0.5: torch.where(classify_phase(W, t) == 0, 0, 3 - classify_phase(W, t))),
        Mistake(IN_PLACE, _classify_in_place),
    ],
    hint="represented = W.norm(dim=1) > threshold, shape [n_instances, 2] (use the threshold argument); 0 if "
         "feature 1 is not represented, 2 if both are, else 1. Return an int64 tensor.")


# ----------------------------------------------------------------------------- exercise 7: features_per_neuron
def _neuron_case(kind: str, threshold: float | None = None):
    def run(impl):
        if kind == "hand-made":
            W = torch.tensor([[[1.0, 0.0, 0.0, -0.8], [0.0, 0.9, 0.8, 0.0], [0.2, -0.9, 0.5, 0.5],
                               [0.3, 0.3, 0.31, -0.3]]])
        elif kind == "monosemantic":
            W = torch.eye(4)[None].repeat(2, 1, 1)
        else:
            W = torch.randn(3, 5, 10, generator=seeded_generator(50))
        out = impl(W) if threshold is None else impl(W, threshold)
        return _with_inputs(out, W=W)
    return run


def _count_in_place(W, t=0.3):
    W.clamp_(min=0)
    return features_per_neuron(W, t)


check_features_per_neuron = Exercise(
    "features_per_neuron", features_per_neuron,
    cases=lambda: [Case("a hand-made 4 -> 4 model (weights exactly at the threshold)", _neuron_case("hand-made")),
                   Case("monosemantic neurons W = I (edge case)", _neuron_case("monosemantic")),
                   Case("random 10 -> 5 models", _neuron_case("random")),
                   Case("threshold 0.8", _neuron_case("random", 0.8)),
                   Case("threshold 0.1", _neuron_case("hand-made", 0.1))],
    mistakes=[
        Mistake("Only positive weights make a neuron fire for a feature (features are >= 0 and the ReLU "
                "clips negative input): count W > threshold, not |W| > threshold.",
                lambda W, t=0.3: (W.abs() > t).sum(-1)),
        Mistake("Neurons are the rows of W ([n_instances, n_hidden, n_features]): for each neuron, count "
                "over the feature axis (the last one).", lambda W, t=0.3: (W > t).sum(1)),
        Mistake("Return an integer tensor: the sum of a boolean tensor is already int64 (no .float()).",
                lambda W, t=0.3: (W > t).float().sum(-1)),
        Mistake(IN_PLACE, _count_in_place),
    ],
    hint="(W > threshold).sum(-1) with the threshold argument: shape [n_instances, n_hidden], an integer tensor.")


