"""The world LM: a small TransformerLens ``HookedTransformer`` trained on the world's text.

    python -m course_lib.world train      # seeded, reproducible; writes data/world/
    course_lib.load_world_model()         # loads it offline (checksummed)
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

from ..paths import DATA_DIR

WORLD_DIR = DATA_DIR / "world"
REBUILD = "python -m course_lib.world train"
MODEL_FILE, TOKENIZER_DIR, CARD_FILE, METRICS_FILE, CHECKSUMS_FILE = (
    "model.safetensors", "tokenizer", "MODEL_CARD.md", "metrics.json", "checksums.json")
ARCHITECTURE = dict(n_layers=4, d_model=128, n_heads=4, d_head=32, d_mlp=512, n_ctx=96, act_fn="gelu",
                    normalization_type="LN", positional_embedding_type="standard")
TRAINING = dict(seed=0, steps=4000, batch_size=32, lr=2e-3, warmup=200, weight_decay=0.01, docs=150_000)
# Same architecture family, at GPT-2 small's size (for the offline structural test of the scale-up switch).
GPT2_SMALL = dict(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, n_ctx=1024, d_vocab=50257,
                  act_fn="gelu_new", normalization_type="LN", positional_embedding_type="standard")


class WorldModelError(RuntimeError):
    """The shipped world LM is missing or corrupted."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked_files(folder: Path) -> list[Path]:
    return [folder / MODEL_FILE, *sorted((folder / TOKENIZER_DIR).glob("*.json"))]


def write_checksums(folder: Path) -> None:
    sums = {str(p.relative_to(folder)): _sha256(p) for p in _checked_files(folder)}
    (folder / CHECKSUMS_FILE).write_text(json.dumps(sums, indent=2) + "\n")


def verify(folder: Path = WORLD_DIR) -> None:
    """Raise :class:`WorldModelError` naming the rebuild command if a file is missing or corrupted."""
    sums_path = folder / CHECKSUMS_FILE
    if not sums_path.exists():
        raise WorldModelError(f"world LM not found in {folder} (no {CHECKSUMS_FILE}); rebuild it with `{REBUILD}`")
    for name, digest in json.loads(sums_path.read_text()).items():
        path = folder / name
        if not path.exists():
            raise WorldModelError(f"world LM file {path} is missing; rebuild it with `{REBUILD}`")
        if _sha256(path) != digest:
            raise WorldModelError(f"world LM file {path} is corrupted (checksum mismatch); rebuild it with `{REBUILD}`")


def model_config(d_vocab: int, device: str = "cpu", **overrides):
    from transformer_lens import HookedTransformerConfig

    return HookedTransformerConfig(**{**ARCHITECTURE, **overrides}, d_vocab=d_vocab, seed=TRAINING["seed"],
                                   device=device)


def load_world_model(name: str = "world", device=None, folder: Path = WORLD_DIR, pretrained: bool = True):
    """The course's LM as a ``HookedTransformer`` with its tokenizer (offline, checksummed).

    ``name='gpt2-small'`` is the scale-up switch: GPT-2 small through TransformerLens (needs the
    internet, never used on the default path); with ``pretrained=False`` it is a random-initialised
    model of the same architecture (offline, for structural tests).
    """
    from transformer_lens import HookedTransformer

    from ..runtime import get_device
    from .tokenizer import load_tokenizer

    device = str(device or get_device())
    if name == "gpt2-small":
        if pretrained:
            return HookedTransformer.from_pretrained("gpt2-small", device=device)
        from transformer_lens import HookedTransformerConfig

        return HookedTransformer(HookedTransformerConfig(**GPT2_SMALL, device=device))
    if name != "world":
        raise ValueError(f"name must be 'world' or 'gpt2-small', got {name!r}")
    verify(folder)
    from safetensors.torch import load_file

    tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
    model = HookedTransformer(model_config(len(tokenizer), device), tokenizer=tokenizer)
    model.load_state_dict(load_file(folder / MODEL_FILE, device=device), strict=False)
    return model.eval()


