"""An SAE on the world LM's residual stream: collect activations, train with sae-lens's
``SAETrainer`` (TopK), splice into a ``HookedSAETransformer`` and evaluate (L0, FVU, CE-loss
recovered, KL, dead fraction). The shipped SAE lives in data/sae/ (sae-lens save format).

Hook point: ``blocks.{layer}.hook_resid_pre`` — the residual stream *entering* block ``layer``;
the default layer 2 is the middle of the 4-layer model (after two attention + MLP blocks).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..paths import DATA_DIR

SAE_DIR = DATA_DIR / "sae"
REBUILD = "python -m course_lib.sae train-world"
CHECKSUMS_FILE, METRICS_FILE, CARD_FILE = "checksums.json", "metrics.json", "SAE_CARD.md"
LAYERS = (2,)  # layers with a shipped SAE
# The shipped SAE: TopK (L0 = k exactly), 8x expansion of d_model = 128.
WORLD_SAE = dict(d_sae=1024, k=16, lr=1e-3, batch_size=1024, steps=3000, train_docs=40_000, seed=0,
                 eval_docs=1500, eval_seed=1000)


class SAEFilesError(RuntimeError):
    """A shipped SAE is missing or corrupted."""


def hook_name(layer: int) -> str:
    if not isinstance(layer, int) or not 0 <= layer < 4:
        raise ValueError(f"layer must be an int in 0..3 (the world LM has 4 blocks), got {layer!r}")
    return f"blocks.{layer}.hook_resid_pre"


def sae_folder(layer: int, root: Path = SAE_DIR) -> Path:
    hook_name(layer)
    return Path(root) / f"world_layer{layer}_resid_pre"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checksums(root: Path = SAE_DIR) -> None:
    files = sorted(p for p in Path(root).rglob("*") if p.is_file() and p.name not in (CHECKSUMS_FILE, CARD_FILE))
    sums = {str(p.relative_to(root)): _sha256(p) for p in files}
    (Path(root) / CHECKSUMS_FILE).write_text(json.dumps(sums, indent=2) + "\n")


def verify(root: Path = SAE_DIR) -> None:
    """Raise :class:`SAEFilesError` naming the rebuild command if a file is missing or corrupted."""
    sums = Path(root) / CHECKSUMS_FILE
    if not sums.exists():
        raise SAEFilesError(f"world SAEs not found in {root} (no {CHECKSUMS_FILE}); rebuild them with `{REBUILD}`")
    for name, digest in json.loads(sums.read_text()).items():
        path = Path(root) / name
        if not path.exists():
            raise SAEFilesError(f"SAE file {path} is missing; rebuild the SAEs with `{REBUILD}`")
        if _sha256(path) != digest:
            raise SAEFilesError(f"SAE file {path} is corrupted (checksum mismatch); rebuild the SAEs with `{REBUILD}`")


def load_world_sae(layer: int = 2, device=None, root: Path = SAE_DIR):
    """The shipped sae-lens SAE on ``blocks.{layer}.hook_resid_pre`` of the world LM (checksummed,
    offline). ``sae.cfg.metadata.hook_name`` says where it goes; splice it in with
    :func:`sae_transformer` + ``run_with_saes``."""
    from sae_lens import SAE

    from ..runtime import get_device

    folder = sae_folder(layer, root)
    if layer not in LAYERS:
        raise ValueError(f"no SAE is shipped for layer {layer}; shipped layers: {LAYERS}")
    verify(root)
    return SAE.load_from_disk(folder, device=str(device or get_device())).eval()


def world_sae_metrics(root: Path = SAE_DIR) -> dict:
    """The figures measured by the training script (per layer)."""
    verify(root)
    return json.loads((Path(root) / METRICS_FILE).read_text())


def sae_transformer(model):
    """The world LM as a ``HookedSAETransformer`` (same weights), which can run with SAEs spliced in."""
    from sae_lens import HookedSAETransformer

    out = HookedSAETransformer(model.cfg, tokenizer=model.tokenizer)
    out.load_state_dict(model.state_dict(), strict=False)
    return out.eval()


def eval_tokens(model, n_docs: int = WORLD_SAE["eval_docs"], seed: int = WORLD_SAE["eval_seed"]):
    """Held-out token rows of world text (seed ≥ 1000 is never used for training)."""
    from ..world.data import world_tokens

    return world_tokens(n_docs, seed, n_ctx=model.cfg.n_ctx, vocab=model.tokenizer.get_vocab(), with_labels=False).tokens


def collect_activations(model, tokens, hook: str, batch_size: int = 64, progress: bool = False):
    """Activations at ``hook`` for every non-pad position: [n_tokens, d_model]."""
    import torch
    from tqdm.auto import tqdm

    pad = model.tokenizer.pad_token_id
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(tokens), batch_size), desc=f"activations {hook}", disable=not progress):
            batch = tokens[i:i + batch_size].to(model.cfg.device)
            _, cache = model.run_with_cache(batch, names_filter=hook, stop_at_layer=_stop_layer(hook, model))
            out.append(cache[hook][batch != pad].cpu())
    return torch.cat(out)


def _stop_layer(hook: str, model) -> int | None:
    layer = int(hook.split(".")[1])
    return layer + 1 if layer + 1 < model.cfg.n_layers else None


def shuffled_batches(acts, batch_size: int, seed: int = 0):
    """An endless iterator of shuffled batches drawn from an activation buffer (epoch after epoch)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(acts), generator=g)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield acts[order[i:i + batch_size]]


