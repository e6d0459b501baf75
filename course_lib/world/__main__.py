"""``python -m course_lib.world train [--steps N] [--folder PATH]``: rebuild the world LM (seeded).

It is built in a new folder next to the target, which replaces the target only on success."""
import argparse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv=None) -> None:
    from .lm import TRAINING, WORLD_DIR

    parser = argparse.ArgumentParser(prog="python -m course_lib.world")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the world LM (seeded) and write it to --folder")
    train.add_argument("--steps", type=_positive_int, default=TRAINING.steps,
                       help=f"training steps (default: the shipped setting, {TRAINING.steps})")
    train.add_argument("--folder", default=str(WORLD_DIR), help=f"where to write it (default: {WORLD_DIR})")
    args = parser.parse_args(argv)
    if args.command == "train":
        import json

        from .lm import train as train_world

        metrics = train_world(folder=args.folder, steps=args.steps)
        print(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}, indent=2))


if __name__ == "__main__":
    main()
