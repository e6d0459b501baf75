"""``python -m course_lib.implicit_reasoning train-all [RUN ...]``: rebuild the shipped runs."""
import argparse

from .runs import RUNS, train_all

parser = argparse.ArgumentParser(prog="python -m course_lib.implicit_reasoning")
sub = parser.add_subparsers(dest="command", required=True)
p = sub.add_parser("train-all", help="train every shipped run (seeded, one CPU thread)")
p.add_argument("runs", nargs="*", choices=[[], *RUNS], help=f"subset of {list(RUNS)}")
args = parser.parse_args()
train_all(args.runs or None)
