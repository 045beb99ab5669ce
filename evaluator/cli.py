"""Command line: ``python -m evaluator validate|score|bench ...`` (SPEC §5).

Exit status: 0 success, 1 a problem with the user's input (one line each on
stderr, no traceback, nothing written), 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark import BenchmarkError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluator", description="Validate and score COCO-AD submission folders (SPEC section 5).")
    sub = p.add_subparsers(dest="command", required=True, metavar="{validate,score,bench}")

    v = sub.add_parser("validate", help="check a submission folder; exit 0 if valid, else 1 with one line per problem")
    v.add_argument("submission", help="submission folder (submission.json + <split>/maps/)")
    v.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark folder (benchmark.json)")
    v.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("score", help="validate, score every split and class, print a table, write the result JSON")
    s.add_argument("submission", help="submission folder (submission.json + <split>/maps/)")
    s.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark folder (benchmark.json)")
    s.add_argument("--profile", default="exact", choices=["exact", "ader"],
                   help="metric definitions: exact (SPEC, default) or ader (the paper's published numbers)")
    s.add_argument("--pool", type=int, default=None, metavar="K",
                   help="profile ader only: image score = max of the KxK average-pooled map (the paper's configs: 16); "
                        "default: the map's max")
    s.add_argument("--out", default=None, metavar="FILE",
                   help="result JSON (default: <submission>/../results/<submission name>.<profile>[.pool<K>].json)")
    s.add_argument("--panels", type=int, default=0, metavar="N",
                   help="write N qualitative panels per split beside the result file (default 0)")
    s.add_argument("--no-sweeps", action="store_true", help="leave the threshold sweeps out of the result")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    b = sub.add_parser("bench", help="time the metric engine on synthetic maps", add_help=False)
    b.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return 1


def _validate(args) -> int:
    from evaluator.validate import format_problems, validate_report

    problems, stopped = validate_report(args.submission, args.benchmark, quiet=args.quiet)
    if problems:
        return _fail(format_problems(problems, stopped_early=stopped))
    print(f"{args.submission}: valid submission for {args.benchmark}")
    return 0


def _score(args) -> int:
    from evaluator.report import format_summary
    from evaluator.score import default_out, score
    from evaluator.validate import SubmissionError

    if args.pool is not None and args.pool < 1:
        return _fail([f"--pool must be a positive integer, got {args.pool}"])
    if args.pool is not None and args.profile != "ader":
        return _fail(["--pool changes only the ader profile's image score; add --profile ader"])
    if args.panels < 0:
        return _fail([f"--panels must be >= 0, got {args.panels}"])
    out = Path(args.out) if args.out else default_out(args.submission, args.profile, args.pool)
    try:
        result = score(args.submission, args.benchmark, profile=args.profile, pool=args.pool,
                       panels=args.panels, out=out, quiet=args.quiet, sweeps=not args.no_sweeps)
    except SubmissionError as e:
        return _fail(e.lines())
    except ValueError as e:  # arguments the scorer refuses (pool larger than the maps, ...)
        return _fail([str(e)])
    except OSError as e:  # the result or panels cannot be written (permissions, full disk)
        return _fail([f"{out}: cannot write ({e.strerror or e}); choose another --out"])
    print(format_summary(result, str(out)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from evaluator.bench import main as bench_main  # lazy: only the bench command needs it

        return int(bench_main(argv[1:]) or 0)
    args = _parser().parse_args(argv)
    try:
        return {"validate": _validate, "score": _score}[args.command](args)
    except BenchmarkError as e:
        return _fail([str(e)])
    except KeyboardInterrupt:
        return _fail(["interrupted; nothing was written (rerun to finish)"])