def world_metrics(folder: Path = WORLD_DIR) -> dict:
    """The measured quality figures written by the training script."""
    verify(folder)
    return json.loads((folder / METRICS_FILE).read_text())


# ------------------------------------------------------------------------------ training
def _lr(step: int) -> float:
    warm, total = TRAINING["warmup"], TRAINING["steps"]
    if step < warm:
        return (step + 1) / warm
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))


def train(folder: Path = WORLD_DIR, steps: int | None = None, progress: bool = True) -> dict:
    """Train the world LM from scratch (seeded) and write weights, tokenizer, metrics and card."""
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformer_lens import HookedTransformer
    from ..runtime import set_seed
    from . import evaluate
    from .data import world_tokens
    from .tokenizer import save_tokenizer

    steps = steps or TRAINING["steps"]
    set_seed(TRAINING["seed"])
    folder.mkdir(parents=True, exist_ok=True)
    hf = save_tokenizer(folder / TOKENIZER_DIR)
    vocab = hf.get_vocab()
    data = world_tokens(TRAINING["docs"], seed=TRAINING["seed"], n_ctx=ARCHITECTURE["n_ctx"], vocab=vocab,
                        with_labels=False)
    model = HookedTransformer(model_config(len(vocab)), tokenizer=hf)
    opt = torch.optim.AdamW(model.parameters(), lr=TRAINING["lr"], weight_decay=TRAINING["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr)
    pad, batches, start, losses = vocab["<pad>"], data.batches(TRAINING["batch_size"], seed=1, epochs=100), time.time(), []
    bar = tqdm(range(steps), desc="training the world LM", disable=not progress)
    for step in bar:
        tokens = next(batches)
        logits = model(tokens)
        targets = tokens[:, 1:].masked_fill(tokens[:, 1:] == pad, -100)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith(("IGNORE", ".mask"))}
    save_file(state, folder / MODEL_FILE)
    metrics = evaluate.all_metrics(model)
    metrics["training"] = {**TRAINING, "steps": steps, "tokens_seen": steps * TRAINING["batch_size"] * ARCHITECTURE["n_ctx"],
                           "final_train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
                           "wall_seconds": round(time.time() - start)}
    metrics["loss_curve"] = [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4) for i in range(0, len(losses), 50)]
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    write_checksums(folder)
    (folder / CARD_FILE).write_text(model_card(metrics))
    return metrics


def model_card(m: dict) -> str:
    t, e = m["training"], m["entropy"]
    return f"""# The world LM

A {ARCHITECTURE['n_layers']}-layer TransformerLens `HookedTransformer` (d_model {ARCHITECTURE['d_model']},
{ARCHITECTURE['n_heads']} heads, d_mlp {ARCHITECTURE['d_mlp']}, context {ARCHITECTURE['n_ctx']} tokens, vocabulary
{m['d_vocab']} words) trained from scratch on text sampled from the course's synthetic world
(`course_lib.world`). Rebuild: `{REBUILD}` (seeded; {t['wall_seconds']} s on this machine's CPU).

## Training
- {t['steps']} steps of AdamW (lr {t['lr']}, warm-up {t['warmup']}, cosine decay, weight decay {t['weight_decay']}),
  batch {t['batch_size']} × {ARCHITECTURE['n_ctx']} tokens: {t['tokens_seen']:,} tokens seen,
  from {t['docs']:,} sampled documents (seed {t['seed']}).
- final training loss {t['final_train_loss']} nats/token.

## Measured quality
| measure | value |
|---|---|
| held-out LM loss (nats/token) | {e['lm_loss']} |
| true entropy of the text (nats/token) | {e['true_entropy']} |
| excess over the true entropy (goal ≤ 0.05) | {e['excess']} |
| one-hop fact recall, held-out phrasings | {m['one_hop_recall']['overall']:.1%} |
| two-hop completion, trained cities | {m['two_hop']['trained']:.1%} |
| two-hop completion, held-out cities (never seen as two-hop) | {m['two_hop']['heldout']:.1%} |

Per relation recall: {json.dumps(m['one_hop_recall']['per_relation'])}
"""
