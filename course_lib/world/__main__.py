"""``python -m course_lib.world train [--steps N]``: rebuild the world LM in data/world/."""
import argparse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.world")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the world LM (seeded) and write data/world/")
    train.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped setting)")
    args = parser.parse_args(argv)
    if args.command == "train":
        import json

        from .lm import train as train_world
        metrics = train_world(steps=args.steps)
        print(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}, indent=2))


if __name__ == "__main__":
    main()
