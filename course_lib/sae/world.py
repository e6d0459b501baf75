"""An SAE on the world LM's residual stream: collect activations, train with sae-lens's
``SAETrainer`` (TopK), splice into the model and evaluate (L0, FVU, CE-loss recovered, CE increase,
KL, dead fraction). The shipped SAE lives in data/sae/ (sae-lens save format, checksummed).

Hook point: ``blocks.{layer}.hook_resid_pre`` — the residual stream *entering* block ``layer``;
the default layer 2 is the middle of the 4-layer model (after two attention + MLP blocks).

Positions: the SAE is trained on the activations at every non-pad position, ``<bos>`` included, so
that it can be spliced in everywhere, as sae-lens's ``run_with_saes`` does; in evaluation it (and
zero-ablation) replaces the activation at every position too. Every figure — L0, FVU, dead fraction,
CE, KL — is an average over the *text* positions only: BOS positions are excluded from every
figure (their activation is the same in every document and would flatter FVU), and so is padding;
CE and KL count the predictions made at text positions of a real next token.
"""
from __future__ import annotations

import dataclasses
import json
import operator
from pathlib import Path

from ..artifacts import ArtifactError, building, read_json, verify, write_checksums
from ..paths import DATA_DIR
from ._validate import as_int

SAE_DIR = DATA_DIR / "sae"
REBUILD = "python -m course_lib.sae train-world"
METRICS_FILE, CARD_FILE = "metrics.json", "SAE_CARD.md"
LAYERS = (2,)  # layers with a shipped SAE
BASELINE_KEYS = ("FVU", "CE_sae", "CE_increase", "CE_recovered", "KL")  # reported for the PCA yardstick


@dataclasses.dataclass(frozen=True)
class WorldSAEConfig:
    """A TopK SAE (L0 = k exactly) on the world LM, trained with sae-lens's ``SAETrainer`` on the
    activations of ``train_docs`` documents (seed ``seed``); evaluated on ``eval_docs`` held-out
    documents (seed ``eval_seed`` ≥ 1000, never used for training)."""

    d_sae: int = 1024
    k: int = 16
    lr: float = 1e-3
    batch_size: int = 1024
    steps: int = 3000
    train_docs: int = 40_000
    seed: int = 0
    eval_docs: int = 1500
    eval_seed: int = 1000

    def __post_init__(self):
        for name, minimum in (("d_sae", 1), ("k", 1), ("batch_size", 1), ("steps", 1), ("train_docs", 1),
                              ("seed", 0), ("eval_docs", 1), ("eval_seed", 0)):
            object.__setattr__(self, name, as_int(getattr(self, name), name, minimum))
        if self.k > self.d_sae:
            raise ValueError(f"k must be <= d_sae, got k={self.k}, d_sae={self.d_sae}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


WORLD_SAE = WorldSAEConfig()  # the shipped SAE: 8x expansion of d_model = 128
LIVE_SAE = WorldSAEConfig(d_sae=256, k=16, steps=300, train_docs=3000, batch_size=512)  # notebook 02, seconds


def hook_name(layer: int) -> str:
    """``blocks.{layer}.hook_resid_pre`` (TransformerLens's ``get_act_name``)."""
    from transformer_lens.utilities import get_act_name

    try:
        index = None if isinstance(layer, bool) else operator.index(layer)
    except TypeError:
        index = None
    if index is None or not 0 <= index < 4:
        raise ValueError(f"layer must be an int in 0..3 (the world LM has 4 blocks), got {layer!r}")
    return get_act_name("resid_pre", index)


def sae_folder(layer: int, root=SAE_DIR) -> Path:
    return Path(root) / f"world_layer{int(hook_name(layer).split('.')[1])}_resid_pre"


def load_world_sae(layer: int = 2, device=None, root=SAE_DIR):
    """The shipped sae-lens SAE on ``blocks.{layer}.hook_resid_pre`` of the world LM (checksummed,
    offline). ``sae.cfg.metadata.hook_name`` says where it goes; splice it in with
    :func:`sae_transformer` + ``run_with_saes``."""
    from sae_lens import SAE

    from ..runtime import get_device

    folder = sae_folder(layer, root)
    if int(layer) not in LAYERS:
        raise ValueError(f"no SAE is shipped for layer {layer}; shipped layers: {LAYERS}")
    verify(root, REBUILD, "world SAE")
    _check_world_model(read_json(Path(root) / METRICS_FILE, REBUILD), root)
    return SAE.load_from_disk(folder, device=str(device or get_device())).eval()


def _world_model_sha256() -> str:
    from ..artifacts import sha256
    from ..world.lm import MODEL_FILE, WORLD_DIR

    return sha256(WORLD_DIR / MODEL_FILE)


def _check_world_model(metrics: dict, root) -> None:
    """The SAEs in ``root`` were trained on the world LM now shipped (else they read other activations)."""
    trained_on = metrics.get("world_model_sha256") if isinstance(metrics, dict) else None
    if trained_on is not None and trained_on != _world_model_sha256():
        raise ArtifactError(f"the SAEs in {root} were trained on another world LM than the one in data/world "
                            f"(it was retrained since): rebuild them with `{REBUILD}`")


def world_sae_metrics(root=SAE_DIR) -> dict:
    """The figures measured by the training script (per layer)."""
    verify(root, REBUILD, "world SAE")
    return read_json(Path(root) / METRICS_FILE, REBUILD)


def sae_transformer(model):
    """The world LM as a ``HookedSAETransformer`` (same weights), which can run with SAEs spliced in."""
    from sae_lens import HookedSAETransformer

    out = HookedSAETransformer(model.cfg, tokenizer=model.tokenizer)
    out.load_state_dict(model.state_dict(), strict=False)
    return out.eval()


def eval_tokens(model, n_docs: int = WORLD_SAE.eval_docs, seed: int = WORLD_SAE.eval_seed):
    """Held-out token rows of world text (seed ≥ 1000 is never used for training), in the world
    module's training layout."""
    from ..world.data import world_tokens

    return world_tokens(as_int(n_docs, "n_docs"), as_int(seed, "seed", 0), n_ctx=model.cfg.n_ctx,
                        vocab=model.tokenizer.get_vocab(), with_labels=False).tokens


def text_positions(tokens, tokenizer):
    """Bool [batch, pos]: the positions of text tokens — not ``<bos>``, not padding."""
    return (tokens != tokenizer.pad_token_id) & (tokens != tokenizer.bos_token_id)


def collect_activations(model, tokens, hook: str, batch_size: int = 64, progress: bool = False):
    """Activations at ``hook`` at every non-pad position (``<bos>`` included): [n_tokens, d_model]."""
    import torch
    from tqdm.auto import tqdm

    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(tokens), batch_size), desc=f"activations {hook}", disable=not progress):
            batch = _trimmed(tokens[i:i + batch_size], model).to(model.cfg.device)
            _, cache = model.run_with_cache(batch, names_filter=hook, stop_at_layer=_stop_layer(hook, model))
            out.append(cache[hook][batch != model.tokenizer.pad_token_id].cpu())
    return torch.cat(out)


