"""Command line: ``python -m evaluator validate|score|bench ...`` (SPEC §5).

Exit status: 0 success; 1 a problem with the user's input or output (one line
each on stderr, no traceback, nothing written); 2 a usage error (argparse);
3 a bug of the evaluator (its traceback, and a line saying so).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from benchmark import BenchmarkError

PROFILES_HELP = ("metric definitions: exact (the SPEC's, unbinned; default), ader (ADer's util/metric.py as the "
                 "paper's COCO-AD configs ran it) or ader-bench (as ADer's benchmark tables: P-AUROC, P-AP and "
                 "AUPRO from ADEval's 50 bins)")


def _parser() -> argparse.ArgumentParser:
    from evaluator.metrics.params import ADER_AUPRO_STEPS, PROFILES

    p = argparse.ArgumentParser(prog="python -m evaluator", description="Validate and score COCO-AD submission "
                                "folders (SPEC section 5), and time the scorer.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{validate,score,bench}")

    v = sub.add_parser("validate", help="check a submission folder; exit 0 if valid, else 1 with one line per problem")
    v.add_argument("submission", help="submission folder (submission.json + <split>/maps/)")
    v.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark folder (benchmark.json)")
    v.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("score", help="validate, score every split and class, print a table, write the result JSON")
    s.add_argument("submission", help="submission folder (submission.json + <split>/maps/)")
    s.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark folder (benchmark.json)")
    s.add_argument("--profile", default="exact", choices=list(PROFILES), help=PROFILES_HELP)
    s.add_argument("--pool", type=int, default=None, metavar="K",
                   help="profiles ader and ader-bench: image score = max of the KxK average-pooled map (ADer's "
                        "pooling_ks: 16 for UniAD and ViTAD, none for InvAD and RD); default: the map's max")
    s.add_argument("--aupro-steps", type=int, default=None, metavar="S",
                   help=f"profile ader: AUPRO thresholds (ADer's max_step_aupro; default {ADER_AUPRO_STEPS}, as every "
                        "published COCO-AD config)")
    s.add_argument("--out", default=None, metavar="FILE",
                   help="result JSON (default: <submission>/../results/<submission name>.<profile>[.pool<K>].json)")
    s.add_argument("--panels", type=int, default=0, metavar="N",
                   help="write N qualitative panels per split beside the result file (default 0)")
    s.add_argument("--no-sweeps", action="store_true", help="leave the threshold sweeps out of the result")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    sub.add_parser("bench", help="time the metric engine on synthetic maps, or with --coco-split the whole score "
                                 "command on a COCO-AD-sized split (python -m evaluator bench --help)", add_help=False)
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
    from evaluator.score import OutputError, UsageError, default_out, score
    from evaluator.validate import SubmissionError

    if args.pool is not None and args.pool < 1:
        return _fail([f"--pool must be a positive integer, got {args.pool}"])
    if args.pool is not None and args.profile == "exact":
        return _fail(["--pool changes only the ADer profiles' image score; add --profile ader or --profile ader-bench"])
    if args.aupro_steps is not None and args.aupro_steps < 1:
        return _fail([f"--aupro-steps must be a positive integer, got {args.aupro_steps}"])
    if args.aupro_steps is not None and args.profile != "ader":
        return _fail(["--aupro-steps changes only the ader profile's AUPRO; add --profile ader"])
    if args.panels < 0:
        return _fail([f"--panels must be >= 0, got {args.panels}"])
    out = Path(args.out) if args.out else default_out(args.submission, args.profile, args.pool, args.aupro_steps)
    try:
        result = score(args.submission, args.benchmark, profile=args.profile, pool=args.pool,
                       aupro_steps=args.aupro_steps, panels=args.panels, out=out, quiet=args.quiet,
                       sweeps=not args.no_sweeps)
    except SubmissionError as e:
        return _fail(e.lines())
    except (UsageError, OutputError) as e:
        return _fail([str(e)])
    print(format_summary(result, str(out)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Numba's OpenMP workers sleep between the scorer's short parallel flushes instead of
    # spinning on cores the reading threads need (read before the pool starts; the user's value wins).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        if argv and argv[0] == "bench":
            from evaluator.bench import main as bench_main  # lazy: only the bench command needs it

            return int(bench_main(argv[1:]) or 0)
        args = _parser().parse_args(argv)
        return {"validate": _validate, "score": _score}[args.command](args)
    except BenchmarkError as e:
        return _fail([str(e)])
    except KeyboardInterrupt:
        return _fail(["interrupted; nothing was written (rerun to finish)"])
    except Exception:  # not the user's input: a bug of ours, shown in full
        traceback.print_exc()
        print("python -m evaluator: this is a bug of the evaluator, not a problem with your files; "
              "please report it with the traceback above", file=sys.stderr)
        return 3
