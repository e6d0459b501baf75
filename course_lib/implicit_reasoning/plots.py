"""Figures of notebook 06: accuracy curves on a log-scale step axis, a live plot that redraws
while a model trains, and the widget that re-runs the live recipe with other settings."""
from __future__ import annotations

COLORS = {"train": "k", "ID": "tab:blue", "IO": "tab:orange", "OI": "tab:green", "OO": "tab:red",
          "ID_blocked": "tab:purple"}


def plot_log(ax, log: dict, splits=("train", "ID", "IO", "OI", "OO"), ls: str = "-", label: str = "", **kw):
    """Accuracy of ``splits`` against the step (log scale) on ``ax``."""
    for split in splits:
        ax.plot(log["step"], log[split], color=COLORS.get(split), ls=ls,
                label=f"{split}{' ' + label if label else ''}", **kw)
    ax.set(xscale="log", xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02))


def mark_thresholds(ax, train95: int | None, id50: int | None):
    """Vertical lines where training passes 95 % and the ID test passes 50 %."""
    for step, color, text, y in ((train95, "k", "train ≥ 95 %", 0.62), (id50, "tab:blue", "ID ≥ 50 %", 0.42)):
        if step is not None:
            ax.axvline(step, color=color, lw=0.8, ls="--")
            ax.text(step, y, f" {text}\n step {step}", color=color, fontsize=7, va="center")


class LivePlot:
    """Two panels: the run being trained (redrawn at every evaluation) and a reference log (the
    shipped full run) beside it. Call :meth:`update` with each log entry (``train(on_log=...)``)."""

    def __init__(self, reference: dict | None = None, reference_title: str = "shipped main run",
                 steps: int | None = None, title: str = "live run", every: float = 1.0):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.log: dict = {}
        self.title, self.steps, self.every, self._last = title, steps, every, 0.0
        self.fig, (self.ax, ref_ax) = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
        if reference is not None:
            plot_log(ref_ax, reference)
            ref_ax.set_title(reference_title)
            ref_ax.legend(fontsize=7, loc="upper left")
        else:
            ref_ax.set_visible(False)
        plt.close(self.fig)  # shown through the display handle only, not again at the end of the cell
        self._draw()
        self.handle = display(self.fig, display_id=True)

    def _draw(self):
        from .measures import first_step_at

        self.ax.clear()
        if self.log:
            plot_log(self.ax, self.log, [s for s in COLORS if s in self.log])
            mark_thresholds(self.ax, first_step_at(self.log, "train", 0.95), first_step_at(self.log, "ID", 0.5))
            self.ax.legend(fontsize=7, loc="upper left")
        self.ax.set(xscale="log", xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02),
                    xlim=(1, self.steps or 10), title=self.title)

    def update(self, entry: dict, final: bool = False) -> None:
        """Add one evaluation (a dict of the newest values) and redraw, at most every ``every`` s."""
        import time

        if entry:
            for k, v in entry.items():
                self.log.setdefault(k, []).append(v)
        if final or time.monotonic() - self._last >= self.every:
            self._draw()
            if self.handle is not None:  # None outside IPython: nothing to redraw into
                self.handle.update(self.fig)
            self._last = time.monotonic()


def live_widget(run_fn, phi: float, weight_decay: float, grokfast_lamb: float, optimizer: str = "adamw"):
    """Sliders for φ, weight decay, the Grokfast gain and the optimizer, and a button that calls
    ``run_fn(phi=..., weight_decay=..., grokfast_lamb=..., optimizer=..., seed=...)`` inside the
    widget's output area (``run_fn`` trains and draws a :class:`LivePlot`)."""
    import ipywidgets as w

    phi_w = w.FloatSlider(value=phi, min=2.0, max=15.0, step=0.2, description="φ")
    wd_w = w.FloatLogSlider(value=weight_decay, base=10, min=-3, max=0.5, step=0.1, description="weight decay")
    gain_w = w.FloatSlider(value=grokfast_lamb, min=0.0, max=5.0, step=0.5, description="Grokfast gain")
    opt_w = w.Dropdown(options=[("AdamW", "adamw"), ("Adam (L2 in the gradient)", "adam"), ("SGD + momentum", "sgd")],
                       value=optimizer, description="optimizer")
    seed_w = w.IntText(value=0, description="seed")
    button = w.Button(description="train from scratch", button_style="primary")
    out = w.Output()

    def go(_):
        out.clear_output()
        with out:
            run_fn(phi=phi_w.value, weight_decay=wd_w.value, grokfast_lamb=gain_w.value, optimizer=opt_w.value,
                   seed=seed_w.value)

    button.on_click(go)

    class LiveTrainer(w.VBox):
        def __repr__(self):  # a fixed text form keeps the notebook's stored output stable
            return "<live trainer: set φ, weight decay, Grokfast gain, optimizer, seed; press 'train from scratch'>"

    return LiveTrainer([w.HBox([phi_w, wd_w, gain_w]), w.HBox([opt_w, seed_w, button]), out])
