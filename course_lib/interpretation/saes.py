"""Extra SAEs for notebook 03, next to the shipped one (``data/sae``, layer 2, 1024 latents):
the same recipe (``course_lib.sae.world.WORLD_SAE``) at other widths on the same hook — for
feature splitting — and at other layers — for "does the SAE choice matter?".

    python -m course_lib.interpretation build      # seeded; writes data/interpretation/
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from ..artifacts import read_json, verify, write_checksums
from ..paths import DATA_DIR

EXTRA_DIR = DATA_DIR / "interpretation"
REBUILD = "python -m course_lib.interpretation build"
METRICS_FILE, CARD_FILE = "metrics.json", "README.md"


@dataclasses.dataclass(frozen=True)
class ExtraSAE:
    name: str
    layer: int
    d_sae: int


EXTRA_SAES = (ExtraSAE("layer2_w256", 2, 256), ExtraSAE("layer2_w512", 2, 512), ExtraSAE("layer3_w1024", 3, 1024))
WIDTHS = ("layer2_w256", "layer2_w512", "shipped")  # the splitting family (shipped = layer 2, 1024 latents)


def _spec(name: str) -> ExtraSAE:
    for spec in EXTRA_SAES:
        if spec.name == name:
            return spec
    raise ValueError(f"no extra SAE named {name!r}; the shipped ones: {[s.name for s in EXTRA_SAES]}")


def load_extra_sae(name: str, device=None, root=EXTRA_DIR):
    """One of notebook 03's extra SAEs (checksummed, offline); ``name='shipped'`` gives the course's
    SAE from data/sae."""
    from sae_lens import SAE

    from ..runtime import get_device

    if name == "shipped":
        from ..sae import load_world_sae

        return load_world_sae(2, device=device)
    _spec(name)
    verify(root, REBUILD, "notebook-03 SAEs")
    return SAE.load_from_disk(Path(root) / name, device=str(device or get_device())).eval()


def extra_metrics(root=EXTRA_DIR) -> dict:
    """The figures the build script measured (per SAE)."""
    verify(root, REBUILD, "notebook-03 SAEs")
    return read_json(Path(root) / METRICS_FILE, REBUILD)


def build(root=EXTRA_DIR, specs=EXTRA_SAES, config=None, progress: bool = True) -> dict:
    """Train (seeded, the shipped SAE's recipe ``config``), evaluate and save every SAE in ``specs``
    into a new folder, then swap it in place of ``root`` (only once everything succeeded)."""
    import torch

    from ..runtime import set_seed
    from ..sae.world import WORLD_SAE, eval_tokens, evaluate_world_sae, hook_name, train_world_sae
    from ..world import load_world_model

    config = config or WORLD_SAE
    root = Path(root)
    tmp = root.with_name(root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = load_world_model(device="cpu")
    tokens = eval_tokens(model, n_docs=config.eval_docs, seed=config.eval_seed)
    metrics = {"recipe": dataclasses.asdict(config), "saes": {}}
    for spec in specs:
        start = time.time()
        set_seed(config.seed)
        sae = train_world_sae(model, spec.layer, dataclasses.replace(config, d_sae=spec.d_sae), progress=progress)
        sae.save_model(tmp / spec.name)
        with torch.no_grad():
            m = evaluate_world_sae(model, sae, tokens)
        metrics["saes"][spec.name] = {"hook": hook_name(spec.layer), "layer": spec.layer, "d_sae": spec.d_sae,
                                      "k": config.k, **{k: round(float(v), 4) for k, v in m.items()},
                                      "train_seconds": round(time.time() - start)}
        if progress:
            print(f"{spec.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()))
    (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (tmp / CARD_FILE).write_text(card(metrics))
    write_checksums(tmp)
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return metrics


def card(metrics: dict) -> str:
    r = metrics["recipe"]
    lines = ["# Notebook 03's extra SAEs", "",
             f"Built by `{REBUILD}` (seeded, seed {r['seed']}): TopK SAEs trained with the shipped SAE's recipe",
             f"(`course_lib.sae.world.train_world_sae`: k {r['k']}, {r['steps']} steps of batch {r['batch_size']}, "
             f"lr {r['lr']},",
             f"activations of {r['train_docs']:,} documents), only the width or the layer changed. Load with",
             "`course_lib.interpretation.load_extra_sae(name)`. Evaluated like the shipped SAE, on",
             f"{r['eval_docs']} held-out documents (seed {r['eval_seed']}).", "",
             "| name | hook | d_sae | k | L0 | FVU | CE increase | KL | dead | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in metrics["saes"].items():
        ce = m.get("CE_sae", float("nan")) - m.get("CE_clean", float("nan"))
        lines.append(f"| {name} | `{m['hook']}` | {m['d_sae']} | {m['k']} | {m['L0']:.1f} | {m['FVU']:.3f} | {ce:.4f} | "
                     f"{m['KL']:.4f} | {m['dead']:.3f} | {m['train_seconds']} |")
    return "\n".join(lines) + "\n"