def _trimmed(batch, model):
    """``batch`` without its trailing all-pad columns (no logit of a text position changes: attention is causal)."""
    used = (batch != model.tokenizer.pad_token_id).any(0).nonzero()
    return batch[:, :int(used.max()) + 1] if len(used) else batch


def _stop_layer(hook: str, model) -> int | None:
    layer = int(hook.split(".")[1])
    return layer + 1 if layer + 1 < model.cfg.n_layers else None


def shuffled_batches(acts, batch_size: int, seed: int = 0):
    """An endless iterator of shuffled batches drawn from an activation buffer (epoch after epoch)."""
    import torch

    if len(acts) < batch_size:
        raise ValueError(f"only {len(acts)} activations for batches of {batch_size}: use more documents")
    g = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(acts), generator=g)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield acts[order[i:i + batch_size]]


def train_world_sae(model, layer: int = 2, config: WorldSAEConfig = WORLD_SAE, progress: bool = True):
    """Train a TopK SAE on ``blocks.{layer}.hook_resid_pre`` with sae-lens's ``SAETrainer`` and
    return it as an inference SAE (hook name and model in its metadata). Gradients are switched on
    inside, whatever the caller's grad mode."""
    import tempfile

    from sae_lens import SAE, TopKTrainingSAEConfig

    from ..world.data import world_tokens
    from .library import train_saelens

    if not isinstance(config, WorldSAEConfig):
        raise TypeError(f"config must be a WorldSAEConfig, got {type(config).__name__}")
    c, hook = config, hook_name(layer)
    tokens = world_tokens(c.train_docs, c.seed, n_ctx=model.cfg.n_ctx, vocab=model.tokenizer.get_vocab(),
                          with_labels=False).tokens
    acts = collect_activations(model, tokens, hook, progress=progress)
    sae_config = TopKTrainingSAEConfig(d_in=model.cfg.d_model, d_sae=c.d_sae, k=c.k, device=str(model.cfg.device))
    trained = train_saelens(shuffled_batches(acts.to(model.cfg.device), c.batch_size, c.seed), sae_config,
                            c.steps, c.batch_size, lr=c.lr, seed=c.seed, progress=progress)
    trained.cfg.metadata.hook_name = hook
    trained.cfg.metadata.model_name = "world"
    trained.cfg.metadata.context_size = model.cfg.n_ctx
    with tempfile.TemporaryDirectory() as tmp:  # round-trip to the inference class (what notebooks load)
        trained.save_inference_model(tmp)
        return SAE.load_from_disk(tmp, device=str(model.cfg.device)).eval()


