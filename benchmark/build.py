"""``python -m benchmark.build``: write benchmark folders (SPEC §2–3) and verify them.

Subcommands::

    coco-ad --coco-root DIR [--out DIR] [--splits 0 1 2 3] [--workers N] [--quiet]
    demo    [--out DIR] [--workers N] [--quiet]
    mvtec   --root DIR [--out DIR] [--workers N] [--quiet]
    visa    --root DIR [--out DIR] [--workers N] [--quiet]
    gt      DIR [--workers N] [--quiet]
    verify  DIR [--workers N] [--quiet]

Exit codes: 0 success; 1 ``verify`` found a changed or missing file; 2 bad
input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import BuildError

DEFAULT_DEMO_OUT = Path("runs/demo/benchmark")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="mask-writing processes (default: CPU count, at most 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmark.build", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{coco-ad,demo,mvtec,visa,gt,verify}")

    p = sub.add_parser("coco-ad", help="COCO-AD from COCO 2017 (or any COCO-format source)")
    p.add_argument("--coco-root", type=Path, required=True, help="folder with annotations/, train2017/, val2017/")
    p.add_argument("--out", type=Path, default=None, help="benchmark folder (default: the COCO root)")
    p.add_argument("--splits", nargs="+", default=None, metavar="K", help="split ids to build (default: 0 1 2 3)")
    _common(p)

    p = sub.add_parser("demo", help="the embedded demo: generate a small COCO-format source and build COCO-AD on it")
    p.add_argument("--out", type=Path, default=DEFAULT_DEMO_OUT, help=f"benchmark folder (default: {DEFAULT_DEMO_OUT})")
    _common(p)

    for name, what in (("mvtec", "MVTec AD"), ("visa", "VisA (split_csv/1cls.csv)")):
        p = sub.add_parser(name, help=f"one-split benchmark from the {what} layout")
        p.add_argument("--root", type=Path, required=True, help=f"{what} folder")
        p.add_argument("--out", type=Path, default=None, help="benchmark folder (default: the root)")
        _common(p)

    p = sub.add_parser("gt", help="add the evaluation-size ground truth (the scorer's fast path) to a "
                                  "benchmark folder built without it")
    p.add_argument("dir", type=Path, metavar="DIR", help="benchmark folder (holds benchmark.json)")
    _common(p)

    p = sub.add_parser("verify", help="re-hash every file listed in DIR/benchmark.json and recompute the "
                                      "evaluation-size ground truth")
    p.add_argument("dir", type=Path, metavar="DIR", help="benchmark folder (holds benchmark.json)")
    _common(p)
    return ap


def run(args: argparse.Namespace) -> int:
    if args.cmd == "coco-ad":
        from benchmark.coco_ad import build_coco_ad

        build_coco_ad(args.coco_root, args.out, args.splits, workers=args.workers, quiet=args.quiet)
    elif args.cmd == "demo":
        from benchmark.demo_source import build_demo

        build_demo(args.out, workers=args.workers, quiet=args.quiet)
    elif args.cmd == "mvtec":
        from benchmark.mvtec import build_mvtec

        build_mvtec(args.root, args.out, workers=args.workers, quiet=args.quiet)
    elif args.cmd == "visa":
        from benchmark.visa import build_visa

        build_visa(args.root, args.out, workers=args.workers, quiet=args.quiet)
    elif args.cmd == "gt":
        from benchmark import BenchmarkError
        from benchmark.eval_gt import add_to_folder
        from contract.names import default_workers

        try:
            written = add_to_folder(args.dir, default_workers() if args.workers is None else max(1, args.workers),
                                    args.quiet)
        except BenchmarkError as e:
            raise BuildError(str(e)) from None
        print(f"{args.dir}: wrote {', '.join(written)} and updated benchmark.json")
    elif args.cmd == "verify":
        from benchmark.verify import verify_folder

        n, problems = verify_folder(args.dir, args.workers, args.quiet)
        for line in problems:
            print(f"{args.dir}: {line}")
        if problems:
            print(f"{args.dir}: {len(problems)} problem(s) in {n} listed file(s)", file=sys.stderr)
            return 1
        print(f"{args.dir}: all {n} listed files match benchmark.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return run(args)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to finish (it gives the same bytes)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
