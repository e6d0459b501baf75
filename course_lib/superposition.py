"""Toy models of superposition (Elhage et al., 2022): reference implementations, measurements,
plots and the exercise checks of notebook 01.

The toy model squeezes ``n_features`` sparse features into ``n_hidden`` dimensions and reads them
back with the same (tied) weights::

    h  = W x                 (or h = ReLU(W x): the "ReLU hidden layer" variant)
    x' = ReLU(W^T h + b)

Many models ("instances", e.g. one per sparsity) are trained at once: ``W`` has shape
``[n_instances, n_hidden, n_features]`` and a batch has shape ``[batch, n_instances, n_features]``.
Feature i's direction is the column ``W[k, :, i]`` of instance k, written W_i below.
"""
from __future__ import annotations

import contextlib
import io
import math

import torch
from torch import nn

from .checking import Case, Exercise, Mistake, seeded_generator

STICKY_FRACTIONS = {1.0: "1", 3 / 4: "3/4", 2 / 3: "2/3", 1 / 2: "1/2", 2 / 5: "2/5", 3 / 8: "3/8"}
PHASES = ("not represented", "dedicated dimension", "superposition")
PHASE_COLOURS = ("#d9d9d9", "#4a90d9", "#1a1a1a")
EPS = 1e-8


# ----------------------------------------------------------------------------- input checks

