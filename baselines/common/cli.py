"""The command line every baseline shares: ``train``, ``predict``, ``run``, ``presets``.

    python -m baselines.invad train   --benchmark DIR --split K [--preset NAME] [--out RUN_DIR] [--resume]
    python -m baselines.invad predict --checkpoint RUN_DIR|FILE… --submission DIR [--benchmark DIR]
    python -m baselines.invad run     --benchmark DIR --preset NAME --out RUN_DIR --submission DIR [--splits …]
    python -m baselines.invad presets

``run`` trains every split (resuming unfinished ones, skipping finished ones)
and then writes one submission folder holding all of them; rerun, it only
repeats the prediction if a checkpoint changed. Multi-GPU training:
``torchrun --nproc_per_node N -m baselines.invad train|run …``.
User errors print one line and exit with status 2; so does a preset whose
hub weights can be neither found in the cache nor downloaded, before any
training (the line names the offline presets and ``--weights FILE``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from baselines.common.errors import BaselineError
from baselines.common.presets import Preset, get_preset, list_presets

DESCRIPTION = ("Train a reconstruction baseline on the normal training images of a benchmark's splits and write "
               "its anomaly maps of their test images as a submission folder.")


def _overrides(args) -> dict:
    out = {}
    if getattr(args, "epochs", None) is not None:
        out["epochs"] = args.epochs
    if getattr(args, "batch_size", None) is not None:
        out["batch_size"] = args.batch_size
    if getattr(args, "seed", None) is not None:
        out["seed"] = args.seed
    if getattr(args, "weights", None) is not None:
        w = args.weights
        if w not in ("hub", "none") and not w.startswith("package:"):
            if not Path(w).is_file():
                raise BaselineError(f"{w}: weight file not found (--weights)")
            w = str(Path(w).resolve())
        out["weights"] = w
    return out


def resolve_preset(name: str, method: str, args) -> Preset:
    preset = get_preset(name)
    if preset.method != method:
        raise BaselineError(f"preset {name!r} belongs to method {preset.method!r} (this command: {method}; "
                            f"its presets: {', '.join(list_presets(method))})")
    for k, v in _overrides(args).items():
        if k in ("epochs", "batch_size") and v < 1:
            raise BaselineError(f"--{k.replace('_', '-')} must be at least 1")
    return preset.replace(**_overrides(args))


def _offline_presets(method: str) -> list[str]:
    """This method's presets whose encoder weights ship in an installed-with-us package."""
    return [n for n in list_presets(method) if get_preset(n).weights.startswith("package:")]


def _add_training_options(p: argparse.ArgumentParser, method: str, default_preset: str) -> None:
    p.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark folder (with benchmark.json)")
    offline = _offline_presets(method)
    p.add_argument("--preset", default=default_preset, metavar="NAME",
                   help=f"named configuration: {', '.join(list_presets(method))} (default {default_preset}; "
                        + (f"offline: {', '.join(offline)}; " if offline else "")
                        + f"see: python -m baselines.{method} presets)")
    p.add_argument("--epochs", type=int, metavar="N", help="override the preset's number of epochs")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="override the global batch size (the LR scales with it)")
    p.add_argument("--seed", type=int, metavar="N", help="override the preset's seed")
    p.add_argument("--weights", metavar="FILE",
                   help="encoder weights: a local weight file, or 'hub' (timm's download), 'none' (random) or "
                        "'package:NAME' (default: the preset's)")
    p.add_argument("--stop-after", type=int, metavar="EPOCHS",
                   help="stop this call after that many epochs (continue later with --resume / run)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", metavar="DEVICE", help="cpu, cuda or cuda:N (default: CUDA if available)")
    p.add_argument("--workers", type=int, metavar="N", help="data-loading processes (default 0 on CPU, 4 on CUDA)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: OMP_NUM_THREADS, else all CPUs); keep it fixed for "
                        "bit-identical reruns")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser(method: str, prog: str, default_preset: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION,
        epilog=f"example: {prog} run --benchmark DIR --preset {(_offline_presets(method) or [default_preset])[0]} "
               f"--out runs/X --submission submissions/X. Under torchrun, train and run use every process "
               f"(DistributedDataParallel). User errors exit with status 2.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    t = sub.add_parser("train", help="train on one split's normal training images",
                       description="Train the preset on the normal training images of one split; a checkpoint "
                                   "is written after every epoch.")
    _add_training_options(t, method, default_preset)
    t.add_argument("--split", required=True, metavar="ID", help="split id")
    t.add_argument("--out", metavar="DIR", help="run folder (default runs/<preset>-<benchmark name>)")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in the run folder")
    t.add_argument("--force", action="store_true", help="start over, replacing an existing checkpoint")
    _add_common(t)

    p = sub.add_parser("predict", help="write a submission from trained checkpoints",
                       description="Write the anomaly maps of the test images of every checkpoint's split into "
                                   "one submission folder.")
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="PATH",
                   help="checkpoint file(s) or run folder(s)")
    p.add_argument("--submission", required=True, metavar="DIR", help="submission folder to write")
    p.add_argument("--benchmark", metavar="DIR", help="benchmark folder (default: the one used for training)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per forward pass (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing submission folder")
    _add_common(p)

    r = sub.add_parser("run", help="train every split, then predict them all into one submission",
                       description="Train every split (finished ones are skipped, unfinished ones resumed), then "
                                   "write one submission holding all of them.")
    _add_training_options(r, method, default_preset)
    r.add_argument("--out", required=True, metavar="DIR", help="run folder (one subfolder per split)")
    r.add_argument("--submission", required=True, metavar="DIR",
                   help="submission folder to write (replaced if present)")
    r.add_argument("--splits", nargs="+", metavar="ID", help="split ids (default: all of the benchmark's)")
    _add_common(r)

    sub.add_parser("presets", help="list this method's presets", description="List this method's presets.")
    return parser


