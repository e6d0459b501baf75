"""Training the shipped transcoders (``python -m course_lib.circuits train``; seeded, one thread).

Both kinds read the same activations: the MLP input (``blocks.L.ln2.hook_normalized``) and output
(``blocks.L.hook_mlp_out``) of every layer at every non-pad position of ``train_docs`` world
documents (``<bos>`` included, so the replacement can run at every position; every *figure*
excludes BOS, see :mod:`.measures`). The loss is each layer's normalized MSE (squared error over
the output's variance, so that every layer counts alike), summed over layers, with Adam.

- per-layer transcoders: one TopK transcoder per MLP (``k`` features per layer and position);
- the cross-layer transcoder: per-layer TopK encoders (the same ``k``: matched L0), each layer's
  features decoding into its own and every later MLP output.

Decoding uses ``embedding_bag`` over the ``k`` active features (the same sums as
:func:`~.transcoders.transcoder_forward` and :func:`~.transcoders.clt_decode`, ~60x fewer
operations); the shipped figures are measured with those reference functions.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from ..artifacts import building, write_checksums
from ..sae._validate import as_int
from .transcoders import CrossLayerTranscoder, Transcoder, TranscoderSet, input_hook, output_hook


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Transcoders of ``d_sae`` features, ``k`` active per layer and position, trained for ``steps``
    Adam steps of ``batch_size`` positions drawn from the activations of ``train_docs`` documents
    (seed ``seed``; the last quarter of the steps decays the learning rate linearly to 0)."""

    d_sae: int = 1024
    k: int = 16
    steps: int = 1500
    batch_size: int = 1024
    lr: float = 2e-3
    train_docs: int = 8000
    seed: int = 0
    k_aux: int = 64  # AuxK: dead features recruited per layer and position
    aux_coefficient: float = 1 / 32
    dead_steps: int = 100  # a feature not fired for this many steps counts as dead (for AuxK)

    def __post_init__(self):
        for name, minimum in (("d_sae", 1), ("k", 1), ("steps", 1), ("batch_size", 1), ("train_docs", 1), ("seed", 0),
                              ("k_aux", 1), ("dead_steps", 1)):
            object.__setattr__(self, name, as_int(getattr(self, name), name, minimum))
        if self.k > self.d_sae:
            raise ValueError(f"k must be <= d_sae, got k={self.k}, d_sae={self.d_sae}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


TRAIN = TrainConfig()


def training_activations(model, config: TrainConfig = TRAIN, progress: bool = False):
    """The MLP inputs and outputs of :func:`collect_mlp_io` on ``config.train_docs`` world documents
    (seed ``config.seed``)."""
    from ..world.data import world_tokens

    tokens = world_tokens(config.train_docs, config.seed, n_ctx=model.cfg.n_ctx, vocab=model.tokenizer.get_vocab(),
                          with_labels=False).tokens
    return collect_mlp_io(model, tokens, progress=progress)


def collect_mlp_io(model, tokens, batch_size: int = 64, progress: bool = False):
    """MLP inputs and outputs of every layer at every non-pad position of ``tokens``:
    two tensors [n_layers, n_positions, d_model] (inputs: ``ln2.hook_normalized``, outputs:
    ``hook_mlp_out``), and the bool [n_positions] mask of BOS positions."""
    from tqdm.auto import tqdm

    n = model.cfg.n_layers
    names = [input_hook(l) for l in range(n)] + [output_hook(l) for l in range(n)]
    xs, ys, bos = [], [], []
    with torch.no_grad():
        for i in tqdm(range(0, len(tokens), batch_size), desc="MLP activations", disable=not progress):
            batch = tokens[i:i + batch_size]
            used = int((batch != model.tokenizer.pad_token_id).sum(1).max())
            batch = batch[:, :used].to(model.cfg.device)
            _, cache = model.run_with_cache(batch, names_filter=names)
            keep = batch != model.tokenizer.pad_token_id
            xs.append(torch.stack([cache[input_hook(l)][keep] for l in range(n)]).cpu())
            ys.append(torch.stack([cache[output_hook(l)][keep] for l in range(n)]).cpu())
            bos.append((batch == model.tokenizer.bos_token_id)[keep].cpu())
    return torch.cat(xs, 1), torch.cat(ys, 1), torch.cat(bos)


def _topk(pre, k: int):
    top = torch.relu(pre).topk(k, dim=-1)
    return top.values, top.indices


def _sparse_decode(values, indices, W):
    """Σ_i values[:, i] · W[indices[:, i]] for W [d_sae, d_out]: the decoder applied to TopK features."""
    return torch.nn.functional.embedding_bag(indices, W, per_sample_weights=values, mode="sum")


def _init(xs, ys, d_sae: int, generator):
    """Encoder: random directions scaled to pre-activations of about unit size. Returns it and each
    layer's mean output norm (the decoder's initial scale)."""
    n, _, d = xs.shape
    W_enc = torch.randn(n, d, d_sae, generator=generator)
    W_enc = W_enc / W_enc.norm(dim=1, keepdim=True) / xs[:, :4096].norm(dim=-1).mean(1)[:, None, None]
    return W_enc, ys[:, :4096].norm(dim=-1).mean(1)


def _batches(n_positions: int, config: TrainConfig, generator):
    while True:
        order = torch.randperm(n_positions, generator=generator)
        for i in range(0, n_positions - config.batch_size + 1, config.batch_size):
            yield order[i:i + config.batch_size]


def _encoders(module):
    if isinstance(module, CrossLayerTranscoder):
        return list(zip(module.W_enc, module.b_enc))
    return [(tc.W_enc, tc.b_enc) for tc in module]


def _decoders(module):
    if isinstance(module, CrossLayerTranscoder):
        return list(module.W_dec)
    return [tc.W_dec for tc in module]


def _sum_outputs(written, module, clt: bool):
    """[n, batch, d]: each layer's output from what every layer's features write (plus the biases)."""
    n = len(written)
    if not clt:
        return torch.stack([w[:, 0] + tc.b_dec for w, tc in zip(written, module)])
    return torch.stack([module.b_dec[j] + sum(written[l][:, j - l] for l in range(j + 1)) for j in range(n)])


def _aux_loss(pres, decs, error, var, dead, k_aux: int, clt: bool):
    """AuxK (Gao et al. 2024): the ``k_aux`` most active *dead* features of each layer (not fired for
    ``dead_steps`` steps) reconstruct the error the live ones leave at the layers they write to, so
    that they receive gradient and come back to life."""
    total = pres[0].new_zeros(())
    n = len(pres)
    for l, (pre, W) in enumerate(zip(pres, decs)):
        if not dead[l].any():
            continue
        vals, ind = _topk(torch.where(dead[l], pre, torch.zeros_like(pre)), min(k_aux, int(dead[l].sum())))
        aux = _sparse_decode(vals, ind, W.flatten(1)).view(len(pre), -1, W.shape[-1])
        targets = range(l, n) if clt else range(l, l + 1)
        for slot, j in enumerate(targets):
            total = total + ((aux[:, slot] - error[j]) ** 2).sum(-1).mean() / var[j]
    return total


def _lr_lambda(steps: int):
    decay_from = steps * 3 // 4
    return lambda step: 1.0 if step < decay_from else max(0.0, (steps - step) / (steps - decay_from))


def normalized_mse(out, target, variance):
    """The transcoder loss: each layer's squared error, summed over ``d_model`` and averaged over
    positions, divided by that layer's output variance (summed over ``d_model``), so every layer
    counts alike. ``out``, ``target``: [..., n_positions, d_model]; ``variance``: [...] → [...]."""
    return ((out - target) ** 2).sum(-1).mean(-1) / variance


def train_transcoders(xs, ys, config: TrainConfig = TRAIN, clt: bool = False, progress: bool = True,
                      loss=normalized_mse):
    """Train per-layer transcoders (a :class:`TranscoderSet`) or, with ``clt=True``, a
    :class:`CrossLayerTranscoder` on MLP inputs ``xs`` and outputs ``ys`` ([n_layers, N, d_model],
    from :func:`collect_mlp_io`) by ``loss`` (:func:`normalized_mse`, or a student's version: the
    training runs through it), summed over layers. Seeded by ``config.seed``; gradients on inside.
    Returns ``(model, seconds)``."""
    from tqdm.auto import tqdm

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if xs.ndim != 3 or xs.shape != ys.shape:
        raise ValueError(f"xs and ys must both be [n_layers, N, d_model], got {tuple(xs.shape)}, {tuple(ys.shape)}")
    c = config
    n, N, d = xs.shape
    g = torch.Generator().manual_seed(c.seed)
    W_enc, scale = _init(xs, ys, c.d_sae, g)
    var = ys.var(1).sum(-1)  # [n]: each layer's output variance (the normalized-MSE denominator)
    if clt:
        module = CrossLayerTranscoder(n, d, c.d_sae, d, c.k)
        decs = [torch.randn(c.d_sae, n - l, d, generator=g) for l in range(n)]
        decs = [w / w.norm(dim=-1, keepdim=True) * 0.1 * scale[l:, None] for l, w in enumerate(decs)]
    else:
        module = TranscoderSet([Transcoder(d, c.d_sae, d, c.k, l) for l in range(n)])
        decs = [torch.randn(c.d_sae, d, generator=g) for _ in range(n)]
        decs = [w / w.norm(dim=-1, keepdim=True) * 0.1 * scale[l] for l, w in enumerate(decs)]
    with torch.no_grad():
        for l in range(n):
            if clt:
                module.W_enc[l] = W_enc[l]
                module.W_dec[l].copy_(decs[l])
            else:
                module[l].W_enc.copy_(W_enc[l])
                module[l].W_dec.copy_(decs[l])
                module[l].b_dec.copy_(ys[l].mean(0))
        if clt:
            module.b_dec.copy_(ys.mean(1))
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=c.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(c.steps))
    batches = _batches(N, c, g)
    start = time.perf_counter()
    bar = tqdm(range(c.steps), desc="CLT" if clt else "per-layer transcoders", disable=not progress)
    last_fired = torch.zeros(n, c.d_sae, dtype=torch.long)
    with torch.enable_grad():
        for step in bar:
            idx = next(batches)
            x, y = xs[:, idx], ys[:, idx]
            pres = [x[l] @ enc + b for l, (enc, b) in enumerate(_encoders(module))]
            tops = [_topk(pre, c.k) for pre in pres]
            for l, (vals, ind) in enumerate(tops):
                last_fired[l, ind[vals > 0]] = step
            decs = _decoders(module)
            # what layer l's features write: [batch, n - l, d] (CLT) or [batch, 1, d] (per-layer)
            written = [_sparse_decode(vals, ind, W.flatten(1)).view(len(idx), -1, d)
                       for (vals, ind), W in zip(tops, decs)]
            out = _sum_outputs(written, module, clt)
            nmse = loss(out, y, var)  # [n]
            total = nmse.sum() + c.aux_coefficient * _aux_loss(pres, decs, y - out.detach(), var,
                                                              step - last_fired > c.dead_steps, c.k_aux, clt)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            if step % 50 == 0 or step == c.steps - 1:
                bar.set_postfix(nmse=" ".join(f"{v:.3f}" for v in nmse.tolist()))
    return module.eval().requires_grad_(False), time.perf_counter() - start


