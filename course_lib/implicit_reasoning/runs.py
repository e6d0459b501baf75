"""The shipped runs in ``data/implicit_reasoning/``: rebuild with

    python -m course_lib.implicit_reasoning train-all [--jobs 2]

(seeded, one CPU thread per run, tqdm progress). Each run stores its accuracy log as JSON; the main
run also stores a small safetensors checkpoint for the mechanism analyses."""
from __future__ import annotations

import dataclasses
import json
import pathlib
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
    # is the main model the smallest that works? the main recipe with fewer layers / a narrower model
    "main_2_layers": (dict(phi=MAIN_PHI), dict(n_layers=2, steps=24000, n_log=40, decay_from=0.75)),
    "main_d32": (dict(phi=MAIN_PHI), dict(d_model=32, d_mlp=128, steps=24000, n_log=40, decay_from=0.75)),
}
# Shipped repeats on another world + training seed (``train-all RUN --seed N``): is a result luck?
REPEAT_SEED = 1
SEED_REPEATS = ("main", "phi_14.4", "no_id_atomic", "blocked_second_hop")


def configs(name: str, seed: int | None = None) -> tuple[WorldConfig, TrainConfig]:
    """World and training configs of a shipped run; ``seed`` replaces both seeds (a repeat)."""
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; expected one of {sorted(RUNS)}")
    w, t = RUNS[name]
    seeded = {} if seed is None else dict(seed=seed)
    return WorldConfig(**{**WORLD, **w, **seeded}), TrainConfig(**{**TRAIN, **t, **seeded})


def run_stem(name: str, seed: int | None = None) -> str:
    """File name (without suffix) of a run: ``main``, or ``main_seed1`` for a repeat."""
    return name if seed is None else f"{name}_seed{seed}"


def run_one(name: str, progress: bool = True, seed: int | None = None, out_dir=None, bar: bool = True) -> dict:
    """Train one shipped run. ``seed`` (world and training) repeats it on another seed, to check
    that a result is not luck: written as ``{name}_seed{seed}.json`` in ``out_dir``, no checkpoint.
    ``progress``: a line per evaluation, and a tqdm bar if ``bar``."""
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    wcfg, tcfg = configs(name, seed)
    stem = run_stem(name, seed)
    out_dir = RUN_DIR if out_dir is None else pathlib.Path(out_dir)
    world = World(wcfg)
    start = time.time()
    def show(entry):  # one line per evaluation, so a long run can be watched
        if progress:
            from tqdm.auto import tqdm
            tqdm.write(f"{stem} step {entry['step']}: " + " ".join(
                f"{k} {v:.3f}" for k, v in entry.items() if k not in ("step", "loss")))

    result = train(world, tcfg, progress=progress and bar, on_log=show)
    record = {"name": stem, "world": dataclasses.asdict(wcfg), "train": dataclasses.asdict(tcfg),
              "sizes": world.summary(), "log": result["log"], "seconds": round(time.time() - start)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=1))
    if stem == "main":
        save_file({k: v.contiguous() for k, v in result["model"].state_dict().items()}, out_dir / "main.safetensors")
    return record


def shipped_runs() -> list[tuple[str, int | None]]:
    """(name, seed) of every shipped file: the runs, then their repeats on ``REPEAT_SEED``."""
    return [(name, None) for name in RUNS] + [(name, REPEAT_SEED) for name in SEED_REPEATS]


def train_all(todo=None, progress: bool = True, out_dir=None, jobs: int = 1) -> None:
    """Train ``todo`` ((name, seed) pairs; default: everything shipped), ``jobs`` at a time,
    each on one CPU thread (with several at once: evaluation lines, no progress bars)."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    todo = todo or shipped_runs()
    def report(rec):
        print(f"{rec['name']}: {rec['seconds']} s, final",
              {k: v[-1] for k, v in rec["log"].items() if k != "loss"}, flush=True)

    if jobs <= 1:
        for name, seed in todo:
            report(run_one(name, progress, seed, out_dir))
        return
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for rec in pool.map(run_one, *zip(*[(n, progress, s, out_dir, False) for n, s in todo])):
            report(rec)


def _missing(path, err=None):
    why = f" ({type(err).__name__}: {err})" if err else ""
    return FileNotFoundError(f"{path} is missing or unreadable{why}. Rebuild the shipped runs with "
                             f"`{REBUILD} --jobs 2` (about 45 minutes on a 2-core CPU), or one run "
                             f"with `{REBUILD} RUN` (a repeat: `{REBUILD} RUN --seed N`).")


def load_run(name: str, seed: int | None = None) -> dict:
    """The stored record of one shipped run (config, sizes, accuracy log); ``seed``: its repeat."""
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; expected one of {sorted(RUNS)}")
    path = RUN_DIR / f"{run_stem(name, seed)}.json"
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
