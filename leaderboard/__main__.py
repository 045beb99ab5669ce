"""Command line: ``python -m leaderboard build [--results DIR] [--out DIR] [--quiet]``."""

from __future__ import annotations

import argparse
import sys

from leaderboard import __version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaderboard",
                                     description="Turn evaluator result files into a leaderboard.")
    parser.add_argument("--version", action="version", version=f"leaderboard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the Markdown table, index.html and plots from result JSON files",
                       description="Read every *.json result file below --results (written by "
                                   "`python -m evaluator score --out`) and write index.html, leaderboard.md, "
                                   "plots/ and panels/ into --out, replacing what a previous build left there.")
    b.add_argument("--results", default="results", metavar="DIR",
                   help="folder of result files, searched recursively (default: results)")
    b.add_argument("--out", default="runs/leaderboard", metavar="DIR",
                   help="output folder (default: runs/leaderboard)")
    b.add_argument("--reported", default=None, metavar="CSV",
                   help="published numbers shown as 'reported' rows (default: the InvAD paper's, shipped in "
                        "leaderboard/data/invad-paper.csv; 'none' leaves them out)")
    b.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)

    from leaderboard.build import BuildError, build
    from leaderboard.reported import PAPER_CSV, ReportedError
    from leaderboard.results import ResultError

    try:
        reported = PAPER_CSV if args.reported is None else None if args.reported == "none" else args.reported
        build(args.results, args.out, reported_csv=reported, quiet=args.quiet)
    except (ResultError, ReportedError, BuildError) as e:
        print(f"leaderboard: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
