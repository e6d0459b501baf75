"""Command line: ``python -m course_lib.circuits train`` — notebook 05's transcoders (seeded)."""
import argparse
import sys


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m course_lib.circuits", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train per-layer transcoders and a cross-layer transcoder (seeds 0 and 1), measure "
                   "their fidelity and save seed 0's into data/circuits/ (replaced only when everything succeeded)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "train":
        from .training import build_circuits
        build_circuits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
