"""Notebook 01 (toy models of superposition): the checks teach, the paper's results reproduce on
fixed seeds with the notebook's settings, and bad input gets a clear error."""
import math

import pytest
import torch

from check_contract import contract_tests
from course_lib import superposition as sp



def _unit(W):
    return W / W.norm(dim=1, keepdim=True)


def _two_draw_batch(threshold):
    def impl(batch_size, p, generator=None):
        values = torch.rand((batch_size, *p.shape), generator=generator)
        return torch.where(torch.rand((batch_size, *p.shape), generator=generator) < threshold(p), values, 0.0)
    return impl


# (check, reference, [(wrong implementation, expected hint fragment), ...])
CASES = {
    "generate_batch": (sp.check_generate_batch, sp.generate_batch, [
        (_two_draw_batch(lambda p: 1 - p), "probability that a feature is *active*"),
        (lambda n, p, generator=None: (lambda u: torch.where(u < p, u, 0.0))(torch.rand((n, *p.shape), generator=generator)),
         "two separate random numbers"),
        (lambda n, p, generator=None: torch.rand((n, *p.shape), generator=generator)
         * (torch.rand((n, *p.shape[:-1], 1), generator=generator) < p), "independently"),
        (lambda n, p, generator=None: torch.bernoulli(p.expand(n, *p.shape), generator=generator), "not the value 1"),
        (lambda n, p, generator=None: sp.generate_batch(n, p, generator).double(), "dtype"),
    ]),
    "toy_forward": (sp.check_toy_forward, sp.toy_forward, [
        (lambda W, b, x, r=False: torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x)) + b,
         "forget the output ReLU"),
        (lambda W, b, x, r=False: torch.relu(torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x))) + b,
         "The bias goes inside the ReLU"),
        (lambda W, b, x, r=False: sp.toy_forward(W, b, x), "h = ReLU(W x)"),
        (lambda W, b, x, r=False: sp.toy_forward(W, torch.zeros_like(b), x, r), "Add the bias"),
    ]),
    "importance_weighted_loss": (sp.check_importance_weighted_loss, sp.importance_weighted_loss, [
        (lambda x, xh, imp: ((imp * (x - xh)) ** 2).sum(-1).mean(0), "multiplies the squared error, not the error"),
        (lambda x, xh, imp: ((x - xh) ** 2).sum(-1).mean(0), "by its importance"),
        (lambda x, xh, imp: (imp * (x - xh) ** 2).mean(-1).mean(0), "you averaged over features"),
        (lambda x, xh, imp: (imp * (x - xh) ** 2).sum(-1).mean(0).sum(), "one loss per instance"),
    ]),
    "interference": (sp.check_interference, sp.interference, [
        (lambda W: (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).sum(-1).nan_to_num(), "Leave out j = i"),
        (lambda W: (torch.einsum("khi,khj->kij", W, W) ** 2).sum(-1) - W.norm(dim=1) ** 4, "*unit* vector"),
        (lambda W: (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).sum(-1)
         - (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).diagonal(dim1=1, dim2=2), "not nan"),
        (lambda W: (lambda o: o.sum(-1) - o.diagonal(dim1=1, dim2=2))(
            torch.einsum("khi,khj->kij", W / W.norm(dim=1, keepdim=True).clamp_min(1e-8), W)), "Square each overlap"),
    ]),
    "feature_dimensionality": (sp.check_feature_dimensionality, sp.feature_dimensionality, [
        (lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).sum(-1), "not nan"),
        (lambda W: W.norm(dim=1) ** 2 / sp.interference(W).clamp_min(1e-8), "includes j = i"),
        (lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", W, W) ** 2).sum(-1).clamp_min(1e-8),
         "*unit* vector"),
        (lambda W: sp.feature_dimensionality(W) ** 0.5, None),
    ]),
    "classify_phase": (sp.check_classify_phase, sp.classify_phase, [
        (lambda W, t=0.5: (lambda r: torch.where(r[:, 1], torch.where(r[:, 0], 2, 1), 0))(W[:, 0, :] > t),
         "negative weight"),
        (lambda W, t=0.5: (W.norm(dim=1)[:, 1] > t).long(), "check feature 0 too"),
        (lambda W, t=0.5: sp.classify_phase(W[..., [1, 0]], t), "second one (index 1)"),
        (lambda W, t=0.5: sp.classify_phase(W, t).float(), "dtype"),
    ]),
    "features_per_neuron": (sp.check_features_per_neuron, sp.features_per_neuron, [
        (lambda W, t=0.3: (W.abs() > t).sum(-1), "Only positive weights"),
        (lambda W, t=0.3: (W > t).sum(1), "rows of W"),
        (lambda W, t=0.3: (W > t).sum(-1) > 1, "dtype"),
    ]),
}