@dataclasses.dataclass
class PCABaseline:
    """The best rank-``n`` linear reconstruction of the activations at ``hook`` (their top principal
    components), with the SAE interface :func:`evaluate_world_sae` needs: a yardstick for the figures."""

    hook: str
    mean: object  # [d_model]
    components: object  # [n, d_model], orthonormal rows

    @property
    def cfg(self):
        from types import SimpleNamespace

        return SimpleNamespace(d_sae=len(self.components), metadata=SimpleNamespace(hook_name=self.hook))

    def encode(self, x):
        return (x - self.mean) @ self.components.T

    def decode(self, f):
        return f @ self.components + self.mean


def pca_baseline(model, layer: int = 2, n_components: int = 16, n_docs: int = 1000, seed: int = 0) -> PCABaseline:
    """Fit :class:`PCABaseline` on the activations of ``n_docs`` training documents (seed ``seed``)."""
    import torch

    from ..world.data import world_tokens

    hook, n = hook_name(layer), as_int(n_components, "n_components")
    tokens = world_tokens(as_int(n_docs, "n_docs"), as_int(seed, "seed", 0), n_ctx=model.cfg.n_ctx,
                          vocab=model.tokenizer.get_vocab(), with_labels=False).tokens
    acts = collect_activations(model, tokens, hook).double()
    mean = acts.mean(0)
    if not n <= acts.shape[1]:
        raise ValueError(f"n_components must be at most d_model = {acts.shape[1]}, got {n}")
    components = torch.linalg.svd(acts - mean, full_matrices=False).Vh[:n]
    return PCABaseline(hook, mean.float().to(model.cfg.device), components.float().to(model.cfg.device))


def evaluate_world_sae(model, sae, tokens, batch_size: int = 32) -> dict:
    """Splice ``sae`` into the model at every position (no error term) and measure, averaged over
    the text positions (not BOS, not padding; see the module docstring): L0, FVU, dead fraction
    (latents that never fire on these tokens), next-token CE clean / with the SAE / with the activation zero-ablated,
    CE-loss recovered, the CE increase (nats per token) and KL(clean ‖ SAE) per token."""
    import torch

    from .measures import ce_loss_recovered, fvu, kl_divergence, next_token_ce

    hook = sae.cfg.metadata.hook_name
    sums = dict(clean=0.0, sae=0.0, zero=0.0, kl=0.0, n=0, l0=0.0)
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    xs, x_hats = [], []
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            batch = _trimmed(tokens[i:i + batch_size], model).to(model.cfg.device)
            text = text_positions(batch, model.tokenizer)
            predicts = text[:, :-1] & text[:, 1:]  # predictions made at a text position of a text token
            clean_logits, cache = model.run_with_cache(batch, names_filter=hook)
            x = cache[hook]
            f = sae.encode(x)
            x_hat = sae.decode(f)
            sae_logits = model.run_with_hooks(batch, fwd_hooks=[(hook, lambda act, hook: x_hat)])
            zero_logits = model.run_with_hooks(batch, fwd_hooks=[(hook, lambda act, hook: torch.zeros_like(act))])
            for name, logits in (("clean", clean_logits), ("sae", sae_logits), ("zero", zero_logits)):
                ce, n = next_token_ce(logits, batch, predicts)
                sums[name] += ce
            sums["n"] += n
            sums["kl"] += kl_divergence(clean_logits, sae_logits, predicts)
            sums["l0"] += (f[text] > 0).sum().item()
            fired |= (f[text] > 0).any(0).cpu()
            xs.append(x[text].cpu()), x_hats.append(x_hat[text].cpu())
    n_tok = sum(len(x) for x in xs)
    if n_tok == 0 or sums["n"] == 0:
        raise ValueError("no text positions to evaluate on (only <bos> and padding?)")
    ce = {k: sums[k] / sums["n"] for k in ("clean", "sae", "zero")}
    return dict(L0=sums["l0"] / n_tok, FVU=fvu(torch.cat(xs), torch.cat(x_hats)).item(),
                dead=1 - fired.float().mean().item(),
                CE_clean=ce["clean"], CE_sae=ce["sae"], CE_zero_ablation=ce["zero"],
                CE_recovered=float(ce_loss_recovered(ce["clean"], ce["sae"], ce["zero"])),
                CE_increase=ce["sae"] - ce["clean"], KL=sums["kl"] / sums["n"], tokens=n_tok, predictions=sums["n"])


