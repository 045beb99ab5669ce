"""Command line: ``python -m leaderboard build [--results PATH]... [--out DIR] [--reported CSV]... [--quiet]``."""

from __future__ import annotations

import argparse
import sys

from leaderboard import __version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaderboard",
                                     description="Turn evaluator result files into a leaderboard.")
    parser.add_argument("--version", action="version", version=f"leaderboard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the Markdown table, CSV, index.html and plots from result JSON files",
                       description="Read the result files written by `python -m evaluator score --out FILE` "
                                   "(folders are searched recursively; JSON files there that are not results "
                                   "are skipped with a note) and write index.html, leaderboard.md, "
                                   "leaderboard.csv, plots/ and panels/ into --out, replacing what a previous "
                                   "build left there. A folder the build did not write is never replaced.")
    b.add_argument("--results", action="append", default=None, metavar="PATH",
                   help="a result file or a folder of them; repeat to combine several (default: results)")
    b.add_argument("--out", default="runs/leaderboard", metavar="DIR",
                   help="output folder (default: runs/leaderboard)")
    b.add_argument("--reported", action="append", default=None, metavar="CSV",
                   help="published numbers shown as 'reported' rows, each file its own group; repeat for several "
                        "(default: the InvAD paper's and ADer's benchmark tables, shipped in leaderboard/data/; "
                        "'none' leaves them out)")
    b.add_argument("--quiet", action="store_true", help="print nothing on success but the notes on skipped files")
    args = parser.parse_args(argv)

    from leaderboard.build import BuildError, build
    from leaderboard.reported import DEFAULT_SOURCES, ReportedError
    from leaderboard.results import ResultError

    def note(line: str) -> None:
        print(f"leaderboard: note: {line}", file=sys.stderr)

    reported = DEFAULT_SOURCES if args.reported is None else [p for p in args.reported if p != "none"]
    if args.reported is not None and "none" in args.reported and reported:
        parser.error("--reported none cannot be combined with CSV files")
    try:
        build(args.results or ["results"], args.out, reported=reported, quiet=args.quiet, note=note)
    except (ResultError, ReportedError, BuildError) as e:
        print(f"leaderboard: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
