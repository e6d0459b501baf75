"""An ipywidgets explorer of the 2-D geometries: a slider over sparsity that redraws the chosen
instance. The picture is rendered at the size it is displayed at (no stretching, no blur)."""
from __future__ import annotations

import io

import torch

from ._inputs import as_tensor, check_W
from .plots import draw_features_2d

DPI = 100
FIGSIZE = (7.2, 3.3)  # inches: the picture is 720 x 330 pixels and is displayed at exactly that size


def _render_instance(W: torch.Tensor, S: float) -> bytes:
    """PNG of one 2-D instance: the feature directions and W^T W side by side."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE)
    draw_features_2d(left, W, f"S = {S:.2f}: columns $W_i$")
    right.imshow((W.T @ W).numpy(), cmap="RdBu_r", vmin=-1.3, vmax=1.3)
    right.set(xticks=range(W.shape[1]), yticks=range(W.shape[1]), title="$W^T W$")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)  # no bbox="tight": the size stays FIGSIZE * DPI
    plt.close(fig)
    return buffer.getvalue()


def geometry_explorer(W: torch.Tensor, feature_probability: torch.Tensor):
    """An ipywidgets slider over sparsity that redraws the 2-D geometry of the chosen instance.

    The picture is an ``Image`` widget (no printed output) rendered at the size it is shown at, and
    the widget's text form is fixed, so a notebook that displays it stores the same output on every run."""
    import ipywidgets as widgets

    W = check_W(W)
    if W.shape[1] != 2:
        raise ValueError(f"geometry_explorer draws 2-D hidden spaces: W must have n_hidden = 2, got {W.shape[1]}")
    p = as_tensor(feature_probability, "feature_probability").reshape(W.shape[0], -1)[:, 0]
    slider = widgets.SelectionSlider(options=[(f"{1 - v:.2f}", k) for k, v in enumerate(p.tolist())],
                                     value=0, description="sparsity S", continuous_update=False)
    width = round(FIGSIZE[0] * DPI)  # displayed at the rendered size; narrower screens shrink it, keeping its shape
    image = widgets.Image(value=_render_instance(W[0], 1 - p[0].item()), format="png",
                          layout=widgets.Layout(width=f"{width}px", max_width="100%", height="auto"))

    def redraw(change):
        image.value = _render_instance(W[change["new"]], 1 - p[change["new"]].item())

    slider.observe(redraw, names="value")

    class GeometryExplorer(widgets.VBox):
        def __repr__(self):  # a fixed text form keeps the notebook's stored output stable
            return "<geometry explorer: move the slider to change the sparsity>"

    return GeometryExplorer([slider, image])

