"""``python -m benchmark.build``: write benchmark folders (SPEC §2–3) and verify them.

Subcommands::

    coco-ad --coco-root DIR [--out DIR] [--splits 0 1 2 3] [--masks pycocotools|ader] [--workers N] [--quiet]
    demo    [--out DIR] [--masks pycocotools|ader] [--workers N] [--quiet]
    mvtec   --root DIR [--out DIR] [--workers N] [--quiet]
    visa    --root DIR [--out DIR] [--workers N] [--quiet]
    gt      DIR [--workers N] [--quiet]
    verify  DIR [--workers N] [--quiet]

Exit codes: 0 success; 1 ``verify`` found a problem; 2 bad input or an
output folder that cannot be written (one line on stderr; nothing half-written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import BuildError
from benchmark.folder import DEFAULT_MASKS, MASK_MODES

DEFAULT_DEMO_OUT = Path("runs/demo/benchmark")

# --help texts are plain text: argparse shows them as written.
DESCRIPTION = "Write benchmark folders (SPEC §2–3: COCO-AD, the demo, MVTec AD, VisA) and verify them."
EPILOG = (
    "Exit codes: 0 success; 1 verify found a problem; 2 bad input or an output folder that cannot be "
    "written (one line on stderr, nothing half-written). Run 'python -m benchmark.build COMMAND --help' "
    "for a command's options."
)
MASKS_HELP = (
    "how annotations become masks: 'pycocotools' (default) rasterises as COCO's annToMask; 'ader' draws "
    "as ADer's data/gen_benchmark/coco.py drew the published COCO-AD (OpenCV fillPoly on truncated "
    "vertices, masks sized like the decoded image; needs the ader-masks extra: OpenCV 4.8-4.10). "
    "Recorded in benchmark.json; it changes the masks and the checksums"
)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, metavar="N", help="mask-writing processes (default: CPU count, at most 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _masks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--masks", choices=MASK_MODES, default=DEFAULT_MASKS, help=MASKS_HELP)


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmark.build", description=DESCRIPTION, epilog=EPILOG)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", help="one of:")

    what = "COCO-AD from COCO 2017 (or any COCO-format source)"
    p = sub.add_parser("coco-ad", help=what, description=f"Build {what}: 4 splits, each holding a quarter of the categories out as anomalies.")
    p.add_argument("--coco-root", type=Path, required=True, metavar="DIR", help="folder with annotations/, train2017/, val2017/")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="benchmark folder (default: the COCO root)")
    p.add_argument("--splits", nargs="+", default=None, metavar="K", help="split ids to build (default: 0 1 2 3)")
    _masks(p)
    _common(p)

    what = "the embedded demo: generate a small COCO-format source and build COCO-AD on it"
    p = sub.add_parser("demo", help=what, description=f"Build {what} (offline, from a fixed seed).")
    p.add_argument("--out", type=Path, default=DEFAULT_DEMO_OUT, metavar="DIR", help=f"benchmark folder (default: {DEFAULT_DEMO_OUT})")
    _masks(p)
    _common(p)

    for name, what in (("mvtec", "MVTec AD"), ("visa", "VisA (split_csv/1cls.csv)")):
        text = f"one-split benchmark from the {what} layout"
        p = sub.add_parser(name, help=text, description=f"Build a {text}.")
        p.add_argument("--root", type=Path, required=True, metavar="DIR", help=f"{what} folder")
        p.add_argument("--out", type=Path, default=None, metavar="DIR", help="benchmark folder (default: the root)")
        _common(p)

    text = "add the evaluation-size ground truth (the scorer's fast path) to a benchmark folder built without it"
    p = sub.add_parser("gt", help=text, description=f"{text[0].upper()}{text[1:]}; rewrites benchmark.json.")
    p.add_argument("dir", type=Path, metavar="DIR", help="the benchmark folder (the one holding benchmark.json)")
    _common(p)

    text = "re-hash every file listed in DIR/benchmark.json and check its fields"
    p = sub.add_parser("verify", help=text, description=(
        f"Verify a benchmark folder: {text} (image_root inside the folder, protocol and eval_size supported, "
        "mask mode known, meta paths inside the folder) and recompute its evaluation-size ground truth from "
        "the masks. Exit 1 on any problem."))
    p.add_argument("dir", type=Path, metavar="DIR", help="the benchmark folder (the one holding benchmark.json)")
    _common(p)
    return ap


def run(args: argparse.Namespace) -> int:
    if args.cmd == "coco-ad":
        from benchmark.coco_ad import build_coco_ad

        build_coco_ad(args.coco_root, args.out, args.splits, workers=args.workers, quiet=args.quiet, masks=args.masks)
    elif args.cmd == "demo":
        from benchmark.demo_source import build_demo

        build_demo(args.out, workers=args.workers, quiet=args.quiet, masks=args.masks)
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
        from benchmark.verify import describe, verify_folder

        n, problems = verify_folder(args.dir, args.workers, args.quiet)
        for line in problems:
            print(f"{args.dir}: {line}")
        if problems:
            print(f"{args.dir}: {len(problems)} problem(s) in {n} listed file(s) and the manifest's fields", file=sys.stderr)
            return 1
        print(f"{args.dir}: {describe(args.dir)}")
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