def train_world_sae(model, layer: int = 2, d_sae: int = WORLD_SAE["d_sae"], k: int = WORLD_SAE["k"],
                    steps: int = WORLD_SAE["steps"], train_docs: int = WORLD_SAE["train_docs"],
                    batch_size: int = WORLD_SAE["batch_size"], lr: float = WORLD_SAE["lr"],
                    seed: int = WORLD_SAE["seed"], progress: bool = True):
    """Train a TopK SAE on ``blocks.{layer}.hook_resid_pre`` with sae-lens's ``SAETrainer`` and
    return it as an inference SAE (hook name and model in its metadata)."""
    import tempfile

    from sae_lens import SAE

    from ..world.data import world_tokens
    from .library import train_saelens

    hook = hook_name(layer)
    tokens = world_tokens(train_docs, seed, n_ctx=model.cfg.n_ctx, vocab=model.tokenizer.get_vocab(),
                          with_labels=False).tokens
    acts = collect_activations(model, tokens, hook, progress=progress)
    trained = train_saelens(shuffled_batches(acts, batch_size, seed), "topk", model.cfg.d_model, d_sae, steps,
                            batch_size, lr=lr, seed=seed, progress=progress, k=k)
    trained.cfg.metadata.hook_name = hook
    trained.cfg.metadata.model_name = "world"
    trained.cfg.metadata.context_size = model.cfg.n_ctx
    with tempfile.TemporaryDirectory() as tmp:  # round-trip to the inference class (what notebooks load)
        trained.save_inference_model(tmp)
        return SAE.load_from_disk(tmp, device=str(model.cfg.device)).eval()


def _masked_ce(logits, tokens, pad: int):
    """Per-row-summed next-token cross-entropy over non-pad targets, and the number of targets."""
    import torch

    targets = tokens[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), reduction="none")
    mask = (targets != pad).flatten().float()
    return (ce * mask).sum(), mask.sum()


