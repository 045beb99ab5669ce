"""Bring your own method: a model-free anomaly map on the demo benchmark, scored and put on the board.

    python examples/bring_your_own.py [--workdir runs/demo] [--quiet]

Each step uses the public API a user of the suite calls (no PyTorch needed):

1. the benchmark ``WORKDIR/benchmark``, built with ``python -m benchmark.build demo``
   when it is missing, opened with :func:`benchmark.open_benchmark`;
2. the method, "colour distance": per split, the mean of its normal training
   images at the evaluation size; a test image's anomaly map is each pixel's
   Euclidean RGB distance to that mean image, box-averaged over 15×15 pixels.
   No training, no model: a floor that any learned method should beat;
3. the submission ``WORKDIR/submissions/colour-distance``, written with
   :class:`evaluator.submission.SubmissionWriter`;
4. :func:`evaluator.validate`, then :func:`evaluator.score` (``exact``
   profile, 2 panels per split) into ``WORKDIR/results/colour-distance.exact.json``;
5. the board: :func:`leaderboard.build.build` over ``WORKDIR/results`` into
   ``WORKDIR/leaderboard``. These are the main job's folders, so the result
   also stays on the board that ``python -m leaderboard.demo`` rebuilds.

Rerunning replaces the submission, the result and the board.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import evaluator
from benchmark import open_benchmark
from evaluator.submission import SubmissionWriter
from leaderboard.build import build

NAME = "colour-distance"
METHOD = {
    "name": "Colour distance",
    "description": "model-free: per-pixel RGB distance to the mean normal training image of the split, "
                   "box-averaged over 15x15 pixels (examples/bring_your_own.py)",
}
BOX = 15


def load_rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An image as uint8 RGB, resized bilinearly to ``size`` = (height, width)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR))


def box_average(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over the k×k window centred on each pixel (edges replicated), via an integral image."""
    r = k // 2
    p = np.pad(a.astype(np.float64), r, mode="edge")
    c = np.pad(p.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = a.shape
    s = c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]
    return (s / (k * k)).astype(np.float32)


def colour_distance(image: np.ndarray, mean_normal: np.ndarray) -> np.ndarray:
    """The anomaly map of one uint8 RGB image: its distance to the mean normal image (in [0, 1] units)."""
    diff = image.astype(np.float32) / 255.0 - mean_normal
    return box_average(np.sqrt((diff ** 2).sum(axis=2)), BOX)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/demo", type=Path,
                        help="the main job's folder: benchmark/, submissions/, results/, leaderboard/ (default: runs/demo)")
    parser.add_argument("--quiet", action="store_true", help="print only the final lines")
    args = parser.parse_args(argv)
    w = args.workdir
    bench_dir, sub, result = w / "benchmark", w / "submissions" / NAME, w / "results" / f"{NAME}.exact.json"
    say = (lambda *a: None) if args.quiet else print

    if not (bench_dir / "benchmark.json").exists():
        say(f"building the demo benchmark into {bench_dir}")
        subprocess.run([sys.executable, "-m", "benchmark.build", "demo", "--out", str(bench_dir),
                        *(["--quiet"] if args.quiet else [])], check=True)
    bench = open_benchmark(bench_dir)
    size = bench.eval_size
    cache: dict[str, np.ndarray] = {}

    def image(item) -> np.ndarray:  # the splits share their images: read each once (uint8 keeps it small)
        if item.img_path not in cache:
            cache[item.img_path] = load_rgb(bench.image_file(item), size)
        return cache[item.img_path]

    with SubmissionWriter(sub, bench, method=METHOD, splits=bench.split_ids, overwrite=True) as writer:
        for split in bench.split_ids:
            normal = [image(it) for it in bench.items(split, "train")]
            mean_normal = np.mean(normal, axis=0, dtype=np.float64).astype(np.float32) / 255.0
            for item in bench.items(split, "test"):
                writer.add(split, item.img_path, colour_distance(image(item), mean_normal))
            say(f"split {split}: mean of {len(normal)} normal training images, "
                f"{len(bench.items(split, 'test'))} maps written")

    problems = evaluator.validate(sub, bench_dir)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    scored = evaluator.score(sub, bench_dir, profile="exact", panels=2, out=result, quiet=args.quiet)
    means = scored["mean"]
    print(f"{METHOD['name']} on {bench.name}: I-AUROC {100 * means['I-AUROC']:.1f}, "
          f"P-AUROC {100 * means['P-AUROC']:.1f}, AUPRO {100 * means['AUPRO']:.1f} (mean over splits, exact); "
          f"result {result}")
    board = build(result.parent, w / "leaderboard", quiet=True,
                  note=lambda line: print(f"leaderboard: note: {line}", file=sys.stderr))
    print(f"board: {board.index.resolve().as_uri()} ({board.n_results} results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