def _as_tensor(value, name: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a tensor of numbers, got {type(value).__name__}") from err


def _check_probability(p: torch.Tensor, name: str = "feature_probability") -> None:
    if p.numel() == 0:
        raise ValueError(f"{name} is empty")
    if not bool(((p > 0) & (p <= 1)).all()):
        raise ValueError(f"{name} must lie in (0, 1]: it is the probability p = 1 - S that a feature is "
                         f"active; got values from {p.min().item():.3g} to {p.max().item():.3g}")


def _check_W(W) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or W.dim() != 3:
        got = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(f"W must be a tensor of shape [n_instances, n_hidden, n_features], got {got}")
    return W.detach()


def _positive_int(value, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


# ----------------------------------------------------------------------------- data, model, loss

def sparsity_sweep(n_instances: int, p_min: float = 0.05) -> torch.Tensor:
    """Feature probabilities p = 1 - S from 1 (dense) down to ``p_min``, evenly spaced on a log scale
    (the paper's ``20 ** -linspace(0, 1, n)`` for p_min = 0.05)."""
    _positive_int(n_instances, "n_instances")
    if not 0 < p_min <= 1:
        raise ValueError(f"p_min must lie in (0, 1], got {p_min!r}")
    return p_min ** torch.linspace(0, 1, n_instances)


def generate_batch(batch_size: int, feature_probability, generator=None) -> torch.Tensor:
    """Sparse features of shape ``[batch_size, *feature_probability.shape]``: each one independently
    uniform in [0, 1] with probability p, else 0."""
    _positive_int(batch_size, "batch_size")
    p = _as_tensor(feature_probability, "feature_probability")
    _check_probability(p)
    values = torch.rand((batch_size, *p.shape), generator=generator)
    active = torch.rand((batch_size, *p.shape), generator=generator) < p
    return torch.where(active, values, 0.0)


def toy_forward(W: torch.Tensor, b_final: torch.Tensor, x: torch.Tensor, relu_hidden: bool = False) -> torch.Tensor:
    """x' = ReLU(W^T h + b) with h = W x (or ReLU(W x)), for every instance at once.

    W [n_instances, n_hidden, n_features], b_final [n_instances, n_features],
    x [batch, n_instances, n_features] -> x' [batch, n_instances, n_features]."""
    h = torch.einsum("ihf,bif->bih", W, x)
    if relu_hidden:
        h = torch.relu(h)
    return torch.relu(torch.einsum("ihf,bih->bif", W, h) + b_final)


def importance_weighted_loss(x: torch.Tensor, x_hat: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """One loss per instance, shape [n_instances]: sum_i I_i (x_i - x'_i)^2, averaged over the batch."""
    return (importance * (x - x_hat) ** 2).sum(-1).mean(0)


class ToyModel(nn.Module):
    """``n_instances`` toy models side by side, one per row of ``feature_probability``.

    feature_probability: p = 1 - S, shape [n_instances] or [n_instances, n_features].
    importance: I, a number, shape [n_features] or [n_instances, n_features].
    """

    def __init__(self, n_features: int, n_hidden: int, feature_probability, importance=1.0,
                 relu_hidden: bool = False, seed: int = 0):
        super().__init__()
        _positive_int(n_features, "n_features")
        _positive_int(n_hidden, "n_hidden")
        p = _as_tensor(feature_probability, "feature_probability")
        if p.dim() not in (1, 2) or (p.dim() == 2 and p.shape[1] != n_features):
            raise ValueError(f"feature_probability must have shape [n_instances] or [n_instances, "
                             f"n_features={n_features}], got {tuple(p.shape)}")
        if p.dim() == 1:
            p = p[:, None].expand(-1, n_features)
        _check_probability(p)
        n_instances = p.shape[0]
        imp = _as_tensor(importance, "importance")
        if imp.shape not in ((), (n_features,), (n_instances, n_features)):
            raise ValueError(f"importance must be a number or have shape [n_features={n_features}] or "
                             f"[n_instances={n_instances}, n_features={n_features}], got {tuple(imp.shape)}")
        if bool((imp < 0).any()):
            raise ValueError("importance must be non-negative")
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances
        self.relu_hidden = relu_hidden
        self.register_buffer("feature_probability", p.clone())
        self.register_buffer("importance", imp.expand(n_instances, n_features).clone())
        g = torch.Generator().manual_seed(seed)
        std = math.sqrt(2 / (n_hidden + n_features))  # Xavier-normal, per instance
        self.W = nn.Parameter(torch.randn(n_instances, n_hidden, n_features, generator=g) * std)
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return toy_forward(self.W, self.b_final, x, self.relu_hidden)


@contextlib.contextmanager
def _one_thread():
    """Toy models train fastest on one CPU thread, and the results then do not depend on how many
    cores the machine has (a multi-threaded sum may add numbers in another order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train(model: ToyModel, steps: int = 1000, lr: float = 5e-2, batch_size: int = 1024, seed: int = 0,
          forward_fn=toy_forward, loss_fn=importance_weighted_loss, batch_fn=generate_batch) -> list[float]:
    """Train all instances at once with AdamW, the learning rate decaying to 0 on a cosine.
    Returns the summed loss every 100 steps. ``forward_fn``, ``loss_fn`` and ``batch_fn`` let you
    plug in your own implementations.

    (The paper uses lr 1e-3 for 10,000 steps; a 50x larger rate with a decay reaches the same
    geometries in 600-1,000 steps, which keeps the notebook within a minute on a laptop CPU.)"""
    _positive_int(steps, "steps")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    history = []
    with _one_thread():
        for step in range(steps):
            x = batch_fn(batch_size, model.feature_probability, generator=g)
            loss = loss_fn(x, forward_fn(model.W, model.b_final, x, model.relu_hidden), model.importance).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            if step % 100 == 0 or step == steps - 1:
                history.append(loss.item())
    return history


@torch.no_grad()
def evaluate(model: ToyModel, batch_size: int = 8192, seed: int = 12345) -> torch.Tensor:
    """Loss of every instance on a fresh seeded batch, shape [n_instances]."""
    with _one_thread():
        x = generate_batch(batch_size, model.feature_probability, torch.Generator().manual_seed(seed))
        return importance_weighted_loss(x, model(x), model.importance)


def train_best_of(n_features: int, n_hidden: int, feature_probability, importance=1.0, relu_hidden: bool = False,
                  restarts: int = 1, seed: int = 0, **train_kwargs) -> ToyModel:
    """Train ``restarts`` copies of every instance from different initialisations (all in one batched
    model) and keep, per instance, the copy with the lowest loss: gradient descent sometimes settles
    in a worse geometry. Returns a ToyModel with one instance per row of ``feature_probability``."""
    _positive_int(restarts, "restarts")
    p = _as_tensor(feature_probability, "feature_probability")
    imp = _as_tensor(importance, "importance")
    n = p.shape[0] if p.dim() else 0
    if n == 0:
        raise ValueError("feature_probability must have shape [n_instances] or [n_instances, n_features]")

    def tile(t):  # restart r of instance k becomes instance r * n + k
        return t.repeat(restarts, *[1] * (t.dim() - 1))

    per_instance_importance = imp.dim() == 2
    model = ToyModel(n_features, n_hidden, tile(p), tile(imp) if per_instance_importance else imp, relu_hidden, seed)
    train(model, seed=seed, **train_kwargs)
    best = evaluate(model).view(restarts, n).argmin(0) * n + torch.arange(n)
    kept = ToyModel(n_features, n_hidden, p, imp, relu_hidden, seed)
    with torch.no_grad():
        kept.W.copy_(model.W[best])
        kept.b_final.copy_(model.b_final[best])
    return kept


# ----------------------------------------------------------------------------- measurements

def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """||W_i|| of every feature, shape [n_instances, n_features]: ~1 if represented, ~0 if not."""
    return _check_W(W).norm(dim=1)


def _overlaps(W: torch.Tensor) -> torch.Tensor:
    """(W^_i . W_j)^2 for all pairs, shape [n_instances, n_features (i), n_features (j)]."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(EPS)
    return torch.einsum("khi,khj->kij", W_hat, W) ** 2


def interference(W: torch.Tensor) -> torch.Tensor:
    """How much the other features project onto feature i's direction: sum_{j != i} (W^_i . W_j)^2,
    shape [n_instances, n_features]. 0 for a feature with a dimension of its own."""
    overlaps = _overlaps(_check_W(W))
    return overlaps.sum(-1) - overlaps.diagonal(dim1=1, dim2=2)


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2, shape [n_instances, n_features]; 0 for an unlearnt feature."""
    W = _check_W(W)
    return W.norm(dim=1) ** 2 / _overlaps(W).sum(-1).clamp_min(EPS)


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """D* = m / ||W||_F^2, hidden dimensions per learnt feature, shape [n_instances]."""
    W = _check_W(W)
    return W.shape[1] / (W ** 2).sum((1, 2)).clamp_min(EPS)


def nearest_sticky_fraction(value: float) -> tuple[float, str]:
    """The sticky fraction closest to ``value``, as (fraction, label)."""
    return min(STICKY_FRACTIONS.items(), key=lambda item: abs(item[0] - value))


def neighbour_angles(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """For one instance with a 2-D hidden space, ``W`` [2, n_features]: the angles in degrees between
    neighbouring represented features (||W_i|| > threshold), going once round the circle."""
    if not isinstance(W, torch.Tensor) or W.shape[0] != 2 or W.dim() != 2:
        got = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(f"W must be one instance with a 2-D hidden space, shape [2, n_features], got {got}")
    W = W.detach()
    keep = W.norm(dim=0) > threshold
    angles = torch.sort(torch.rad2deg(torch.atan2(W[1, keep], W[0, keep]))).values
    if angles.numel() < 2:
        return torch.empty(0)
    return torch.diff(torch.cat([angles, angles[:1] + 360]))


def classify_phase(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """What happened to the second ("extra") feature of a 2-feature model? One code per instance:
    0 = not represented, 1 = dedicated dimension (feature 0 dropped), 2 = superposition (both kept)."""
    W = _check_W(W)
    if W.shape[2] != 2:
        raise ValueError(f"classify_phase needs 2-feature models, W of shape [n_instances, n_hidden, 2]; got {tuple(W.shape)}")
    first, extra = (W.norm(dim=1) > threshold).unbind(-1)
    return torch.where(extra, torch.where(first, 2, 1), 0)


def features_per_neuron(W: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """For ReLU-hidden models: how many features excite each neuron (weight > threshold),
    shape [n_instances, n_hidden]. 1 = monosemantic, 2+ = polysemantic."""
    return (_check_W(W) > threshold).sum(-1)


def phase_grid(n_importance: int = 8, n_density: int = 8, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    """The 2 -> 1 sweep of the paper's phase diagram: feature 0 has importance 1, feature 1 (the
    "extra" feature) a relative importance from ``importance_range``; both share the density 1 - S.
    Returns (relative_importances, densities, importance [N, 2], feature_probability [N, 2]) with
    N = n_importance * n_density, importance-major (reshape a result to [n_importance, n_density])."""
    _positive_int(n_importance, "n_importance")
    _positive_int(n_density, "n_density")
    if not 0 < importance_range[0] < importance_range[1]:
        raise ValueError(f"importance_range must be (low, high) with 0 < low < high, got {importance_range}")
    if not 0 < density_range[0] < density_range[1] <= 1:
        raise ValueError(f"density_range must be (low, high) with 0 < low < high <= 1, got {density_range}")
    relative = torch.logspace(math.log10(importance_range[0]), math.log10(importance_range[1]), n_importance)
    density = torch.logspace(math.log10(density_range[0]), math.log10(density_range[1]), n_density)
    r, d = torch.meshgrid(relative, density, indexing="ij")
    importance = torch.stack([torch.ones(r.numel()), r.flatten()], -1)
    return relative, density, importance, torch.stack([d.flatten(), d.flatten()], -1)


def ideal_solution_losses(relative_importance, density) -> torch.Tensor:
    """Closed-form expected loss of the three ideal 2 -> 1 solutions, stacked on a last axis in the
    order of PHASES: W = [1, 0] (the extra feature is replaced by its mean p/2 through the bias),
    W = [0, 1] (feature 0 replaced by its mean), W = [1, -1] with b = 0 (antipodal: exact unless both
    features are active, then each output misses min(x_0, x_1), and E[min^2] = 1/6)."""
    I = _as_tensor(relative_importance, "relative_importance")
    p = _as_tensor(density, "density")
    _check_probability(p, "density")
    variance = p / 3 - p ** 2 / 4  # Var(x) of one feature
    return torch.stack(torch.broadcast_tensors(I * variance, variance, p ** 2 * (1 + I) / 6), -1)


def theoretical_phase(relative_importance, density) -> torch.Tensor:
    """The ideal solution with the lowest loss (codes as in classify_phase). Superposition wins when
    p < 4 I / (2 + 5 I) for I <= 1, and when p < 4 / (5 + 2 I) for I >= 1."""
    return ideal_solution_losses(relative_importance, density).argmin(-1)


# ----------------------------------------------------------------------------- plots

def _feature_colours(n: int):
    import matplotlib.pyplot as plt

    return plt.cm.viridis([0.9 * i / max(n - 1, 1) for i in range(n)])


def draw_features_2d(ax, W: torch.Tensor, title: str | None = None) -> None:
    """Draw the columns of one 2-D instance ``W`` [2, n_features] as arrows from the origin
    (colour: feature index, dark = most important)."""
    from matplotlib.patches import Circle

    W = W.detach()
    colours = _feature_colours(W.shape[1])
    ax.add_patch(Circle((0, 0), 1, fill=False, lw=0.5, color="0.8"))
    for i in range(W.shape[1]):
        x, y = W[:, i].tolist()
        ax.plot([0, x], [0, y], color=colours[i], lw=1.5)
        ax.scatter([x], [y], color=colours[i], s=14, zorder=3)
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), xticks=[], yticks=[], aspect="equal")
    if title:
        ax.set_title(title, fontsize=9)


def plot_geometry(W: torch.Tensor, feature_probability: torch.Tensor):
    """Top row: the feature directions W_i in the 2-D hidden space; bottom row: W^T W (diagonal =
    ||W_i||^2, off-diagonal = interference between features), one column per sparsity."""
    import matplotlib.pyplot as plt

    W = _check_W(W)
    p = _as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    n = W.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.45 * n, 3.2), squeeze=False)
    for k in range(n):
        draw_features_2d(axes[0, k], W[k], f"S = {1 - p[k]:.2f}")
        axes[1, k].imshow((W[k].T @ W[k]).numpy(), cmap="RdBu_r", vmin=-1.3, vmax=1.3)
        axes[1, k].set(xticks=[], yticks=[])
    axes[0, 0].set_ylabel("columns $W_i$")
    axes[1, 0].set_ylabel("$W^T W$")
    fig.suptitle("5 features in 2 dimensions: dense (left) to sparse (right)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_feature_norms(W: torch.Tensor, feature_probability: torch.Tensor):
    """One panel per sparsity: a bar per feature (most important on top) whose length is ||W_i||
    and whose colour is its interference sum_{j != i} (W^_i . W_j)^2 (dark: a dimension of its own)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    W = _check_W(W)
    p = _as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    norms, interf = feature_norms(W), interference(W)
    n, n_features = W.shape[0], W.shape[2]
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n + 1, 0.05 * n_features + 2), sharey=True, squeeze=False)
    cmap, scale = plt.cm.plasma, Normalize(0, 1)
    for k, ax in enumerate(axes[0]):
        ax.barh(range(n_features), norms[k].numpy(), color=cmap(scale(interf[k].clamp(max=1).numpy())), height=0.85)
        represented = int((norms[k] > 0.5).sum())
        ax.set_title(f"S = {1 - p[k]:.2f}\n{represented} of {n_features} features", fontsize=9)
        ax.set_xlim(0, 1.3)
        ax.set_xlabel("$||W_i||$")
    axes[0, 0].invert_yaxis()
    axes[0, 0].set_ylabel("feature i (importance decreases downwards)")
    fig.colorbar(plt.cm.ScalarMappable(scale, cmap), ax=axes[0].tolist(), label="interference (clipped at 1)")
    return fig