test_reference_passes, test_mistakes_get_their_hint, test_stub_falls_back = contract_tests(CASES)


def test_a_correct_alternative_generator_passes(capsys):
    def one_draw(batch_size, p, generator=None):  # given u < p, u / p is uniform on [0, 1]
        u = torch.rand((batch_size, *p.shape), generator=generator)
        return torch.where(u < p, u / p, 0.0)

    assert sp.check_generate_batch(one_draw) is one_draw
    assert "✔ generate_batch passed" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the paper's results
# The same calls as the notebook (reference implementations, same seeds and settings).

@pytest.fixture(scope="module")
def model_5_2():
    p = sp.sparsity_sweep(10, p_min=0.05)
    model = sp.train_best_of(n_features=5, n_hidden=2, feature_probability=p, importance=0.9 ** torch.arange(5),
                             restarts=3, steps=1000, seed=0)
    return p, model.W.detach()


def test_dense_5_2_keeps_the_two_most_important_features(model_5_2):
    p, W = model_5_2
    assert p[0] == 1
    norms = sp.feature_norms(W)[0]
    assert (norms[:2] >= 0.9).all(), norms
    assert (norms[2:] <= 0.1).all(), norms
    assert abs(W[0, :, 0] @ W[0, :, 1]) < 0.1, "the two kept features are orthogonal"


def test_sparse_5_2_is_a_pentagon(model_5_2):
    p, W = model_5_2
    assert p[-1] <= 0.05 + 1e-6
    assert (sp.feature_norms(W)[-1] >= 0.9).all()
    angles = sp.neighbour_angles(W[-1])
    assert len(angles) == 5 and ((angles - 72).abs() <= 5).all(), angles


def test_intermediate_5_2_has_antipodal_pairs(model_5_2):
    p, W = model_5_2
    antipodal = []
    for k in range(len(p)):
        kept = sp.feature_norms(W)[k] > 0.5
        if int(kept.sum()) == 4:
            directions = W[k][:, kept] / W[k][:, kept].norm(dim=0)
            cos = directions.T @ directions
            antipodal.append(bool(((cos < -0.95).sum(1) == 1).all()))  # every kept feature has an opposite
    assert sum(antipodal) >= 2, antipodal


@pytest.fixture(scope="module")
def phase_diagram():
    relative, density, importance, p = sp.phase_grid(n_importance=8, n_density=8)
    model = sp.train_best_of(n_features=2, n_hidden=1, feature_probability=p, importance=importance,
                             restarts=4, steps=600, seed=0)
    return relative, density, sp.classify_phase(model.W).view(8, 8)


def test_phase_diagram_shows_all_three_phases(phase_diagram):
    relative, density, phases = phase_diagram
    assert set(phases.flatten().tolist()) == {0, 1, 2}
    dense = phases[:, -1]  # density 1: no superposition, the more important feature gets the dimension
    assert density[-1] == 1
    assert (dense[relative < 1] == 0).all() and (dense[relative > 1] == 1).all(), dense


def test_superposition_only_where_the_features_are_sparse(phase_diagram):
    relative, density, phases = phase_diagram
    superposed = phases == 2
    assert not superposed[:, density > 0.6].any()
    assert superposed[:, density < 0.05].all(), "very sparse features always share the dimension"
    # at the densest column with superposition, only comparably important features superpose
    densest = max(j for j in range(len(density)) if superposed[:, j].any())
    importances = relative[superposed[:, densest]]
    assert density[densest] > 0.3 and importances.min() >= 0.5 and importances.max() <= 2, (density[densest], importances)


