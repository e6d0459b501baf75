"""Command line: ``python -m course_lib.sae {train-world,bench}``."""
import argparse
import dataclasses
import json
import sys


def main(argv=None) -> int:
    import torch

    from .bench import BENCH

    parser = argparse.ArgumentParser(prog="python -m course_lib.sae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train-world", help="train, evaluate and save the world-LM SAE(s) into data/sae/ (seeded; "
                   "replaces data/sae/ only when everything succeeded)")
    bench = sub.add_parser("bench", help="tokens/s: from-scratch trainer vs sae-lens SAETrainer")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    bench.add_argument("--steps", type=int, default=BENCH.steps, help=f"timed steps, >= 2 (default {BENCH.steps})")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "train-world":
        from .world import build_world_saes
        build_world_saes()
    else:
        from .bench import benchmark
        try:
            config = dataclasses.replace(BENCH, steps=args.steps)
        except ValueError as err:
            parser.error(str(err))
        print(json.dumps(benchmark(config, device=args.device), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
