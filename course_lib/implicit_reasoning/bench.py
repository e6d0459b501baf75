"""Benchmark of notebook 06's recipes (issue 17): the shipped main recipe and the live recipe,
side by side, on several seeds: steps to training accuracy >= 95 %, to ID test >= 50 % and
>= 90 %, the accuracies at the end of the schedule, training throughput (steps per second, one
CPU thread) and wall time.

    python -m course_lib.implicit_reasoning bench [--seeds 0 1 2] [--retrain-shipped]

Steps to a threshold do not depend on the machine; seconds do. The shipped recipe's steps come
from its shipped logs (seeds 0 and 1) unless ``--retrain-shipped`` retrains it (about 15 minutes
per seed); its throughput is always measured here."""
from __future__ import annotations

import dataclasses
import statistics
import time

from . import runs
from .measures import first_step_at
from .runs import Run
from .training import make_model, make_optimizer, train
from .world import World

GOAL = {"train": 0.95, "ID50": 0.5, "ID90": 0.9}


def throughput(run: Run, seed: int = 0, steps: int = 150) -> float:
    """Optimizer steps per second of ``run``'s training step (no evaluation), after 10 warm-up steps."""
    import torch

    from .training import answer_only_loss

    world = World(dataclasses.replace(run.world, seed=seed))
    tcfg = dataclasses.replace(run.train, seed=seed)
    model = make_model(world, tcfg)
    opt = make_optimizer(model, tcfg)
    g = torch.Generator().manual_seed(seed)
    toks, ans, pos = world.train_tokens, world.train_answers, world.train_pos
    with torch.enable_grad():
        for i in range(steps + 10):
            if i == 10:
                start = time.perf_counter()
            idx = torch.randint(0, len(toks), (tcfg.batch_size,), generator=g)
            loss = answer_only_loss(model(toks[idx]), ans[idx], pos[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return steps / (time.perf_counter() - start)


def summarize(log: dict) -> dict:
    """Steps at which the goal's thresholds are first logged, and the last logged accuracies."""
    return {"train95": first_step_at(log, "train", GOAL["train"]), "ID50": first_step_at(log, "ID", GOAL["ID50"]),
            "ID90": first_step_at(log, "ID", GOAL["ID90"]), "steps": log["step"][-1],
            **{f"final {s}": log[s][-1] for s in ("train", "ID", "IO", "OO")}}


def train_run(run: Run, seed: int) -> dict:
    """Train ``run`` on ``seed`` (world and training) over its whole schedule, as the notebook
    does; its summary plus the wall time (model creation and evaluations included)."""
    world = World(dataclasses.replace(run.world, seed=seed))
    start = time.perf_counter()
    log = train(world, dataclasses.replace(run.train, seed=seed))["log"]
    return {**summarize(log), "seconds": round(time.perf_counter() - start, 1)}


def _fmt(x):
    return "–" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x))


def bench(seeds=(0, 1, 2), retrain_shipped: bool = False, shipped: Run | None = None, live: Run | None = None) -> dict:
    """Both recipes (default: the shipped main run and ``runs.LIVE``) on ``seeds``; prints a table
    and returns the rows, the throughputs, the median ratios live / shipped and estimated seconds."""
    import torch

    torch.set_num_threads(1)
    shipped = shipped or runs.RUNS["main"]
    live = live or runs.LIVE
    rows: dict[str, list[dict]] = {"shipped": [], "live": []}
    rate = {"shipped": throughput(shipped), "live": throughput(live)}
    for seed in seeds:
        if retrain_shipped:
            rows["shipped"].append({"seed": seed, **train_run(shipped, seed)})
        elif seed in (0, runs.REPEAT_SEED):
            log = runs.load_run("main", None if seed == 0 else seed)["log"]
            rows["shipped"].append({"seed": seed, **summarize(log), "seconds": None})
        rows["live"].append({"seed": seed, **train_run(live, seed)})
    cols = ["seed", "train95", "ID50", "ID90", "steps", "final train", "final ID", "final IO", "final OO", "seconds"]
    print(f"steps per second (training step, 1 thread): shipped {rate['shipped']:.1f}, live {rate['live']:.1f}")
    print("| recipe | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    for name, rs in rows.items():
        for r in rs:
            print(f"| {name} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    ratios = {}
    for key in ("train95", "ID50", "ID90"):
        s = [r[key] for r in rows["shipped"] if r[key] is not None]
        v = [r[key] for r in rows["live"] if r[key] is not None]
        if s and v:
            ratios[key] = statistics.median(v) / statistics.median(s)
    est = {name: statistics.median([r["ID90"] or r["steps"] for r in rs]) / rate[name] for name, rs in rows.items() if rs}
    print("live / shipped, median steps: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
          + f"; steps per second {rate['live'] / rate['shipped']:.2f}")
    print("estimated seconds to ID >= 90 % (training steps only, 1 thread): "
          + ", ".join(f"{name} {v:.0f}" for name, v in est.items()))
    return {"rows": rows, "steps_per_second": rate, "ratios": ratios, "estimated_seconds": est}