def _cmd_presets(method: str) -> int:
    for name in list_presets(method):
        p = get_preset(name)
        pool = f"  pool {p.pool}" if p.pool is not None else ""
        print(f"{name:14s} {p.backbone:26s} epochs {p.epochs:<4d} batch {p.batch_size:<3d} lr {p.lr:g}  "
              f"weights {p.weights}{pool}")
    return 0


def _predict_stamp(run_dir: Path, files: list[Path], submission: Path) -> dict:
    from contract.files import sha256_file

    return {"submission": str(submission.resolve()), "checkpoints": {str(f.relative_to(run_dir)): sha256_file(f)
                                                                        for f in files}}


def run_command(method: str, args) -> int:
    import json

    import torch

    from baselines.common import engine, predict, runtime
    from baselines.common.encoder import WeightsUnavailable
    from benchmark import open_benchmark
    from contract.files import atomic_write_json

    if args.command == "presets":
        return _cmd_presets(method)
    rt = runtime.setup(args.device, args.threads)
    try:
        if args.command == "predict":
            if rt.distributed and not rt.is_main:
                return 0
            predict.predict(args.checkpoint, args.submission, args.benchmark, device=rt.device,
                            batch_size=args.batch_size, workers=args.workers or 0,
                            overwrite=args.overwrite, quiet=args.quiet)
            if not args.quiet:
                print(f"submission written: {args.submission}")
            return 0

        preset = resolve_preset(args.preset, method, args)
        bench = open_benchmark(args.benchmark)

        def train(split: str, out: Path, **kw) -> Path:
            try:
                return engine.train_split(preset, bench, split, out, rt, workers=args.workers,
                                          stop_after=args.stop_after, quiet=args.quiet, **kw)
            except WeightsUnavailable as e:
                offline = _offline_presets(method)
                raise BaselineError(f"preset {preset.name!r}: {e}"
                                    + (f", or use --preset {' / '.join(offline)} (weights included)" if offline
                                       else "")) from None

        if args.command == "train":
            out = Path(args.out) if args.out else Path("runs") / f"{preset.name}-{bench.name}"
            ckpt = train(args.split, out, resume=args.resume, force=args.force)
            if rt.is_main and not args.quiet:
                print(f"checkpoint: {ckpt}")
            return 0

        # run: every split, then one submission
        splits = [str(s) for s in (args.splits or bench.split_ids)]
        for s in splits:
            bench.split(s)
        out = Path(args.out)
        submission = Path(args.submission)
        if rt.is_main:
            # the submission is written after all the training: find out now if it cannot be
            engine.check_writable(submission.resolve().parent, "--submission")
        files = [train(s, out, resume=True) for s in splits]
        if not rt.is_main:
            return 0
        unfinished = [f for f in files if not engine.is_finished(f)]
        if unfinished:
            print(f"stopped before the end of training ({', '.join(map(str, unfinished))}); rerun to continue")
            return 0
        stamp_file = out / "predicted.json"
        stamp = _predict_stamp(out, files, submission)
        if submission.is_dir() and stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
            if not args.quiet:
                print(f"submission up to date: {submission}")
            return 0
        torch.manual_seed(preset.seed)
        predict.predict(files, submission, bench.root, device=rt.device, workers=args.workers or 0,
                        overwrite=True, quiet=args.quiet)
        atomic_write_json(stamp_file, stamp)
        if not args.quiet:
            print(f"submission written: {submission}")
        return 0
    finally:
        runtime.teardown(rt)


def main(method: str, argv: list[str] | None = None, prog: str | None = None, default_preset: str | None = None) -> int:
    from benchmark import BenchmarkError

    default_preset = default_preset or list_presets(method)[0]
    args = build_parser(method, prog or f"python -m baselines.{method}", default_preset).parse_args(argv)
    try:
        return run_command(method, args)
    except (BaselineError, BenchmarkError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileExistsError as e:  # the submission writer refuses to replace a folder
        print(f"error: {e}; pass --overwrite", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last finished epoch is checkpointed (rerun with --resume / run)", file=sys.stderr)
        return 130
