"""Command line: ``python -m course_lib.sae {train-world,bench}``."""
import argparse
import json
import sys


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m course_lib.sae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train-world", help="train, evaluate and save the world-LM SAE(s) into data/sae/ (seeded)")
    bench = sub.add_parser("bench", help="tokens/s: from-scratch trainer vs sae-lens SAETrainer")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    bench.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "train-world":
        from .world import build_world_saes
        build_world_saes()
    else:
        from .bench import BENCH, benchmark
        print(json.dumps(benchmark(steps=args.steps or BENCH["steps"], device=args.device), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