def test_phase_diagram_follows_the_closed_form(phase_diagram):
    relative, density, phases = phase_diagram
    theory = sp.theoretical_phase(relative[:, None], density[None, :])
    agree = theory == phases
    assert int(agree.sum()) >= 56, agree
    for r, d in (~agree).nonzero().tolist():  # disagreements lie next to the theoretical boundary
        neighbours = [(r + dr, d + dd) for dr, dd in ((1, 0), (-1, 0), (0, 1), (0, -1))
                      if 0 <= r + dr < 8 and 0 <= d + dd < 8]
        assert any(theory[n] != theory[r, d] for n in neighbours), (r, d)


def test_closed_form_losses():
    losses = sp.ideal_solution_losses(torch.tensor(1.0), torch.tensor(1.0))
    assert torch.allclose(losses, torch.tensor([1 / 12, 1 / 12, 1 / 3]))
    for I in (0.2, 1.0, 3.0):  # the boundary formulas of the notebook
        p_star = 4 * I / (2 + 5 * I) if I <= 1 else 4 / (5 + 2 * I)
        assert sp.theoretical_phase(I, p_star * 0.98) == 2
        assert sp.theoretical_phase(I, min(p_star * 1.02, 1.0)) != 2


@pytest.fixture(scope="module")
def uniform_model():
    p = sp.sparsity_sweep(16, p_min=0.01)
    model = sp.train_best_of(n_features=20, n_hidden=5, feature_probability=p, importance=1.0, steps=600, seed=0)
    return p, model.W.detach()


def test_dimensions_per_feature_hit_sticky_fractions(uniform_model):
    p, W = uniform_model
    D_star = sp.dimensions_per_feature(W)
    assert abs(D_star[0] - 1) < 0.05
    hits = {sp.nearest_sticky_fraction(d)[1] for d in D_star.tolist() if abs(d - sp.nearest_sticky_fraction(d)[0]) < 0.05}
    assert len(hits) >= 2, hits
    assert int(((D_star - 0.5).abs() < 0.02).sum()) >= 2, "a plateau at 1/2 (antipodal pairs)"


def test_relu_hidden_layer_neurons_become_polysemantic():
    p = torch.tensor([0.5, 0.3, 0.1, 0.03])
    model = sp.train_best_of(n_features=10, n_hidden=5, feature_probability=p, importance=0.75 ** torch.arange(10),
                             relu_hidden=True, restarts=4, steps=600, seed=0)
    counts = sp.features_per_neuron(model.W)
    assert counts[0].tolist() == [1] * 5, "dense enough: every neuron monosemantic"
    assert int((counts[-1] > 1).sum()) >= 4, "sparse: most neurons polysemantic"


# ----------------------------------------------------------------------------- measurements and helpers

def test_measurements_on_known_geometries():
    pentagon = torch.stack([torch.cos(torch.arange(5) * 2 * math.pi / 5), torch.sin(torch.arange(5) * 2 * math.pi / 5)])
    W = torch.stack([pentagon, torch.tensor([[1.0, -1.0, 0, 0, 0], [0, 0, 1.0, 0, 0]])])
    assert torch.allclose(sp.feature_dimensionality(W)[0], torch.full((5,), 0.4), atol=1e-5)
    assert torch.allclose(sp.feature_dimensionality(W)[1], torch.tensor([0.5, 0.5, 1, 0, 0]), atol=1e-5)
    assert torch.allclose(sp.interference(W)[1], torch.tensor([1.0, 1, 0, 0, 0]), atol=1e-5)
    assert torch.allclose(sp.dimensions_per_feature(W), torch.tensor([2 / 5, 2 / 3]))
    assert torch.allclose(sp.neighbour_angles(pentagon), torch.full((5,), 72.0), atol=1e-3)
    assert sp.nearest_sticky_fraction(0.41) == (2 / 5, "2/5")


