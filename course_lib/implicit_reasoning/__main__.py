"""Instructor commands of notebook 06:

``python -m course_lib.implicit_reasoning train-all [RUN ...] [--seed N] [--jobs J]``: rebuild the
shipped runs (all of them, with their seed repeats, when no RUN is named);
``python -m course_lib.implicit_reasoning bench [--seeds 0 1 2] [--retrain-shipped]``: the shipped and
the live recipe side by side (steps to the thresholds, steps per second, wall time)."""
import argparse

from .runs import RUNS, shipped_runs, train_all


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.implicit_reasoning")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train-all", help="train the shipped runs (seeded, one CPU thread each)")
    p.add_argument("runs", nargs="*", choices=[[], *RUNS], help=f"subset of {list(RUNS)} (default: all + repeats)")
    p.add_argument("--seed", type=int, help="train the named runs on another world + training seed (RUN_seedN.json)")
    p.add_argument("--out", help="output folder (default data/implicit_reasoning)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, one CPU thread each (default 1)")
    b = sub.add_parser("bench", help="shipped vs live recipe: steps to the thresholds, steps/s, wall time")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="world + training seeds (default 0 1 2)")
    b.add_argument("--retrain-shipped", action="store_true",
                   help="retrain the shipped recipe too (about 15 min per seed) instead of reading its logs")
    args = parser.parse_args(argv)
    if args.command == "bench":
        from .bench import bench

        bench(args.seeds, args.retrain_shipped)
        return
    if args.seed is not None and not args.runs:
        parser.error("--seed needs the runs to repeat, e.g. train-all main --seed 2")
    train_all([(name, args.seed) for name in args.runs] or shipped_runs(), out_dir=args.out, jobs=args.jobs)


if __name__ == "__main__":  # spawned workers import this module too
    main()