def plot_dimensionality(W: torch.Tensor, feature_probability: torch.Tensor, threshold: float = 0.5):
    """D* = m / ||W||_F^2 (line) and the feature dimensionalities D_i of the represented features
    (dots) against 1 / (1 - S), with the sticky fractions as dashed lines."""
    import matplotlib.pyplot as plt

    W = _check_W(W)
    p = _as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    x = (1 / p).numpy()
    D_i, represented = feature_dimensionality(W), feature_norms(W) > threshold
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for fraction in STICKY_FRACTIONS:
        ax.axhline(fraction, color="0.6", ls="--", lw=0.8)
    right = ax.twinx()  # label the sticky fractions on the right-hand axis
    right.set(ylim=(0, 1.1), yticks=list(STICKY_FRACTIONS), yticklabels=list(STICKY_FRACTIONS.values()))
    right.tick_params(labelsize=8, length=0)
    for k in range(W.shape[0]):
        dots = D_i[k][represented[k]].numpy()
        ax.scatter([x[k]] * len(dots), dots, s=12, alpha=0.35, color="tab:blue", lw=0,
                   label="$D_i$ of a represented feature" if k == 0 else None)
    ax.plot(x, dimensions_per_feature(W).numpy(), "o-", color="black", ms=4, label="$D^* = m / ||W||_F^2$")
    ax.set(xscale="log", xlabel="1 / (1 - S)   (sparser to the right)", ylabel="dimensions per feature",
           ylim=(0, 1.1))
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def plot_phase_diagram(phases: torch.Tensor, relative_importance: torch.Tensor, density: torch.Tensor):
    """The phase diagram: what happens to the extra feature, for every (density, relative importance)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    def edges(centres):  # cell edges halfway (in log) between the centres
        logs = centres.log()
        mid = (logs[1:] + logs[:-1]) / 2
        return torch.cat([2 * logs[:1] - mid[:1], mid, 2 * logs[-1:] - mid[-1:]]).exp().numpy()

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.pcolormesh(edges(density), edges(relative_importance), phases.numpy(), cmap=ListedColormap(PHASE_COLOURS),
                  vmin=-0.5, vmax=2.5)
    I = torch.logspace(math.log10(relative_importance.min()) - 0.2, math.log10(relative_importance.max()) + 0.2, 200)
    boundary = torch.where(I <= 1, 4 * I / (2 + 5 * I), 4 / (5 + 2 * I))  # closed form, see theoretical_phase
    ax.plot(boundary.numpy(), I.numpy(), color="tab:red", ls="--", lw=1.5, label="closed-form boundary")
    ax.plot([4 / 7, 1.5], [1, 1], color="tab:red", ls="--", lw=1.5)
    ax.set(xscale="log", yscale="log", xlabel="feature density 1 - S (both features)",
           ylabel="relative importance of the extra feature",
           xlim=tuple(edges(density)[[0, -1]]), ylim=tuple(edges(relative_importance)[[0, -1]]))
    handles = [Patch(color=c, label=name) for c, name in zip(PHASE_COLOURS, PHASES)]
    ax.legend(handles=handles + ax.get_lines()[:1], loc="upper left", bbox_to_anchor=(1.02, 1), title="extra feature")
    ax.set_title("2 features in 1 dimension", fontsize=10)
    fig.tight_layout()
    return fig


def plot_neurons(W: torch.Tensor, feature_probability: torch.Tensor, threshold: float = 0.3):
    """ReLU-hidden models: per neuron, its weights from each feature stacked as coloured bars
    (positive weights excite the neuron, up; negative ones inhibit it, down)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    W = _check_W(W)
    p = _as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    n, n_hidden, n_features = W.shape
    colours = _feature_colours(n_features)
    counts = features_per_neuron(W, threshold)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 1.4, 3.3), sharey=True, squeeze=False)
    for k, ax in enumerate(axes[0]):
        up, down = torch.zeros(n_hidden), torch.zeros(n_hidden)
        for i in range(n_features):
            w = W[k, :, i]
            ax.bar(range(n_hidden), w.clamp(min=0).numpy(), bottom=up.numpy(), color=colours[i], width=0.7)
            ax.bar(range(n_hidden), w.clamp(max=0).numpy(), bottom=down.numpy(), color=colours[i], width=0.7, alpha=0.35)
            up, down = up + w.clamp(min=0), down + w.clamp(max=0)
        poly = int((counts[k] > 1).sum())
        ax.set_title(f"1 - S = {p[k]:.2f}\n{poly} of {n_hidden} neurons polysemantic", fontsize=9)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(range(n_hidden))
        ax.set_xlabel("neuron")
    axes[0, 0].set_ylabel("weight from each feature")
    axes[0, -1].legend(handles=[Patch(color=colours[i], label=f"feature {i}") for i in range(n_features)],
                       loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    return fig


def _render_instance(W: torch.Tensor, S: float) -> bytes:
    """PNG of one 2-D instance: the feature directions and W^T W side by side."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    draw_features_2d(left, W, f"S = {S:.2f}: columns $W_i$")
    right.imshow((W.T @ W).numpy(), cmap="RdBu_r", vmin=-1.3, vmax=1.3)
    right.set(xticks=range(W.shape[1]), yticks=range(W.shape[1]), title="$W^T W$")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def geometry_explorer(W: torch.Tensor, feature_probability: torch.Tensor):
    """An ipywidgets slider over sparsity that redraws the 2-D geometry of the chosen instance.

    The picture is an ``Image`` widget (no printed output), and the widget's text form is fixed, so
    a notebook that displays it stores the same output on every run."""
    import ipywidgets as widgets

    W = _check_W(W)
    if W.shape[1] != 2:
        raise ValueError(f"geometry_explorer draws 2-D hidden spaces: W must have n_hidden = 2, got {W.shape[1]}")
    p = _as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    slider = widgets.SelectionSlider(options=[(f"{1 - v:.2f}", k) for k, v in enumerate(p.tolist())],
                                     value=0, description="sparsity S", continuous_update=False)
    image = widgets.Image(value=_render_instance(W[0], 1 - p[0].item()), format="png")

    def redraw(change):
        image.value = _render_instance(W[change["new"]], 1 - p[change["new"]].item())

    slider.observe(redraw, names="value")

    class GeometryExplorer(widgets.VBox):
        def __repr__(self):  # a fixed text form keeps the notebook's stored output stable
            return "<geometry explorer: move the slider to change the sparsity>"

    return GeometryExplorer([slider, image])


# ----------------------------------------------------------------------------- exercise checks

def _randn(*shape, g):
    return torch.randn(*shape, generator=g)


# Exercise: generate_batch. A random batch cannot be compared number by number (your random draws
# may come in another order), so each case compares statistics that any correct generator meets.

def _batch_case(seed: int, batch_size: int, p):
    def run(impl):
        prob = torch.as_tensor(p, dtype=torch.float32)
        x = impl(batch_size, prob, generator=seeded_generator(seed))
        keys = ["type", "shape", "dtype", "all values in [0, 1]", "fraction of active features = p (within 0.02)",
                "active values spread uniformly over [0, 1]", "active values are not all equal",
                "features switched on independently"]
        summary = dict.fromkeys(keys)
        summary["type"] = type(x).__name__
        if not isinstance(x, torch.Tensor):
            return summary
        summary["shape"], summary["dtype"] = tuple(x.shape), str(x.dtype)
        if summary["shape"] != (batch_size, *prob.shape):
            return summary
        active = x > 0
        summary["all values in [0, 1]"] = bool(((x >= 0) & (x <= 1)).all())
        if batch_size >= 1000:  # enough samples for the statistics
            values = x[active]
            summary[keys[4]] = bool((active.float().mean(0) - prob).abs().max() < 0.02)
            summary[keys[5]] = bool(values.numel() > 0 and abs(values.mean().item() - 0.5) < 0.05
                                    and values.max() > 0.9 and values.min() < 0.1)
            summary[keys[6]] = bool(values.unique().numel() > 100)
            both = (active[..., 0] & active[..., 1]).float().mean(0)
            summary[keys[7]] = bool((both - prob[..., 0] * prob[..., 1]).abs().max() < 0.02)
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


def _binary_features(batch_size, p, generator=None):
    return (torch.rand((batch_size, *p.shape), generator=generator) < p).float()


check_generate_batch = Exercise(
    "generate_batch", generate_batch,
    cases=lambda: [Case("p = 0.3 for 4 instances x 5 features", _batch_case(0, 20000, torch.full((4, 5), 0.3))),
                   Case("a sweep p = 1 ... 0.05 (one p per instance)",
                        _batch_case(1, 20000, sparsity_sweep(6)[:, None].expand(6, 3))),
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
        Mistake("An active feature takes a value uniform in [0, 1] (torch.rand), not the value 1.", _binary_features),
    ],
    hint="Shape [batch_size, *feature_probability.shape]: torch.rand for the values, and a second "
         "torch.rand(...) < feature_probability for which features are active (pass generator= to both).")


# Exercise: toy_forward

def _forward_case(seed: int, n_instances: int, n_hidden: int, n_features: int, relu_hidden: bool,
                  zero_W: bool = False, batch: int = 6):
    def run(impl):
        g = seeded_generator(seed)
        W = _randn(n_instances, n_hidden, n_features, g=g) * (0 if zero_W else 1)
        b = _randn(n_instances, n_features, g=g) * 0.5
        x = generate_batch(batch, torch.full((n_instances, n_features), 0.6), g)
        return impl(W, b, x, relu_hidden)
    return run


check_toy_forward = Exercise(
    "toy_forward", toy_forward,
    cases=lambda: [Case("3 instances, 5 features -> 2 dims", _forward_case(10, 3, 2, 5, False)),
                   Case("4 instances, 8 features -> 3 dims", _forward_case(11, 4, 3, 8, False)),
                   Case("ReLU hidden layer (relu_hidden=True)", _forward_case(12, 3, 4, 6, True)),
                   Case("a single instance (edge case)", _forward_case(13, 1, 2, 5, False)),
                   Case("W = 0: the output is ReLU(b) (edge case)", _forward_case(14, 2, 2, 5, False, zero_W=True))],
    mistakes=[
        Mistake("Did you forget the output ReLU? x' = ReLU(W^T h + b).",
                lambda W, b, x, r=False: torch.einsum("ihf,bih->bif", W, _hidden(W, x, r)) + b),
        Mistake("Add the bias b_final before the output ReLU.",
                lambda W, b, x, r=False: torch.relu(torch.einsum("ihf,bih->bif", W, _hidden(W, x, r)))),
        Mistake("The bias goes inside the ReLU: ReLU(W^T h + b), not ReLU(W^T h) + b.",
                lambda W, b, x, r=False: torch.relu(torch.einsum("ihf,bih->bif", W, _hidden(W, x, r))) + b),
        Mistake("With relu_hidden=True the hidden layer is h = ReLU(W x): apply the ReLU before reading back.",
                lambda W, b, x, r=False: toy_forward(W, b, x, False)),
        Mistake("Keep the instances apart: each instance has its own W, so contract over features only "
                "(einsum 'ihf,bif->bih'), never over the instance axis.",
                lambda W, b, x, r=False: torch.relu(torch.einsum(
                    "ihf,bih->bif", W, torch.einsum("ihf,bjf->bih", W, x)) + b)),
    ],
    hint="h = einsum('ihf,bif->bih', W, x) (ReLU it if relu_hidden), then ReLU(einsum('ihf,bih->bif', W, h) + b_final).")


def _hidden(W, x, relu_hidden):
    h = torch.einsum("ihf,bif->bih", W, x)
    return torch.relu(h) if relu_hidden else h


# Exercise: importance_weighted_loss

def _loss_case(seed: int, n_instances: int, n_features: int, importance_per_instance: bool,
               perfect: bool = False, unit_importance: bool = False, batch: int = 7):
    def run(impl):
        g = seeded_generator(seed)
        x = torch.rand(batch, n_instances, n_features, generator=g)
        x_hat = x.clone() if perfect else torch.rand(batch, n_instances, n_features, generator=g)
        shape = (n_instances, n_features) if importance_per_instance else (n_features,)
        importance = torch.ones(shape) if unit_importance else 0.2 + torch.rand(shape, generator=g)
        return impl(x, x_hat, importance)
    return run


check_importance_weighted_loss = Exercise(
    "importance_weighted_loss", importance_weighted_loss,
    cases=lambda: [Case("importance per feature [5]", _loss_case(20, 3, 5, False)),
                   Case("importance per instance and feature [4, 6]", _loss_case(21, 4, 6, True)),
                   Case("a single instance", _loss_case(22, 1, 5, False)),
                   Case("all importances 1: plain squared error", _loss_case(23, 2, 5, False, unit_importance=True)),
                   Case("perfect reconstruction: loss 0 (edge case)", _loss_case(24, 3, 5, False, perfect=True))],
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
    ],
    hint="(importance * (x - x_hat) ** 2).sum(-1).mean(0): sum over features, mean over the batch.")


# Exercises: interference and feature_dimensionality (shared cases)

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
    return lambda impl: impl(make())


_W_CASES = [("random W [3, 2, 5]", "random", 30), ("random W [2, 4, 7]", "random, 4 dims", 31),
            ("orthogonal features (edge case)", "orthogonal", 0), ("an antipodal pair (edge case)", "antipodal", 0),
            ("a pentagon (edge case)", "pentagon", 0), ("an unlearnt feature W_i = 0 (edge case)", "zero column", 32)]


def _unit(W):
    return W / W.norm(dim=1, keepdim=True)


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
                lambda W: _wrong_axis_interference(W)),
    ],
    hint="W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8); overlaps = einsum('khi,khj->kij', W_hat, W) ** 2; "
         "sum over j and subtract the diagonal.")


def _wrong_axis_interference(W):
    W_hat = W / W.norm(dim=2, keepdim=True).clamp_min(EPS)
    overlaps = torch.einsum("khi,khj->kij", W_hat, W) ** 2
    return overlaps.sum(-1) - overlaps.diagonal(dim1=1, dim2=2)


check_feature_dimensionality = Exercise(
    "feature_dimensionality", feature_dimensionality,
    cases=lambda: [Case(name, _W_case(kind, seed)) for name, kind, seed in _W_CASES],
    mistakes=[
        Mistake("An unlearnt feature (W_i = 0) has D_i = 0, not nan: guard the divisions "
                "(e.g. clamp ||W_i|| and the denominator at 1e-8).",
                lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", _unit(W), W) ** 2).sum(-1)),
        Mistake("The sum over j includes j = i: a feature with a dimension of its own has D_i = 1 "
                "(its own term (W^_i . W_i)^2 = ||W_i||^2 in the denominator).",
                lambda W: W.norm(dim=1) ** 2 / interference(W).clamp_min(EPS)),
        Mistake("Project onto the *unit* vector W^_i = W_i / ||W_i|| in the denominator, not onto W_i.",
                lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", W, W) ** 2).sum(-1).clamp_min(EPS)),
        Mistake("The numerator is the squared norm ||W_i||^2.",
                lambda W: W.norm(dim=1) / (W.norm(dim=1) ** 2 + interference(W)).clamp_min(EPS)),
    ],
    hint="D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 with W^_i = W_i / ||W_i||; the sum includes j = i.")


# Exercise: classify_phase

def _phase_case(kind: str):
    def run(impl):
        if kind == "hand-made":
            W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.9, -0.8], [-1.0, 0.05],
                              [0.02, -1.1], [0.2, 0.3], [-0.95, 0.9]])[:, None, :]
        elif kind == "2 hidden dims":
            W = torch.tensor([[[0.7, 0.0], [0.7, 0.1]], [[0.1, -0.6], [0.0, -0.6]], [[0.6, -0.6], [0.0, 0.1]]])
        else:
            W = torch.randn(20, 1, 2, generator=seeded_generator(40))
        return impl(W)
    return run


check_classify_phase = Exercise(
    "classify_phase", classify_phase,
    cases=lambda: [Case("8 hand-made 2 -> 1 models", _phase_case("hand-made")),
                   Case("models with 2 hidden dims", _phase_case("2 hidden dims")),
                   Case("20 random 2 -> 1 models", _phase_case("random"))],
    mistakes=[
        Mistake("A feature stored with a negative weight is represented too (that is how antipodal "
                "superposition works): compare norms ||W_i|| (or |w_i|), not signed weights.",
                lambda W, t=0.5: _classify_from(W.sum(1) > t)),
        Mistake("When the extra feature is represented, check feature 0 too: both represented is superposition "
                "(2), only the extra feature is a dedicated dimension (1).",
                lambda W, t=0.5: torch.where(W.norm(dim=1)[:, 1] > t, 1, 0)),
        Mistake("The extra feature is the second one (index 1); feature 0 is the reference with importance 1.",
                lambda W, t=0.5: classify_phase(W.flip(-1), t)),
    ],
    hint="represented = W.norm(dim=1) > threshold, shape [n_instances, 2]; 0 if feature 1 is not "
         "represented, 2 if both are, else 1. Return an int64 tensor.")


def _classify_from(represented):
    first, extra = represented.unbind(-1)
    return torch.where(extra, torch.where(first, 2, 1), 0)


# Exercise: features_per_neuron

def _neuron_case(kind: str):
    def run(impl):
        if kind == "hand-made":
            W = torch.tensor([[[1.0, 0.0, 0.0, -0.8], [0.0, 0.9, 0.8, 0.0], [0.2, -0.9, 0.5, 0.5]]])
        elif kind == "monosemantic":
            W = torch.eye(4)[None].repeat(2, 1, 1)
        else:
            W = torch.randn(3, 5, 10, generator=seeded_generator(50))
        return impl(W)
    return run


check_features_per_neuron = Exercise(
    "features_per_neuron", features_per_neuron,
    cases=lambda: [Case("a hand-made 4 -> 3 model", _neuron_case("hand-made")),
                   Case("monosemantic neurons W = I (edge case)", _neuron_case("monosemantic")),
                   Case("random 10 -> 5 models", _neuron_case("random"))],
    mistakes=[
        Mistake("Only positive weights make a neuron fire for a feature (features are >= 0 and the ReLU "
                "clips negative input): count W > threshold, not |W| > threshold.",
                lambda W, t=0.3: (W.abs() > t).sum(-1)),
        Mistake("Neurons are the rows of W ([n_instances, n_hidden, n_features]): for each neuron, count "
                "over the feature axis (the last one).", lambda W, t=0.3: (W > t).sum(1)),
    ],
    hint="(W > threshold).sum(-1): shape [n_instances, n_hidden], an integer tensor.")