def evaluate_world_sae(model, sae, tokens, batch_size: int = 32) -> dict:
    """Splice ``sae`` into the model (no error term) and measure: L0, FVU, CE loss clean / with the
    SAE / with the activation zero-ablated, CE-loss recovered, KL(clean ‖ SAE) per token, and the
    fraction of latents that never fire on these tokens."""
    import torch

    from .checks import ce_loss_recovered
    from .scratch import fvu

    hook = sae.cfg.metadata.hook_name
    pad = model.tokenizer.pad_token_id
    sums = dict(clean=0.0, sae=0.0, zero=0.0, kl=0.0, n=0.0, l0=0.0, err=0.0)
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    xs, x_hats = [], []
    zero = lambda act, hook: torch.zeros_like(act)  # noqa: E731
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            batch = tokens[i:i + batch_size].to(model.cfg.device)
            keep = batch != pad
            clean_logits, cache = model.run_with_cache(batch, names_filter=hook)
            x = cache[hook]
            f = sae.encode(x)
            x_hat = sae.decode(f)
            sae_logits = model.run_with_hooks(batch, fwd_hooks=[(hook, lambda act, hook: x_hat)])
            zero_logits = model.run_with_hooks(batch, fwd_hooks=[(hook, zero)])
            for name, logits in (("clean", clean_logits), ("sae", sae_logits), ("zero", zero_logits)):
                ce, n = _masked_ce(logits, batch, pad)
                sums[name] += ce.item()
            sums["n"] += n.item()
            logp, logq = clean_logits.log_softmax(-1), sae_logits.log_softmax(-1)
            kl = (logp.exp() * (logp - logq)).sum(-1)
            sums["kl"] += kl[keep].sum().item()
            sums["l0"] += (f[keep] > 0).sum().item()
            fired |= (f[keep] > 0).any(0).cpu()
            xs.append(x[keep].cpu()), x_hats.append(x_hat[keep].cpu())
    n_tok = sum(len(x) for x in xs)
    ce = {k: sums[k] / sums["n"] for k in ("clean", "sae", "zero")}
    return dict(L0=sums["l0"] / n_tok, FVU=fvu(torch.cat(xs), torch.cat(x_hats)).item(),
                CE_clean=ce["clean"], CE_sae=ce["sae"], CE_zero_ablation=ce["zero"],
                CE_recovered=float(ce_loss_recovered(ce["clean"], ce["sae"], ce["zero"])),
                KL=sums["kl"] / n_tok, dead=1 - fired.float().mean().item(), tokens=n_tok)


def write_card(root: Path, metrics: dict) -> None:
    lines = ["# World-LM SAEs", "",
             f"Built by `{REBUILD}` (seeded). sae-lens save format (`cfg.json`, `sae_weights.safetensors`);",
             "load with `course_lib.sae.load_world_sae(layer)`. Architecture: TopK (Gao et al. 2024), trained with",
             "sae-lens `SAETrainer` on world-LM activations at every non-pad position.", "",
             "| layer | hook | d_sae | k | L0 | FVU | CE clean | CE with SAE | CE zero-abl. | CE recovered | KL | dead |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for layer, m in metrics["layers"].items():
        lines.append(f"| {layer} | `{m['hook']}` | {m['d_sae']} | {m['k']} | {m['L0']:.1f} | {m['FVU']:.3f} | "
                     f"{m['CE_clean']:.3f} | {m['CE_sae']:.3f} | {m['CE_zero_ablation']:.3f} | {m['CE_recovered']:.3f} | "
                     f"{m['KL']:.3f} | {m['dead']:.3f} |")
    lines += ["", f"Evaluated on {metrics['eval']['docs']} held-out documents (seed {metrics['eval']['seed']}).", ""]
    (Path(root) / CARD_FILE).write_text("\n".join(lines))


def build_world_saes(root: Path = SAE_DIR, layers=LAYERS, progress: bool = True, **overrides) -> dict:
    """Train, evaluate and save the shipped SAEs; write metrics, card and checksums."""
    import shutil

    from ..runtime import set_seed
    from ..world import load_world_model

    root = Path(root)
    model = load_world_model(device="cpu")
    tokens = eval_tokens(model)
    metrics = dict(config={**WORLD_SAE, **overrides}, eval=dict(docs=WORLD_SAE["eval_docs"], seed=WORLD_SAE["eval_seed"]),
                   layers={})
    for layer in layers:
        set_seed(WORLD_SAE["seed"])
        sae = train_world_sae(model, layer, progress=progress, **overrides)
        folder = sae_folder(layer, root)
        shutil.rmtree(folder, ignore_errors=True)
        sae.save_model(folder)
        m = evaluate_world_sae(model, sae, tokens)
        metrics["layers"][str(layer)] = dict(hook=hook_name(layer), d_sae=sae.cfg.d_sae, k=sae.cfg.k,
                                             **{k: round(v, 4) for k, v in m.items()})
        if progress:
            print(f"layer {layer}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()))
    (root / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    write_card(root, metrics)
    write_checksums(root)
    return metrics