def write_card(root, metrics: dict) -> None:
    c, e = metrics["config"], metrics["eval"]
    lines = ["# World-LM SAEs", "",
             f"Built by `{REBUILD}` (seeded). sae-lens save format (`cfg.json`, `sae_weights.safetensors`);",
             "load with `course_lib.sae.load_world_sae(layer)`. Architecture: TopK (Gao et al. 2024), trained with",
             f"sae-lens `SAETrainer` for {c['steps']} steps of {c['batch_size']} activations (lr {c['lr']}) drawn from",
             f"{c['train_docs']} world documents (seed {c['seed']}).", "",
             "Positions: the SAE is trained on every non-pad position (`<bos>` included), and in evaluation it (and",
             "zero-ablation) replaces the activation at every position, as sae-lens's `run_with_saes` does.",
             "**BOS positions are excluded from every figure** (and so is padding): L0, FVU, dead fraction, CE and KL",
             "are averages over text positions (CE and KL: the predictions made there of a real next token).",
             "", "| layer | hook | d_sae | k | L0 | FVU | dead | CE clean | CE with SAE | CE zero-abl. | "
             "CE increase (nats) | CE recovered | KL (nats) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for layer, m in metrics["layers"].items():
        lines.append(f"| {layer} | `{m['hook']}` | {m['d_sae']} | {m['k']} | {m['L0']:.1f} | {m['FVU']:.3f} | "
                     f"{m['dead']:.3f} | {m['CE_clean']:.4f} | {m['CE_sae']:.4f} | {m['CE_zero_ablation']:.3f} | "
                     f"{m['CE_increase']:.4f} | {m['CE_recovered']:.4f} | {m['KL']:.4f} |")
    lines += ["", "For scale, the best rank-16 linear reconstruction (the top 16 principal components of the activations,",
              "fitted on 1000 training documents) on the same positions:", "",
              "| layer | FVU | CE with it | CE increase (nats) | CE recovered | KL (nats) |", "|---|---|---|---|---|---|"]
    for layer, m in metrics["layers"].items():
        b = m["baseline_pca16"]
        lines.append(f"| {layer} | {b['FVU']:.3f} | {b['CE_sae']:.4f} | {b['CE_increase']:.4f} | "
                     f"{b['CE_recovered']:.4f} | {b['KL']:.4f} |")
    lines += ["", f"Evaluated on {e['docs']} held-out documents (seed {e['seed']}): {m['tokens']} text positions, "
              f"{m['predictions']} next-token predictions.", "",
              "CE-loss recovered barely discriminates between SAEs (it divides by the large damage of zero-ablation),",
              "so read it with the absolute CE increase and the KL divergence from the clean model's predictions.", ""]
    (Path(root) / CARD_FILE).write_text("\n".join(lines))


def build_world_saes(root=SAE_DIR, layers=LAYERS, config: WorldSAEConfig = WORLD_SAE, progress: bool = True) -> dict:
    """Train, evaluate and save the shipped SAEs with metrics, card and checksums. Everything is
    built in a new folder next to ``root``, which replaces ``root`` only when all of it succeeded."""

    from ..runtime import set_seed
    from ..world import load_world_model

    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    model = load_world_model(device="cpu")
    tokens = eval_tokens(model, config.eval_docs, config.eval_seed)
    metrics = dict(config=dataclasses.asdict(config), eval=dict(docs=config.eval_docs, seed=config.eval_seed),
                   world_model_sha256=_world_model_sha256(), layers={})
    with building(root) as new:
        for layer in layers:
            set_seed(config.seed)
            sae = train_world_sae(model, layer, config, progress=progress)
            sae.save_model(sae_folder(layer, new))
            m = evaluate_world_sae(model, sae, tokens)
            metrics["layers"][str(layer)] = dict(hook=hook_name(layer), d_sae=sae.cfg.d_sae, k=sae.cfg.k,
                                                 **{k: round(v, 5) for k, v in m.items()})
            if progress:
                print(f"layer {layer}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()))
        set_seed(config.seed)
        for layer in layers:
            m = evaluate_world_sae(model, pca_baseline(model, layer), tokens)
            metrics["layers"][str(layer)]["baseline_pca16"] = {k: round(m[k], 5) for k in BASELINE_KEYS}
        (new / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        write_card(new, metrics)
        write_checksums(new)
    return metrics
