"""Command line: ``python -m course_lib.interpretation build`` — notebook 03's extra SAEs (seeded)."""
import argparse
import sys


def main(argv=None) -> int:
    import torch

    from .saes import EXTRA_DIR, EXTRA_SAES, build

    parser = argparse.ArgumentParser(prog="python -m course_lib.interpretation", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help=f"train, evaluate and save {[s.name for s in EXTRA_SAES]} into data/interpretation/")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "build":
        build(EXTRA_DIR, EXTRA_SAES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