SEEDS = (0, 1)  # seed 0 is shipped; the others measure the spread of every figure


def _tensors(module) -> dict:
    """fp32 weights by name (per-layer set: ``"{layer}.W_enc"``, …; CLT: ``"W_dec.{layer}"``, …)."""
    return {k: v.detach().float().contiguous() for k, v in module.state_dict().items()}


def write_card(root, metrics: dict) -> None:
    from .transcoders import CARD_FILE, REBUILD

    c, e = metrics["config"], metrics["eval"]
    lines = ["# Transcoders of the world LM (notebook 05)", "",
             f"Built by `{REBUILD}` (seeded, one thread; {metrics['seconds']:.0f} s in all on a shared 2-core CPU).",
             "Load with `course_lib.circuits.load_transcoders()` (per-layer) and `load_clt()` (cross-layer); both",
             "files are checked against `checksums.json`.", "",
             "- `transcoders.safetensors`: one TopK transcoder per MLP layer, reading the MLP input",
             "  (`blocks.L.ln2.hook_normalized`) and predicting the MLP output (`blocks.L.hook_mlp_out`); keys `L.W_enc`,",
             "  `L.b_enc`, `L.W_dec`, `L.b_dec`.",
             "- `clt.safetensors`: a cross-layer transcoder: per-layer TopK encoders (`W_enc` [4, 128, d_sae], `b_enc`),",
             "  decoders `W_dec.l` [d_sae, 4 - l, 128] (layer l's features write to MLP outputs l..3), `b_dec` [4, 128].",
             "  TopK at the same k per layer as the per-layer transcoders (matched L0), not the JumpReLU + tanh",
             "  sparsity penalty of Ameisen et al. 2025.", "",
             f"Training: {c['d_sae']} features per layer, k = {c['k']}, {c['steps']} Adam steps (lr {c['lr']}, linear decay "
             f"over the last quarter) of {c['batch_size']} positions, loss = Σ over layers of the normalized MSE, plus",
             f"AuxK (Gao et al. 2024; k_aux {c['k_aux']}, coefficient {c['aux_coefficient']:.4g}, dead after "
             f"{c['dead_steps']} steps without firing). Data: the MLP inputs and outputs at every non-pad position",
             f"(BOS included) of {c['train_docs']} world documents (seed = the training seed), "
             f"{metrics['train_positions']} positions.", "",
             f"Measured on {e['docs']} held-out documents (seed {e['seed']}; {metrics['eval_positions']} text positions, "
             "BOS and padding excluded from every figure). Per layer: each transcoder on the real model's MLP input.",
             "Whole: the replacement model, every MLP replaced at once (each transcoder reads the replacement's own",
             "stream). Shipped: seed 0; the seed-1 figures give the spread.", "",
             "| transcoders | seed | train (s) | normalized MSE by layer | L0 by layer | dead fraction by layer | "
             "error share by layer | top-1 agreement | CE increase (nats) | KL (nats) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, name in (("per_layer", "per-layer"), ("clt", "cross-layer")):
        for seed, m in metrics[kind]["seeds"].items():
            def row(key, fmt):
                return " / ".join(format(layer[key], fmt) for layer in m["layers"])
            lines.append(f"| {name} | {seed} | {m['seconds']:.0f} | {row('nmse', '.4f')} | {row('L0', '.1f')} | "
                         f"{row('dead', '.3f')} | {row('error_share', '.4f')} | {m['top1_agreement']:.4f} | "
                         f"{m['CE_increase']:.4f} | {m['KL']:.4f} |")
    lines += ["", f"The real model's CE on these positions: {m['CE_clean']:.4f} nats per token.", ""]
    (Path(root) / CARD_FILE).write_text("\n".join(lines))


def build_circuits(root=None, config: TrainConfig = TRAIN, seeds=SEEDS, progress: bool = True) -> dict:
    """Train per-layer transcoders and a CLT for every seed in ``seeds``, measure their fidelity on
    held-out text, and save seed ``seeds[0]``'s weights with metrics (every seed's), card and
    checksums. Built in a new folder next to ``root``, which replaces ``root`` only on success."""
    import json

    from safetensors.torch import save_file

    from ..sae.world import _world_model_sha256
    from ..world import load_world_model
    from .measures import EVAL_DOCS, EVAL_SEED, eval_tokens, fidelity
    from .transcoders import CIRCUITS_DIR, CLT_FILE, METRICS_FILE, TRANSCODERS_FILE

    root = Path(root or CIRCUITS_DIR)
    root.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = load_world_model(device="cpu")
    test = eval_tokens(model)
    metrics = dict(config=dataclasses.asdict(config), eval=dict(docs=EVAL_DOCS, seed=EVAL_SEED),
                   world_model_sha256=_world_model_sha256(), per_layer=dict(seeds={}), clt=dict(seeds={}))
    with building(root) as new:
        for seed in seeds:
            c = dataclasses.replace(config, seed=seed)
            xs, ys, _ = training_activations(model, c, progress)
            metrics["train_positions"] = xs.shape[1]
            for kind, clt, file in (("per_layer", False, TRANSCODERS_FILE), ("clt", True, CLT_FILE)):
                module, seconds = train_transcoders(xs, ys, c, clt=clt, progress=progress)
                m = fidelity(model, module, test)
                metrics[kind]["seeds"][str(seed)] = dict(seconds=round(seconds, 1), **m)
                metrics["eval_positions"] = m["positions"]
                if progress:
                    print(f"{kind} seed {seed}: nmse {[round(x['nmse'], 4) for x in m['layers']]}, "
                          f"top-1 {m['top1_agreement']:.4f}, CE increase {m['CE_increase']:.4f}")
                if seed == seeds[0]:
                    metrics[kind]["config"] = dict(n_layers=model.cfg.n_layers, d_model=model.cfg.d_model,
                                                   d_sae=c.d_sae, k=c.k, seed=seed)
                    save_file(_tensors(module), new / file)
        metrics["seconds"] = round(time.perf_counter() - start, 1)
        (new / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        write_card(new, metrics)
        write_checksums(new)
    return metrics
