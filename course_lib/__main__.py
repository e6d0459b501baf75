"""Command line: ``python -m course_lib {build,run,stale,work}``."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="generate student + solution notebooks from notebooks/src")
    build.add_argument("notebooks", nargs="*", help="numbers to build, e.g. 00 01 (default: all)")
    build.add_argument("--no-execute", action="store_true", help="do not execute the solutions (no outputs)")
    build.add_argument("--keep-outputs", action="store_true",
                       help="keep the stored outputs (for changes to metadata, markdown or cells without output)")
    run = sub.add_parser("run", help="execute the notebooks headless and print wall time / peak memory")
    run.add_argument("notebooks", nargs="*", help="numbers to run, e.g. 00 01 (default: all)")
    run.add_argument("--student", action="store_true", help="run the student notebooks instead")
    sub.add_parser("stale", help="list generated notebooks that are out of date with their source")
    sub.add_parser("work", help="copy new student notebooks into work/ (never touches one you edited)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ValueError as error:  # a wrong argument: say what is wrong, no traceback
        print(f"python -m course_lib {args.command}: {error}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "build":
        from .build import build as build_notebooks
        build_notebooks(args.notebooks or None, execute=not args.no_execute, keep_outputs=args.keep_outputs)
    elif args.command == "run":
        from .runner import run_course
        rows = run_course(args.notebooks or None, student=args.student)
        return 0 if all(r["within_budget"] for r in rows) else 1
    elif args.command == "work":
        from .workspace import main as update_work
        return update_work()
    elif args.command == "stale":
        from .build import out_of_date
        stale = out_of_date()
        print("\n".join(stale) if stale else "all generated notebooks are up to date")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