def test_train_best_of_keeps_the_lowest_loss_restart():
    p = torch.tensor([1.0, 0.1])
    best = sp.train_best_of(5, 2, p, 0.9 ** torch.arange(5), restarts=2, steps=20, seed=3)
    both = sp.ToyModel(5, 2, p.repeat(2), 0.9 ** torch.arange(5), seed=3)
    sp.train(both, steps=20, seed=3)
    winner = sp.evaluate(both).view(2, 2).argmin(0)
    for k in range(2):
        assert torch.equal(best.W[k], both.W[2 * winner[k] + k])


def test_geometry_explorer_has_a_fixed_text_form_and_redraws():
    W = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0))
    explorer = sp.geometry_explorer(W, torch.tensor([1.0, 0.3, 0.1]))
    slider, image = explorer.children
    assert repr(explorer) == "<geometry explorer: move the slider to change the sparsity>"
    assert [label for label, _ in slider.options] == ["0.00", "0.70", "0.90"]
    before = image.value
    slider.value = 2
    assert image.value != before and image.value[:4] == b"\x89PNG"


def test_plots_draw(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(0)
    p = torch.tensor([1.0, 0.1])
    figs = [sp.plot_geometry(torch.randn(2, 2, 5, generator=g), p),
            sp.plot_feature_norms(torch.randn(2, 4, 12, generator=g), p),
            sp.plot_dimensionality(torch.randn(2, 3, 9, generator=g), p),
            sp.plot_phase_diagram(torch.randint(0, 3, (3, 4), generator=g), torch.tensor([0.1, 1, 10]),
                                  torch.tensor([0.01, 0.1, 0.5, 1])),
            sp.plot_neurons(torch.randn(2, 5, 10, generator=g), p)]
    assert all(len(fig.axes) > 0 for fig in figs)
    plt.close("all")


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, message", [
    (lambda: sp.generate_batch(8, torch.tensor([0.0, 0.5])), r"\(0, 1\]"),
    (lambda: sp.generate_batch(8, torch.tensor([1.5])), r"\(0, 1\]"),
    (lambda: sp.generate_batch(0, torch.tensor([0.5])), "batch_size must be a positive int"),
    (lambda: sp.generate_batch(8, "dense"), "feature_probability must be a number or a tensor"),
    (lambda: sp.sparsity_sweep(10, p_min=0), "p_min"),
    (lambda: sp.sparsity_sweep(0), "n_instances"),
    (lambda: sp.ToyModel(5, 2, torch.tensor([1.0, 0.5]), importance=torch.ones(4)), "importance must be"),
    (lambda: sp.ToyModel(5, 2, torch.ones(3, 4)), "feature_probability must have shape"),
    (lambda: sp.ToyModel(5, 2, torch.tensor([1.0, 0.0])), r"\(0, 1\]"),
    (lambda: sp.ToyModel(5, 2, torch.tensor([1.0]), importance=-torch.ones(5)), "non-negative"),
    (lambda: sp.ToyModel(5, 0, torch.tensor([1.0])), "n_hidden must be a positive int"),
    (lambda: sp.train_best_of(5, 2, torch.tensor([1.0]), restarts=0), "restarts"),
    (lambda: sp.feature_norms(torch.randn(2, 5)), r"\[n_instances, n_hidden, n_features\]"),
    (lambda: sp.feature_dimensionality([[1.0]]), r"\[n_instances, n_hidden, n_features\]"),
    (lambda: sp.classify_phase(torch.randn(4, 1, 3)), "2-feature models"),
    (lambda: sp.neighbour_angles(torch.randn(3, 5)), r"shape \[2, n_features\]"),
    (lambda: sp.phase_grid(density_range=(0.1, 2.0)), "density_range"),
    (lambda: sp.phase_grid(importance_range=(0.0, 10.0)), "importance_range"),
    (lambda: sp.ideal_solution_losses(1.0, 0.0), r"\(0, 1\]"),
    (lambda: sp.geometry_explorer(torch.randn(2, 3, 5), torch.tensor([1.0, 0.5])), "n_hidden = 2"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
