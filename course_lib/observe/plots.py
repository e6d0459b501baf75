"""Figures of notebook 00: attention from the last position, the logit lens per stage, the
ablation effects and the activation-patching grid. Each function returns the figure."""


def plot_attention_from_last(pattern, str_tokens, layer: int = 0):
    """One bar chart per head: the attention from the last position to every earlier token.
    ``pattern``: one layer's ``hook_pattern`` of one prompt, shape [head, query, key]."""
    import matplotlib.pyplot as plt

    n_heads = pattern.shape[0]
    fig, axes = plt.subplots(1, n_heads, figsize=(3 * n_heads, 2.6), sharey=True, squeeze=False)
    for head, ax in enumerate(axes[0]):
        ax.bar(range(len(str_tokens)), pattern[head, -1].detach().cpu().numpy())
        ax.set_xticks(range(len(str_tokens)), str_tokens, rotation=60)
        ax.set_title(f"block {layer}, head {head}")
    axes[0, 0].set_ylabel("attention from the last token")
    fig.tight_layout()
    return fig


def plot_logit_lens(p_correct, labels):
    """Heatmap of P(correct answer) under the logit lens: rows = stages (embedding, after each
    block), columns = prompts (``labels``)."""
    import matplotlib.pyplot as plt

    n_stages = p_correct.shape[0]
    fig, ax = plt.subplots(figsize=(11, 3))
    im = ax.imshow(p_correct.detach().cpu().numpy(), vmin=0, vmax=1, cmap="Blues", aspect="auto")
    ax.set_yticks(range(n_stages), ["embed"] + [f"after block {l}" for l in range(n_stages - 1)])
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_title("logit lens: P(correct state) at the last position")
    fig.colorbar(im)
    return fig


def plot_ablation(effects: dict, clean: float):
    """Bar chart of the drop in the metric when each component (``effects``: name → ablated value)
    is ablated."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 2.8))
    ax.bar(list(effects), [clean - v for v in effects.values()])
    ax.set_ylabel("drop in logit difference")
    ax.set_title(f"zero-ablation of each component (clean logit difference {clean:.1f})")
    return fig


def plot_patching(grid, clean_str_tokens, corrupted_str_tokens):
    """The patching score of every (layer, position): rows = before each block, columns = positions
    (labelled ``clean/corrupted`` where the prompts differ)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    im = ax.imshow(grid.detach().cpu().numpy(), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(clean_str_tokens)), [f"{a}/{b}" if a != b else a
                                                 for a, b in zip(clean_str_tokens, corrupted_str_tokens)])
    ax.set_yticks(range(grid.shape[0]), [f"before block {l}" for l in range(grid.shape[0])])
    ax.set_title("patching the residual stream: share of 'Texas' restored")
    fig.colorbar(im)
    return fig
