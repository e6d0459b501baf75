"""Command line: ``OMP_NUM_THREADS=1 python -m course_lib.steering build`` — notebook 04's sweeps (seeded)."""
import argparse
import sys


def main(argv=None) -> int:
    import torch

    from .build import STEERING_DIR, build

    parser = argparse.ArgumentParser(prog="python -m course_lib.steering", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="run the steering sweeps into data/steering/")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "build":
        build(STEERING_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
