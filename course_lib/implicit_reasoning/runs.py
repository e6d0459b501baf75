"""The shipped runs in ``data/implicit_reasoning/``: rebuild with

    python -m course_lib.implicit_reasoning train-all

(seeded, one CPU thread, tqdm progress). Each run stores its accuracy log as JSON; the main
run also stores a small safetensors checkpoint for the mechanism analyses."""
from __future__ import annotations

import dataclasses
import json
import time

from ..paths import DATA_DIR
from .training import TrainConfig, make_model, train
from .world import World, WorldConfig

RUN_DIR = DATA_DIR / "implicit_reasoning"
REBUILD = "python -m course_lib.implicit_reasoning train-all"
WORLD = dict(n_entities=50, n_relations=20, relations_per_entity=20, n_test=500, seed=0)
TRAIN = dict(n_layers=4, d_model=64, n_heads=4, d_mlp=256, lr=3e-3, weight_decay=0.5, batch_size=256,
             n_log=24, seed=0)
MAIN_PHI = 5.4
RUNS = {  # name -> (world overrides, train overrides)
    "main": (dict(phi=MAIN_PHI), dict(steps=24000, n_log=40, decay_from=0.75)),
    # Ye et al.'s ablation, at the main phi (does not generalize in this budget) and at phi = 14.4,
    # where "phi_14.4" is the same world with the ID atomic triples (how much later?)
    "no_id_atomic_phi_5.4": (dict(phi=MAIN_PHI, no_id_atomic=True), dict(steps=24000, n_log=40)),
    "phi_9": (dict(phi=9.0), dict(steps=2000)),
    "phi_14.4": (dict(phi=14.4), dict(steps=6000, n_log=30)),
    "no_id_atomic": (dict(phi=14.4, no_id_atomic=True), dict(steps=6000, n_log=30)),
    "blocked_second_hop": (dict(phi=14.4, blocked_second_hop=0.1), dict(steps=4000)),
}


def configs(name: str) -> tuple[WorldConfig, TrainConfig]:
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; expected one of {sorted(RUNS)}")
    w, t = RUNS[name]
    return WorldConfig(**{**WORLD, **w}), TrainConfig(**{**TRAIN, **t})


def run_one(name: str, progress: bool = True) -> dict:
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    wcfg, tcfg = configs(name)
    world = World(wcfg)
    start = time.time()
    def show(entry):  # one line per evaluation, so a long run can be watched
        if progress:
            from tqdm.auto import tqdm
            tqdm.write(f"{name} step {entry['step']}: " + " ".join(
                f"{k} {v:.3f}" for k, v in entry.items() if k not in ("step", "loss")))

    result = train(world, tcfg, progress=progress, on_log=show)
    record = {"name": name, "world": dataclasses.asdict(wcfg), "train": dataclasses.asdict(tcfg),
              "sizes": world.summary(), "log": result["log"], "seconds": round(time.time() - start)}
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / f"{name}.json").write_text(json.dumps(record, indent=1))
    if name == "main":
        save_file({k: v.contiguous() for k, v in result["model"].state_dict().items()}, RUN_DIR / "main.safetensors")
    return record


def train_all(names=None, progress: bool = True) -> None:
    for name in names or RUNS:
        rec = run_one(name, progress)
        print(f"{name}: {rec['seconds']} s, final", {k: v[-1] for k, v in rec["log"].items() if k != "loss"})


def _missing(path, err=None):
    why = f" ({type(err).__name__}: {err})" if err else ""
    return FileNotFoundError(f"{path} is missing or unreadable{why}. Rebuild the shipped runs with "
                             f"`{REBUILD}` (about 46 minutes on one CPU thread).")


def load_run(name: str) -> dict:
    """The stored record of one shipped run (config, sizes, accuracy log)."""
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; expected one of {sorted(RUNS)}")
    path = RUN_DIR / f"{name}.json"
    try:
        rec = json.loads(path.read_text())
        assert "log" in rec and "step" in rec["log"], "no accuracy log"
    except (OSError, ValueError, AssertionError) as err:
        raise _missing(path, err) from err
    return rec


def load_main_model():
    """(model, world) of the shipped main run."""
    from safetensors.torch import load_file

    wcfg, tcfg = configs("main")
    world = World(wcfg)
    model = make_model(world, tcfg)
    path = RUN_DIR / "main.safetensors"
    try:
        model.load_state_dict(load_file(path))
    except Exception as err:  # missing, truncated or not a checkpoint of this model
        raise _missing(path, err) from err
    return model.eval(), world
